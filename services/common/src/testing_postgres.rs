//! A private Postgres cluster for one test that accepts only TLS (feature `testing`):
//! initdb/pg_ctl in a temporary folder on a free loopback port, `ssl = on` with a
//! server certificate for `localhost` signed by a CA made for the test (openssl CLI),
//! and a pg_hba that allows `hostssl` only (`hostnossl all all all reject`).
//!
//! Two roles have passwords: the superuser `postgres`, and `master`, made like RDS's
//! master user (LOGIN, CREATEDB, CREATEROLE, not a superuser).

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use sqlx::{
    Connection, PgConnection,
    postgres::{PgConnectOptions, PgSslMode},
};

/// The RDS-like admin role of a [`TlsPostgres`].
pub const MASTER: &str = "master";

pub struct TlsPostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    os_user: Option<String>,
    superuser_password: String,
    master_password: String,
}

impl TlsPostgres {
    /// Makes the certificates and the cluster, starts it, and creates `master`. Panics
    /// when PostgreSQL's server tools or openssl are missing: no fallback.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("pt-tls-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("run")).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let os_user =
            running_as_root().then(|| std::env::var("PULSETRACK_POSTGRES_OS_USER").unwrap_or("postgres".into()));
        let cluster = Self {
            bin: pulsetrack_localpg::find_bin_dir(None).unwrap_or_else(|e| panic!("the TLS tests: {e}")),
            port: free_port(),
            os_user,
            superuser_password: uuid::Uuid::new_v4().simple().to_string(),
            master_password: format!("m'{}\"", uuid::Uuid::new_v4().simple()),
            dir,
        };
        cluster.make_certificates();
        cluster.initdb();
        cluster.pg_ctl(&["start", "-w", "-t", "60", "-l"], Some(&cluster.dir.join("postgres.log")));
        let mut su = cluster.connect("postgres", &cluster.superuser_password.clone(), "postgres").await;
        let statement: String = sqlx::query_scalar(
            "SELECT format('CREATE ROLE %I LOGIN CREATEDB CREATEROLE PASSWORD %L', $1::text, $2::text)",
        )
        .bind(MASTER)
        .bind(&cluster.master_password)
        .fetch_one(&mut su)
        .await
        .unwrap_or_else(|e| panic!("format: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut su).await.unwrap_or_else(|e| panic!("master: {e}"));
        let _ = su.close().await;
        cluster
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA that signed the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A CA that signed nothing this server presents.
    pub fn wrong_ca_file(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    pub fn master_password(&self) -> &str {
        &self.master_password
    }

    /// `postgres://user:password@host:port/database`, the password percent-encoded.
    pub fn url(&self, user: &str, password: &str, host: &str, database: &str) -> String {
        let encoded: String = password
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        format!("postgres://{user}:{encoded}@{host}:{}/{database}", self.port)
    }

    /// A superuser connection to `database`, over TLS with the certificate checked.
    pub async fn superuser(&self, database: &str) -> PgConnection {
        self.connect("postgres", &self.superuser_password, database).await
    }

    async fn connect(&self, user: &str, password: &str, database: &str) -> PgConnection {
        let ca = std::fs::read(self.ca_file()).unwrap_or_else(|e| panic!("CA: {e}"));
        let options = PgConnectOptions::new()
            .host("localhost")
            .port(self.port)
            .username(user)
            .password(password)
            .database(database)
            .ssl_mode(PgSslMode::VerifyFull)
            .ssl_root_cert_from_pem(ca);
        PgConnection::connect_with(&options).await.unwrap_or_else(|e| panic!("cannot connect as {user}: {e}"))
    }

    fn make_certificates(&self) {
        let made = pulsetrack_localpg::make_ca(&self.dir, "ca", "PulseTrack test ca", 2)
            .and_then(|()| pulsetrack_localpg::make_ca(&self.dir, "other-ca", "PulseTrack test other-ca", 2))
            // `localhost` alone: verify-full to 127.0.0.1 must fail.
            .and_then(|()| {
                let server = pulsetrack_localpg::ServerCertificate { names: &["DNS:localhost"], days: 2 };
                pulsetrack_localpg::make_server_certificate(&self.dir, "ca", &server)
            });
        made.unwrap_or_else(|e| panic!("the TLS tests' certificates: {e}"));
    }

    fn initdb(&self) {
        let data = self.dir.join("data");
        let pwfile = self.dir.join("pwfile");
        std::fs::write(&pwfile, &self.superuser_password).unwrap_or_else(|e| panic!("pwfile: {e}"));
        if let Some(user) = &self.os_user {
            // Postgres runs as this OS user: it owns the folder, its key is private to it.
            let status = Command::new("chown").args(["-R", &format!("{user}:")]).arg(&self.dir).status();
            assert!(status.is_ok_and(|s| s.success()), "cannot give {} to {user}", self.dir.display());
        }
        set_mode(&self.dir.join("server.key"), 0o600);
        self.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                format!("--pwfile={}", pwfile.display()).as_ref(),
                "--auth-host=scram-sha-256".as_ref(),
                "--auth-local=trust".as_ref(),
                "--no-instructions".as_ref(),
            ],
        );
        let d = self.dir.display();
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{d}/run'\nssl = on\n\
             ssl_cert_file = '{d}/server.pem'\nssl_key_file = '{d}/server.key'\nfsync = off\n",
            self.port
        );
        append(&data.join("postgresql.conf"), &conf);
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all all reject\n",
        )
        .unwrap_or_else(|e| panic!("pg_hba.conf: {e}"));
    }

    fn pg_ctl(&self, args: &[&str], log: Option<&Path>) {
        let data = self.dir.join("data");
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        if let Some(log) = log {
            all.push(log.as_os_str());
        }
        all.extend(["-D".as_ref(), data.as_os_str()]);
        self.run("pg_ctl", &all);
    }

    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) {
        let program = self.bin.join(tool);
        let mut command = match &self.os_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        let out = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        assert!(
            out.status.success(),
            "{tool} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let mut command = match &self.os_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(self.bin.join("pg_ctl"));
                c
            }
            None => Command::new(self.bin.join("pg_ctl")),
        };
        let _ = command
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if std::thread::panicking() {
            eprintln!("the TLS cluster's files and log are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn append(path: &Path, text: &str) {
    let mut current = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    current.push_str(text);
    std::fs::write(path, current).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
