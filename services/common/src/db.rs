//! Postgres: one database per service, created on first start if missing, reached over
//! TLS as configured (`DATABASE_SSL_MODE`, `DATABASE_SSL_ROOT_CERT`), a bounded pool, and
//! migrations run by each service with its own `sqlx::migrate!`.
//!
//! Two ways to start, chosen by configuration and logged at start-up:
//! - **admin mode** (`DATABASE_ADMIN_USER`/`DATABASE_ADMIN_PASSWORD` set, as the stack
//!   and `deployer up` do): the admin role (the RDS master user) creates the database,
//!   runs the migrations, and creates or updates the service's own role
//!   (`DATABASE_USER`) with only what the service needs: CONNECT on its database, USAGE
//!   on the schema, SELECT/INSERT/UPDATE/DELETE on its tables, USAGE on its sequences.
//!   The admin connection is closed before the service serves, as that role.
//! - **own-user mode** (no admin credentials: tests, a developer's `DATABASE_URL`): the
//!   configured user runs the migrations itself.

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use rustls_pki_types::{CertificateDer, pem::PemObject};
use sqlx::{
    ConnectOptions, Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions, PgSslMode},
};

use crate::{
    config::{ConfigError, Raw, Secret},
    settings::Database,
};

/// How the connection to Postgres is secured: libpq's `sslmode` values (without
/// `allow`, which prefers no TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, without checking its certificate (the default).
    Prefer,
    /// TLS, without checking the server's certificate.
    Require,
    /// TLS, the certificate must chain to a trusted CA.
    VerifyCa,
    /// TLS, the certificate must chain to a trusted CA and name the host connected to.
    VerifyFull,
}

impl SslMode {
    pub const ALL: [SslMode; 5] =
        [SslMode::Disable, SslMode::Prefer, SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull];

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the server's certificate is checked against the root CAs.
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }

    fn to_pg(self) -> PgSslMode {
        match self {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
            SslMode::VerifyCa => PgSslMode::VerifyCa,
            SslMode::VerifyFull => PgSslMode::VerifyFull,
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SslMode::ALL.into_iter().find(|m| m.as_str() == s.trim()).ok_or_else(|| {
            let all: Vec<&str> = SslMode::ALL.iter().map(|m| m.as_str()).collect();
            format!("`{s}` is not an sslmode; expected one of {}", all.join(", "))
        })
    }
}

/// The CA bundle the server's certificate must chain to, read once at start-up.
#[derive(Clone, PartialEq, Eq)]
pub struct RootCert {
    pub path: PathBuf,
    pem: Vec<u8>,
    certificates: usize,
}

impl RootCert {
    /// Reads `path`: an unreadable file, or one without a valid PEM certificate, is an error.
    pub fn read(path: impl Into<PathBuf>) -> Result<Self, String> {
        let path = path.into();
        let pem = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut certificates = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            cert.map_err(|e| format!("{} holds an invalid PEM certificate: {e}", path.display()))?;
            certificates += 1;
        }
        if certificates == 0 {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
        Ok(Self { path, pem, certificates })
    }

    pub fn certificates(&self) -> usize {
        self.certificates
    }
}

impl fmt::Debug for RootCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} certificates)", self.path.display(), self.certificates)
    }
}

/// The role that owns the schema (the RDS master user on AWS).
#[derive(Debug, Clone)]
pub struct AdminCredentials {
    pub user: String,
    pub password: Secret<String>,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `postgres://user:pass@host:port/database` of the service's own role; wrapped
    /// because it may hold a password.
    pub url: Secret<String>,
    /// Overrides the URL's `sslmode` when set.
    pub ssl_mode: Option<SslMode>,
    pub ssl_root_cert: Option<RootCert>,
    /// Set: admin mode (see the module docs); unset: the service's user migrates.
    pub admin: Option<AdminCredentials>,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl DatabaseConfig {
    /// `DATABASE_URL`; or, as ECS injects them from the RDS secrets, `DATABASE_HOST`,
    /// `DATABASE_PORT`, `DATABASE_NAME`, `DATABASE_USER`, `DATABASE_PASSWORD`; default:
    /// local Postgres, database `default_db`. `DATABASE_SSL_MODE`,
    /// `DATABASE_SSL_ROOT_CERT`, `DATABASE_ADMIN_USER`/`DATABASE_ADMIN_PASSWORD`,
    /// `DATABASE_MAX_CONNECTIONS` (default 10).
    pub fn from_settings(db: &Database<Raw>, default_db: &str) -> Result<Self, ConfigError> {
        let tuning = &db.tuning;
        let url = match (tuning.url.optional(), db.host.optional()) {
            (Some(url), _) => url,
            (None, Some(host)) => format!(
                "postgres://{}:{}@{host}:{}/{}",
                percent_encode(&db.user.string_or("postgres")),
                percent_encode(&db.password.string_or("")),
                db.port.parse_or(5432u16)?,
                percent_encode(&db.name.string_or(default_db)),
            ),
            (None, None) => format!("postgres://postgres@127.0.0.1:5432/{default_db}"),
        };
        let options =
            PgConnectOptions::from_str(&url).map_err(|e| tuning.url.error(format!("not a Postgres URL: {e}")))?;
        let ssl_mode =
            db.ssl_mode.optional().map(|m| m.parse::<SslMode>()).transpose().map_err(|e| db.ssl_mode.error(e))?;
        let ssl_root_cert =
            db.ssl_root_cert.optional().map(RootCert::read).transpose().map_err(|e| db.ssl_root_cert.error(e))?;
        if let Some(cert) = &ssl_root_cert {
            let mode = ssl_mode.unwrap_or(SslMode::Prefer);
            if !mode.verifies() {
                return Err(db.ssl_root_cert.error(format!(
                    "{} is set, but DATABASE_SSL_MODE={mode} does not check the server's certificate: \
                     use verify-full (or verify-ca)",
                    cert.path.display()
                )));
            }
        }
        let admin = match (db.admin_user.optional(), db.admin_password.optional()) {
            (Some(user), Some(password)) => Some(AdminCredentials { user, password: Secret::new(password) }),
            (None, None) => None,
            (Some(_), None) => return Err(db.admin_password.error("DATABASE_ADMIN_USER is set: set both or neither")),
            (None, Some(_)) => return Err(db.admin_user.error("DATABASE_ADMIN_PASSWORD is set: set both or neither")),
        };
        if let Some(admin) = &admin {
            if tuning.url.optional().is_none() && db.user.optional().is_none() {
                return Err(db.user.error("with DATABASE_ADMIN_USER, the service's own role must be named"));
            }
            if admin.user == options.get_username() {
                return Err(db.admin_user.error("the admin role cannot also be the service's role (DATABASE_USER)"));
            }
        }
        Ok(Self {
            url: Secret::new(url),
            ssl_mode,
            ssl_root_cert,
            admin,
            max_connections: tuning.max_connections.parse_or(10)?,
            acquire_timeout: Duration::from_millis(tuning.acquire_timeout_ms.parse_or(3000)?),
        })
    }

    pub fn with_url(url: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url.into()),
            ssl_mode: None,
            ssl_root_cert: None,
            admin: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
        }
    }

    /// The service role's connection options, TLS settings applied.
    pub fn options(&self) -> Result<PgConnectOptions, sqlx::Error> {
        use_aws_lc_rs();
        let mut options = PgConnectOptions::from_str(self.url.expose())?;
        if let Some(mode) = self.ssl_mode {
            options = options.ssl_mode(mode.to_pg());
        }
        if let Some(cert) = &self.ssl_root_cert {
            options = options.ssl_root_cert_from_pem(cert.pem.clone());
        }
        Ok(options)
    }

    /// The service role's password, as the URL holds it (percent-decoded).
    fn role_password(&self) -> Result<Secret<String>, sqlx::Error> {
        let url = url::Url::parse(self.url.expose()).map_err(|e| sqlx::Error::Configuration(e.into()))?;
        let password = url.password().unwrap_or_default();
        let decoded = pulsetrack_localpg::percent_decode(password)
            .ok_or_else(|| sqlx::Error::Configuration("the password is not valid percent-encoded UTF-8".into()))?;
        Ok(Secret::new(decoded))
    }

    /// The admin's connection options: the service's with the admin's credentials, and
    /// no statement logging (the role statement carries a password).
    fn admin_options(&self, admin: &AdminCredentials) -> Result<PgConnectOptions, sqlx::Error> {
        Ok(self.options()?.username(&admin.user).password(admin.password.expose()).disable_statement_logging())
    }
}

/// Why a database could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the service's role {role}: {reason}")]
    Role { role: String, reason: String },
}

/// Creates the database of `options` when it does not exist yet (the server must be up).
async fn ensure_database(options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let Some(name) = options.get_database().map(str::to_string) else {
        return Ok(());
    };
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres")).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        let sql = format!("CREATE DATABASE {}", quote_ident(&name));
        // The name is quoted by quote_ident, so the statement is safe.
        match sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another replica created it between our check and our CREATE (42P04), or
            // at the same moment (23505 on pg_database's name index).
            Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {}
            Err(e) => return Err(e),
        }
    }
    admin.close().await
}

/// A lazily connecting pool of the service's role: the service starts (and `/ready`
/// reports 503) while Postgres is down, and recovers when it comes back. Every acquire
/// reports its wait (for `db_pool_acquire_wait_seconds`, [`crate::pool_wait`]).
pub fn pool(config: &DatabaseConfig) -> Result<PgPool, sqlx::Error> {
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .acquire_time_level(log::LevelFilter::Trace)
        .connect_lazy_with(config.options()?))
}

/// Ensures the database, runs the service's migrations, and (admin mode) provisions the
/// service's role; returns the service role's pool.
pub async fn connect_and_migrate(
    config: &DatabaseConfig,
    migrator: &sqlx::migrate::Migrator,
) -> Result<PgPool, SetupError> {
    let options = config.options()?;
    let database = options.get_database().unwrap_or_default().to_string();
    let role = options.get_username().to_string();
    let tls =
        config.ssl_mode.map_or_else(|| format!("{:?} (URL or default)", options.get_ssl_mode()), |m| m.to_string());
    let root_cert = config.ssl_root_cert.as_ref().map(|c| format!("{c:?}"));
    match &config.admin {
        Some(admin) => {
            tracing::info!(%database, admin = %admin.user, %role, sslmode = %tls, ?root_cert,
                "database: migrations as the admin role, which provisions the service's role; serving as that role");
            let admin_options = config.admin_options(admin)?;
            ensure_database(&admin_options).await?;
            let mut conn = PgConnection::connect_with(&admin_options).await?;
            let prepared = async {
                migrator.run(&mut conn).await?;
                provision_role(&mut conn, &role, config.role_password()?.expose()).await
            }
            .await;
            // Closed before the service serves, whatever happened.
            let _ = conn.close().await;
            prepared?;
        }
        None => {
            tracing::info!(%database, %role, sslmode = %tls, ?root_cert,
                "database: no DATABASE_ADMIN_USER: the service's own user runs the migrations (own-user mode)");
            ensure_database(&options).await?;
            let mut conn = PgConnection::connect_with(&options).await?;
            let migrated = migrator.run(&mut conn).await;
            let _ = conn.close().await;
            migrated?;
        }
    }
    Ok(pool(config)?)
}

/// Serialises role provisioning among replicas starting together (advisory locks are
/// per database; "ptrole").
const ROLE_LOCK: i64 = 0x7074_726f_6c65;

/// Creates or updates `role` (LOGIN, `password`) and grants it exactly what a service
/// needs in the current database, in one transaction under an advisory lock, so that
/// replicas starting together do not collide. Refuses a role that is a superuser, may
/// create roles or databases, or owns the database (grants would mean nothing).
async fn provision_role(conn: &mut PgConnection, role: &str, password: &str) -> Result<(), SetupError> {
    let refuse = |reason: &str| SetupError::Role { role: role.to_string(), reason: reason.to_string() };
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ROLE_LOCK).execute(&mut *tx).await?;
    let existing: Option<(bool, bool, bool)> =
        sqlx::query_as("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1")
            .bind(role)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((superuser, createrole, createdb)) = existing
        && (superuser || createrole || createdb)
    {
        return Err(refuse("exists with SUPERUSER, CREATEROLE or CREATEDB: not a least-privileged role"));
    }
    // Postgres quotes the name (%I) and the password (%L) itself.
    let template = if existing.is_some() {
        "ALTER ROLE %I WITH LOGIN PASSWORD %L"
    } else {
        "CREATE ROLE %I WITH LOGIN PASSWORD %L"
    };
    let statement: String = sqlx::query_scalar("SELECT format($1, $2::text, $3::text)")
        .bind(template)
        .bind(role)
        .bind(password)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut *tx).await?;
    let (database, schema, owner): (String, String, String) =
        sqlx::query_as("SELECT current_database(), current_schema(), pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
            .fetch_one(&mut *tx)
            .await?;
    if owner == role {
        return Err(refuse("owns the database: it must be owned by the admin role"));
    }
    let (role, database, schema) = (quote_ident(role), quote_ident(&database), quote_ident(&schema));
    for grant in [
        format!("REVOKE ALL ON DATABASE {database} FROM PUBLIC"),
        format!("REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC"),
        format!("GRANT CONNECT ON DATABASE {database} TO {role}"),
        format!("GRANT USAGE ON SCHEMA {schema} TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"),
        format!("REVOKE ALL ON TABLE {schema}._sqlx_migrations FROM {role}"),
        format!("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"),
    ] {
        // Every identifier is quoted by quote_ident, so the statements are safe.
        sqlx::query(sqlx::AssertSqlSafe(grant)).execute(&mut *tx).await?;
    }
    // The audit trail is append-only: the role may add entries and read them, never
    // change or remove one.
    let audited: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(crate::audit::AUDIT_TABLE)
        .fetch_one(&mut *tx)
        .await?;
    if audited {
        let table = quote_ident(crate::audit::AUDIT_TABLE);
        let revoke = format!("REVOKE UPDATE, DELETE, TRUNCATE ON TABLE {schema}.{table} FROM {role}");
        // Quoted identifiers only.
        sqlx::query(sqlx::AssertSqlSafe(revoke)).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    tracing::info!(%role, %database, "database role provisioned: CONNECT, schema USAGE, table DML, sequence USAGE");
    Ok(())
}

pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Quotes a Postgres identifier (`"` doubled).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// sqlx's TLS takes rustls' process-wide crypto provider; when more than one provider
/// is compiled in (another dependency enabling `ring`), rustls cannot choose and panics
/// at the first handshake. The services use aws-lc-rs, as the deployer's AWS clients do.
fn use_aws_lc_rs() {
    // An error only says a provider is installed already; that one is used.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use pulsetrack_settings::{
        DATABASE_ADMIN_PASSWORD, DATABASE_ADMIN_USER, DATABASE_HOST, DATABASE_PASSWORD, DATABASE_SSL_MODE,
        DATABASE_SSL_ROOT_CERT, DATABASE_URL, DATABASE_USER, Var,
    };

    use super::*;
    use crate::config::from_pairs;

    fn config(pairs: &[(Var, &str)]) -> Result<DatabaseConfig, ConfigError> {
        DatabaseConfig::from_settings(&from_pairs(pairs), "svc")
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("auth"), "\"auth\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn url_parts_are_percent_encoded() {
        assert_eq!(percent_encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
        assert_eq!(pulsetrack_localpg::percent_decode(&percent_encode("p@ss:w/rd")).as_deref(), Some("p@ss:w/rd"));
        let cfg = DatabaseConfig::with_url(format!("postgres://u:{}@h/db", percent_encode("it's 'quoted'")));
        assert_eq!(cfg.role_password().expect("password").expose(), "it's 'quoted'");
        let url = format!("postgres://u:{}@h:5432/db", percent_encode("p@ss:w/rd"));
        let options = PgConnectOptions::from_str(&url).expect("parses");
        assert_eq!(options.get_host(), "h");
    }

    #[test]
    fn config_debug_hides_the_url_and_the_admin_password() {
        let cfg = DatabaseConfig::with_url("postgres://u:secretpw@h/db");
        assert!(!format!("{cfg:?}").contains("secretpw"));
        let cfg = config(&[
            (DATABASE_URL, "postgres://app@h/db"),
            (DATABASE_ADMIN_USER, "master"),
            (DATABASE_ADMIN_PASSWORD, "adminpw"),
        ])
        .expect("config");
        assert!(!format!("{cfg:?}").contains("adminpw"));
    }

    #[test]
    fn ssl_modes_parse_and_anything_else_is_a_config_error_naming_the_variable() {
        for mode in SslMode::ALL {
            assert_eq!(mode.as_str().parse::<SslMode>(), Ok(mode));
        }
        let cfg = config(&[(DATABASE_SSL_MODE, "verify-full")]).expect("config");
        assert_eq!(cfg.ssl_mode, Some(SslMode::VerifyFull));
        assert!(matches!(cfg.options().expect("options").get_ssl_mode(), PgSslMode::VerifyFull));
        let err = config(&[(DATABASE_SSL_MODE, "allow")]).expect_err("allow is refused");
        assert_eq!(err.variable, "DATABASE_SSL_MODE");
        assert!(err.reason.contains("verify-full"), "{}", err.reason);
        assert!(config(&[(DATABASE_SSL_MODE, "on")]).is_err());
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_config_error_not_a_downgrade() {
        let err = config(&[(DATABASE_SSL_MODE, "verify-full"), (DATABASE_SSL_ROOT_CERT, "/nonexistent/ca.pem")])
            .expect_err("missing file");
        assert_eq!(err.variable, "DATABASE_SSL_ROOT_CERT");
        assert!(err.reason.contains("cannot read /nonexistent/ca.pem"), "{}", err.reason);
        let dir = std::env::temp_dir().join(format!("pt-db-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let path = empty.display().to_string();
        let err = config(&[(DATABASE_SSL_MODE, "verify-full"), (DATABASE_SSL_ROOT_CERT, &path)]).expect_err("no cert");
        assert!(err.reason.contains("no PEM certificate"), "{}", err.reason);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_rds_bundle_is_read_and_needs_a_verifying_mode() {
        let bundle = concat!(env!("CARGO_MANIFEST_DIR"), "/../../certs/rds-global-bundle.pem");
        let cfg = config(&[(DATABASE_SSL_MODE, "verify-full"), (DATABASE_SSL_ROOT_CERT, bundle)]).expect("config");
        assert!(cfg.ssl_root_cert.as_ref().is_some_and(|c| c.certificates() > 90));
        let err = config(&[(DATABASE_SSL_MODE, "require"), (DATABASE_SSL_ROOT_CERT, bundle)]).expect_err("require");
        assert!(err.reason.contains("does not check"), "{}", err.reason);
        assert!(config(&[(DATABASE_SSL_ROOT_CERT, bundle)]).is_err(), "the default (prefer) does not verify");
    }

    #[test]
    fn admin_credentials_come_in_pairs_and_name_a_separate_service_role() {
        assert!(config(&[]).expect("config").admin.is_none());
        let err = config(&[(DATABASE_ADMIN_USER, "master")]).expect_err("pair");
        assert_eq!(err.variable, "DATABASE_ADMIN_PASSWORD");
        let err = config(&[(DATABASE_HOST, "db"), (DATABASE_ADMIN_USER, "master"), (DATABASE_ADMIN_PASSWORD, "pw")])
            .expect_err("no service role");
        assert_eq!(err.variable, "DATABASE_USER");
        let same = [
            (DATABASE_HOST, "db"),
            (DATABASE_USER, "master"),
            (DATABASE_PASSWORD, "pw"),
            (DATABASE_ADMIN_USER, "master"),
            (DATABASE_ADMIN_PASSWORD, "pw"),
        ];
        assert_eq!(config(&same).expect_err("same role").variable, "DATABASE_ADMIN_USER");
        let cfg = config(&[
            (DATABASE_HOST, "db"),
            (DATABASE_USER, "svc_app"),
            (DATABASE_PASSWORD, "apppw"),
            (DATABASE_ADMIN_USER, "master"),
            (DATABASE_ADMIN_PASSWORD, "adminpw"),
        ])
        .expect("config");
        let admin = cfg.admin.as_ref().expect("admin mode");
        let options = cfg.admin_options(admin).expect("options");
        assert_eq!(options.get_username(), "master");
        assert_eq!(cfg.options().expect("options").get_username(), "svc_app");
    }
}
