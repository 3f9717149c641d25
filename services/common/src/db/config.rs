//! Which database a service uses and how it connects: read from the settings (a URL,
//! or the parts ECS injects from the RDS secrets), with TLS, the optional admin role
//! and what the service's role may not change, all checked before anything connects.

use std::{str::FromStr, time::Duration};

use sqlx::{ConnectOptions, postgres::PgConnectOptions};

use super::tls::{RootCert, SslMode, use_ring};
use crate::{
    config::{ConfigError, Raw, Secret},
    settings::{Database, MigrationMode},
};

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
    /// Whether the service migrates at start-up or checks that a separate step did.
    pub migrations: MigrationMode,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Tables whose rows the service's role may add and read, never change or remove
    /// (admin mode revokes UPDATE, DELETE and TRUNCATE on each that exists): named by
    /// the service, which knows what its tables are for.
    pub append_only: &'static [&'static str],
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
            migrations: tuning.migrations.parse_or(MigrationMode::default())?,
            max_connections: tuning.max_connections.parse_or(10)?,
            acquire_timeout: Duration::from_millis(tuning.acquire_timeout_ms.parse_or(3000)?),
            append_only: &[],
        })
    }

    pub fn with_url(url: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url.into()),
            ssl_mode: None,
            ssl_root_cert: None,
            admin: None,
            migrations: MigrationMode::Run,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
            append_only: &[],
        }
    }

    /// The same configuration, with `tables` append-only for the service's role.
    pub fn with_append_only(self, tables: &'static [&'static str]) -> Self {
        Self { append_only: tables, ..self }
    }

    /// The service role's connection options, TLS settings applied.
    pub fn options(&self) -> Result<PgConnectOptions, sqlx::Error> {
        use_ring();
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
    pub(super) fn role_password(&self) -> Result<Secret<String>, sqlx::Error> {
        let url = url::Url::parse(self.url.expose()).map_err(|e| sqlx::Error::Configuration(e.into()))?;
        let password = url.password().unwrap_or_default();
        let decoded = pulsetrack_localpg::percent_decode(password)
            .ok_or_else(|| sqlx::Error::Configuration("the password is not valid percent-encoded UTF-8".into()))?;
        Ok(Secret::new(decoded))
    }

    /// The admin's connection options: the service's with the admin's credentials, and
    /// no statement logging (the role statement carries a password).
    pub(super) fn admin_options(&self, admin: &AdminCredentials) -> Result<PgConnectOptions, sqlx::Error> {
        Ok(self.options()?.username(&admin.user).password(admin.password.expose()).disable_statement_logging())
    }
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

#[cfg(test)]
mod tests {
    use pulsetrack_settings::{
        DATABASE_ADMIN_PASSWORD, DATABASE_ADMIN_USER, DATABASE_HOST, DATABASE_PASSWORD, DATABASE_SSL_MODE,
        DATABASE_SSL_ROOT_CERT, DATABASE_URL, DATABASE_USER, Var,
    };

    use sqlx::postgres::PgSslMode;

    use super::*;
    use crate::config::from_pairs;

    fn config(pairs: &[(Var, &str)]) -> Result<DatabaseConfig, ConfigError> {
        DatabaseConfig::from_settings(&from_pairs(pairs), "svc")
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
