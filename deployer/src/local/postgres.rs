//! The local stand-in for the RDS instances: one private Postgres cluster (initdb and
//! pg_ctl, data under the `up` data folder) or a server the user names.

use std::{
    ffi::OsString,
    os::unix::fs::{OpenOptionsExt, PermissionsExt, chown},
    path::{Path, PathBuf},
    process::Stdio,
};

use anyhow::{Context, bail};
use pulsetrack_localpg::ServerCertificate;
use tokio::process::Command;

/// How services reach Postgres.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

impl Server {
    /// From `postgres://user:password@host:port[/db]` (the database part is ignored:
    /// every service uses its own database on this server).
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(url).context("DATABASE_URL is not a URL")?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            bail!("DATABASE_URL must start with postgres://, not {}://", parsed.scheme());
        }
        let decode = |s: &str| pulsetrack_localpg::percent_decode(s).context("DATABASE_URL: bad percent-encoding");
        Ok(Self {
            host: parsed.host_str().filter(|h| !h.is_empty()).unwrap_or("127.0.0.1").to_string(),
            port: parsed.port().unwrap_or(5432),
            user: if parsed.username().is_empty() { "postgres".into() } else { decode(parsed.username())? },
            password: decode(parsed.password().unwrap_or_default())?,
        })
    }

    /// For display: no password.
    pub fn display(&self) -> String {
        format!("postgres://{}@{}:{}", self.user, self.host, self.port)
    }
}

/// Finds `initdb`/`pg_ctl` (see [`pulsetrack_localpg::find_bin_dir`]).
pub fn find_bin_dir(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    pulsetrack_localpg::find_bin_dir(explicit)
        .context("no private Postgres: pass --postgres-bin DIR, or give an existing server with DATABASE_URL")
}

/// A private cluster under `<data>/postgres`.
#[derive(Debug, Clone)]
pub struct PrivateCluster {
    bin: PathBuf,
    pub data: PathBuf,
    run: PathBuf,
    pub log: PathBuf,
    /// The server's TLS certificate and key, and the CA that signed it.
    tls: PathBuf,
    /// initdb refuses to run as root: then the cluster belongs to this OS user.
    os_user: Option<nix::unistd::User>,
    pub server: Server,
}

const SUPERUSER: &str = "pulsetrack";

impl PrivateCluster {
    /// Creates the cluster on first use (initdb, scram-sha-256 over TCP, a generated
    /// password kept in `<root>/postgres-password`).
    pub async fn prepare(root: &Path, bin: PathBuf, port: u16) -> anyhow::Result<Self> {
        let mut cluster = Self::existing(root, bin)?;
        if let Some(user) = &cluster.os_user {
            reachable_by(root, user)?;
        }
        cluster.server.port = port;
        cluster.server.password = secret_file(&root.join("postgres-password"))?;
        for dir in [&cluster.data, &cluster.run] {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        if !cluster.log.exists() {
            std::fs::write(&cluster.log, "")?;
        }
        cluster.give_to_os_user(&[&cluster.data, &cluster.run, &cluster.log])?;
        if !cluster.data.join("PG_VERSION").exists() {
            cluster.initdb().await?;
        }
        cluster.ensure_tls()?;
        Ok(cluster)
    }

    /// The cluster under `root` as it is, to query or stop it: nothing is created,
    /// and no port or password is known.
    pub fn existing(root: &Path, bin: PathBuf) -> anyhow::Result<Self> {
        let os_user = if running_as_root() {
            let name = std::env::var("PULSETRACK_POSTGRES_OS_USER").unwrap_or_else(|_| "postgres".into());
            Some(nix::unistd::User::from_name(&name)?.with_context(|| {
                format!("running as root, initdb needs an unprivileged OS user: `{name}` does not exist (set PULSETRACK_POSTGRES_OS_USER)")
            })?)
        } else {
            None
        };
        Ok(Self {
            bin,
            data: root.join("postgres"),
            run: root.join("postgres.run"),
            log: root.join("postgres.log"),
            tls: root.join("postgres-tls"),
            os_user,
            server: Server { host: "127.0.0.1".into(), port: 0, user: SUPERUSER.into(), password: String::new() },
        })
    }

    fn give_to_os_user(&self, paths: &[&Path]) -> anyhow::Result<()> {
        if let Some(user) = &self.os_user {
            for path in paths {
                chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                    .with_context(|| format!("cannot give {} to {}", path.display(), user.name))?;
            }
        }
        Ok(())
    }

    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        let mut command = match &self.os_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", &user.name, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        // The postmaster pg_ctl starts stays out of the terminal's process group, so
        // Ctrl-C reaches `up`, which stops Postgres last.
        command.process_group(0);
        command
    }

    async fn run(&self, tool: &str, args: &[OsString]) -> anyhow::Result<()> {
        let out = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("cannot run {tool}"))?;
        if !out.status.success() {
            bail!(
                "{tool} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    async fn initdb(&self) -> anyhow::Result<()> {
        let pwfile = self.run.join("initdb-password");
        std::fs::write(&pwfile, &self.server.password)?;
        std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o600))?;
        self.give_to_os_user(&[&pwfile])?;
        let result = self
            .run(
                "initdb",
                &[
                    "-D".into(),
                    self.data.clone().into(),
                    "-U".into(),
                    SUPERUSER.into(),
                    format!("--pwfile={}", pwfile.display()).into(),
                    "--auth-host=scram-sha-256".into(),
                    "--auth-local=trust".into(),
                    "--encoding=UTF8".into(),
                    "--no-instructions".into(),
                ],
            )
            .await;
        let _ = std::fs::remove_file(&pwfile);
        result?;
        // Loopback only; the socket in a folder only this cluster's user can enter.
        let conf = format!(
            "\n# deployer up\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nmax_connections = 200\n",
            self.run.display()
        );
        let path = self.data.join("postgresql.conf");
        let mut current = std::fs::read_to_string(&path)?;
        current.push_str(&conf);
        std::fs::write(&path, current)?;
        Ok(())
    }

    /// The CA that signed the server's certificate (services verify it: `verify-full`).
    pub fn ca_file(&self) -> PathBuf {
        self.tls.join("ca.pem")
    }

    /// Makes, once, a CA for this data folder and with it a certificate for the server
    /// as services address it (127.0.0.1, localhost), with the openssl CLI. The CA's key
    /// is deleted once it has signed: nothing else is ever signed with it.
    fn ensure_tls(&self) -> anyhow::Result<()> {
        let (cert, key) = (self.tls.join("server.pem"), self.tls.join("server.key"));
        if self.ca_file().is_file() && cert.is_file() && key.is_file() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.tls).with_context(|| format!("cannot create {}", self.tls.display()))?;
        pulsetrack_localpg::make_ca(&self.tls, "ca", "PulseTrack deployer up CA", 3650)?;
        let server = ServerCertificate { names: &["IP:127.0.0.1", "DNS:localhost"], days: 3650 };
        pulsetrack_localpg::make_server_certificate(&self.tls, "ca", &server)?;
        std::fs::remove_file(self.tls.join("ca.key")).context("cannot delete the CA's key")?;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        for public in [self.ca_file(), cert.clone()] {
            std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o644))?;
        }
        std::fs::set_permissions(&self.tls, std::fs::Permissions::from_mode(0o755))?;
        self.give_to_os_user(&[&self.tls, &cert, &key])
    }

    /// Whether a postmaster runs on this data folder (say, left by a killed `up`).
    pub async fn is_running(&self) -> bool {
        self.command("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    }

    pub async fn start(&self) -> anyhow::Result<()> {
        if self.is_running().await {
            // Left by an `up` that was killed: stop it and start on this run's port.
            self.stop().await?;
        }
        self.run(
            "pg_ctl",
            &[
                "start".into(),
                "-D".into(),
                self.data.clone().into(),
                "-l".into(),
                self.log.clone().into(),
                "-w".into(),
                "-t".into(),
                "60".into(),
                "-o".into(),
                // WAL segments (given at every start, so that a data folder made by an
                // earlier `up` has them too): a backend that needs a new 16 MB segment
                // zero-fills and fsyncs it inside its commit, and during checkpoints this
                // stalled a batch of ~100 creates past 64 ms once or twice a second at full
                // load (bench/ISSUE17.md, 2026-12-06). So a segment is made without the
                // zeros, and up to 1 GB of used segments is kept to recycle instead of
                // made anew.
                format!(
                    "-p {} -c ssl=on -c ssl_cert_file='{}' -c ssl_key_file='{}' -c wal_init_zero=off -c min_wal_size=1GB",
                    self.server.port,
                    self.tls.join("server.pem").display(),
                    self.tls.join("server.key").display()
                )
                .into(),
            ],
        )
        .await
        .with_context(|| format!("Postgres did not start; see {}", self.log.display()))
    }

    pub async fn stop(&self) -> anyhow::Result<()> {
        self.run(
            "pg_ctl",
            &["stop".into(), "-D".into(), self.data.clone().into(), "-m".into(), "fast".into(), "-w".into()],
        )
        .await
    }

    /// The postmaster's pid (first line of postmaster.pid), for memory reports.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?.lines().next()?.trim().parse().ok()
    }
}

/// The cluster's OS user must be able to enter every folder above its data.
fn reachable_by(dir: &Path, user: &nix::unistd::User) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dir = dir.canonicalize()?;
    for folder in dir.ancestors() {
        let meta = std::fs::metadata(folder)?;
        let mode = meta.mode();
        let enters = mode & 0o001 != 0
            || (meta.uid() == user.uid.as_raw() && mode & 0o100 != 0)
            || (meta.gid() == user.gid.as_raw() && mode & 0o010 != 0);
        if !enters {
            bail!(
                "Postgres runs as OS user {} (initdb refuses root), which cannot enter {}: \
                 choose a --data-dir below folders it can enter, or `chmod o+x {}`",
                user.name,
                folder.display(),
                folder.display()
            );
        }
    }
    Ok(())
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The password of a service's own role on `server` (see *Databases* in docs/src/deploying.md): derived
/// from the server's credentials and the role's name, so that every `up` on the same
/// server (from another data folder, with `--database-url`) gives a role the same
/// password and none resets another's; written to `path` (mode 0600) for whoever wants
/// to connect as the role. On a server that takes its user without a password the
/// derivation adds nothing, and it needs nothing: that server already lets anyone in.
pub fn role_password(server: &Server, role: &str, path: &Path) -> anyhow::Result<String> {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    for part in ["pulsetrack up: the password of a service role", &server.user, &server.password, role] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let password: String = hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    if std::fs::read_to_string(path).is_ok_and(|kept| kept.trim() == password) {
        return Ok(password);
    }
    write_private(path, &password)?;
    Ok(password)
}

/// Writes `secret` to `path`, private from the first byte: created with mode 0600.
fn write_private(path: &Path, secret: &str) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut file, format!("{secret}\n").as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A generated secret kept in `path` (mode 0600), created on first use.
pub fn secret_file(path: &Path) -> anyhow::Result<String> {
    secret_file_of_length(path, 18)
}

/// [`secret_file`] with `length` characters when it is generated.
pub fn secret_file_of_length(path: &Path, length: usize) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim().to_string();
        if !existing.is_empty() {
            return Ok(existing);
        }
    }
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    // Bytes at or above the largest multiple of the alphabet's size are skipped, so that
    // every character is equally likely.
    let limit = 256 - 256 % ALPHABET.len();
    let mut random = std::fs::File::open("/dev/urandom")?;
    let mut secret = String::with_capacity(length);
    while secret.len() < length {
        let mut byte = [0u8; 1];
        std::io::Read::read_exact(&mut random, &mut byte)?;
        if usize::from(byte[0]) < limit {
            secret.push(ALPHABET[usize::from(byte[0]) % ALPHABET.len()] as char);
        }
    }
    write_private(path, &secret)?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_gives_the_server() {
        let s = Server::from_url("postgres://app:p%40ss@db.internal:6543/whatever").expect("url");
        assert_eq!(s, Server { host: "db.internal".into(), port: 6543, user: "app".into(), password: "p@ss".into() });
        assert_eq!(s.display(), "postgres://app@db.internal:6543");
        let d = Server::from_url("postgresql://127.0.0.1").expect("url");
        assert_eq!((d.port, d.user.as_str(), d.password.as_str()), (5432, "postgres", ""));
        assert!(Server::from_url("mysql://x@y/z").is_err());
        assert!(Server::from_url("not a url").is_err());
    }

    #[test]
    fn role_passwords_follow_the_server_and_the_role_and_are_kept_private() {
        let dir = std::env::temp_dir().join(format!("pt-role-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let server = Server { host: "127.0.0.1".into(), port: 5432, user: "pulsetrack".into(), password: "pw".into() };
        let a = role_password(&server, "billing_service_app", &dir.join("a")).expect("password");
        assert_eq!(a.len(), 32);
        // Another data folder on the same server: the same password.
        assert_eq!(role_password(&server, "billing_service_app", &dir.join("b")).expect("again"), a);
        assert_ne!(role_password(&server, "auth_service_app", &dir.join("c")).expect("other role"), a);
        let other = Server { password: "other".into(), ..server.clone() };
        assert_ne!(role_password(&other, "billing_service_app", &dir.join("d")).expect("other server"), a);
        assert_eq!(std::fs::read_to_string(dir.join("a")).expect("kept").trim(), a);
        let mode = std::fs::metadata(dir.join("a")).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn secrets_are_generated_once_and_kept_private() {
        let dir = std::env::temp_dir().join(format!("pt-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("s");
        let first = secret_file(&path).expect("secret");
        assert_eq!(first.len(), 18);
        assert_eq!(secret_file(&path).expect("again"), first);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let long = dir.join("long");
        let first = secret_file_of_length(&long, 64).expect("secret");
        assert_eq!(first.len(), 64);
        assert!(first.chars().all(|c| c.is_ascii_alphanumeric()), "{first}");
        assert_eq!(secret_file_of_length(&long, 64).expect("again"), first);
        assert_eq!(std::fs::metadata(&long).expect("meta").permissions().mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
