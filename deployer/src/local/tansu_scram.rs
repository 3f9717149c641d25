//! The private broker's logins: SCRAM-SHA-512 credentials in tansu's SQLite storage.
//!
//! `up` runs tansu with `--authentication`: every request but the SASL handshake then
//! needs a login, which tansu checks against the `scram_credential` table of its
//! storage. That includes AlterUserScramCredentials, so there is no way in for the
//! first user over the wire: `up` writes each service's credential into the table
//! itself, derived as RFC 5802 says. The password is not stored, only the salt, the
//! iteration count, StoredKey and ServerKey.
//!
//! tansu checks who a client is, not what it may do: it answers CreateAcls and ignores
//! the ACLs, so any user it knows may produce and consume (docs/src/security.md).

use std::{path::Path, time::Duration};

use anyhow::Context as _;
use hmac::{Hmac, Mac};
use rusqlite::{Connection, OpenFlags, params};
use sha2::{Digest, Sha512};

use super::tansu_db::has_object;

/// PBKDF2 rounds: `tansu user create`'s default, twice MSK's minimum of 4096.
pub const ITERATIONS: u32 = 8192;
/// Kafka's code of SCRAM-SHA-512 (`ScramMechanism`), as tansu stores it.
const SCRAM_SHA_512: i64 = 2;
/// tansu's cluster name unless `--cluster-id` says otherwise (`up` does not).
pub const CLUSTER: &str = "tansu_cluster";

/// Where `up` keeps `user`'s generated broker password (mode 0600).
pub fn password_file(data_dir: &Path, user: &str) -> std::path::PathBuf {
    data_dir.join(format!("kafka-password-{user}"))
}

/// What a server keeps of a SCRAM password (RFC 5802, section 3).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCredential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredential").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

impl StoredCredential {
    /// SaltedPassword = PBKDF2-HMAC-SHA-512(password, salt, iterations);
    /// StoredKey = SHA-512(HMAC(SaltedPassword, "Client Key"));
    /// ServerKey = HMAC(SaltedPassword, "Server Key").
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Self {
        let mut salted = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, iterations, &mut salted);
        let client_key = hmac_sha512(&salted, b"Client Key");
        Self {
            salt: salt.to_vec(),
            iterations,
            stored_key: Sha512::digest(&client_key).to_vec(),
            server_key: hmac_sha512(&salted, b"Server Key"),
        }
    }
}

fn hmac_sha512(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn random_salt() -> anyhow::Result<[u8; 24]> {
    let mut salt = [0u8; 24];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut salt)
        .context("cannot read /dev/urandom")?;
    Ok(salt)
}

/// Writes (or replaces) `user`'s SCRAM-SHA-512 login in the broker's database at
/// `path`, with a new salt. `Ok(false)` while tansu has not made its schema yet.
/// tansu may be running: SQLite's locking orders the two writers.
pub fn set_user(path: &Path, user: &str, password: &str) -> anyhow::Result<bool> {
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .with_context(|| format!("cannot open {}", path.display()))?;
    db.busy_timeout(Duration::from_secs(10))?;
    if !has_object(&db, "table", "cluster")? || !has_object(&db, "table", "scram_credential")? {
        return Ok(false);
    }
    let credential = StoredCredential::derive(password, &random_salt()?, ITERATIONS);
    // The cluster's row, as tansu registers it on start (the same upsert).
    db.execute("INSERT INTO cluster (name) VALUES (?1) ON CONFLICT (name) DO NOTHING", [CLUSTER])?;
    db.execute(
        "INSERT INTO scram_credential (cluster, username, mechanism, salt, iterations, stored_key, server_key) \
         SELECT c.id, ?2, ?3, ?4, ?5, ?6, ?7 FROM cluster c WHERE c.name = ?1 \
         ON CONFLICT (cluster, username, mechanism) DO UPDATE SET salt = excluded.salt, \
         iterations = excluded.iterations, stored_key = excluded.stored_key, server_key = excluded.server_key, \
         last_updated = current_timestamp",
        params![
            CLUSTER,
            user,
            SCRAM_SHA_512,
            credential.salt,
            credential.iterations,
            credential.stored_key,
            credential.server_key
        ],
    )?;
    Ok(true)
}

/// [`set_user`], waiting up to `timeout` for tansu to make its schema.
pub async fn set_user_when_ready(path: &Path, user: &str, password: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (p, u, pw) = (path.to_path_buf(), user.to_string(), password.to_string());
        if tokio::task::spawn_blocking(move || set_user(&p, &u, &pw)).await?? {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("tansu made no scram_credential table in {} within {timeout:?}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_keys_depend_on_password_and_salt_and_never_hold_the_password() {
        let a = StoredCredential::derive("pencil", b"salt-one", 4096);
        assert_eq!(a, StoredCredential::derive("pencil", b"salt-one", 4096), "deterministic");
        assert_eq!((a.stored_key.len(), a.server_key.len()), (64, 64));
        assert_ne!(a.stored_key, StoredCredential::derive("pencil", b"salt-two", 4096).stored_key);
        assert_ne!(a.stored_key, StoredCredential::derive("pencil!", b"salt-one", 4096).stored_key);
        assert_ne!(a.stored_key, a.server_key);
        assert!(!format!("{a:?}").contains("salt"), "Debug shows the iterations only");
    }
}
