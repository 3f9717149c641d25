//! Postgres: one database per service, created on first start if missing, a bounded
//! pool, and migrations run by each service with its own `sqlx::migrate!`.

use std::{str::FromStr, time::Duration};

use sqlx::{
    Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::{
    config::{ConfigError, Raw, Secret},
    settings::Database,
};

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `postgres://user:pass@host:port/database`; wrapped because it may hold a password.
    pub url: Secret<String>,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl DatabaseConfig {
    /// `DATABASE_URL`; or, as ECS injects them from the RDS secret, `DATABASE_HOST`,
    /// `DATABASE_PORT`, `DATABASE_NAME`, `DATABASE_USER`, `DATABASE_PASSWORD`; default:
    /// local Postgres, database `default_db`. `DATABASE_MAX_CONNECTIONS` (default 10).
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
        PgConnectOptions::from_str(&url).map_err(|e| tuning.url.error(format!("not a Postgres URL: {e}")))?;
        Ok(Self {
            url: Secret::new(url),
            max_connections: tuning.max_connections.parse_or(10)?,
            acquire_timeout: Duration::from_millis(tuning.acquire_timeout_ms.parse_or(3000)?),
        })
    }

    pub fn with_url(url: impl Into<String>) -> Self {
        Self { url: Secret::new(url.into()), max_connections: 10, acquire_timeout: Duration::from_secs(3) }
    }

    fn options(&self) -> Result<PgConnectOptions, sqlx::Error> {
        PgConnectOptions::from_str(self.url.expose())
    }
}

/// Creates the configured database when it does not exist yet (the server must be up).
pub async fn ensure_database(config: &DatabaseConfig) -> Result<(), sqlx::Error> {
    let options = config.options()?;
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
            // Another replica created it between our check and our CREATE.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e),
        }
    }
    admin.close().await
}

/// A lazily connecting pool: the service starts (and `/ready` reports 503) while
/// Postgres is down, and recovers when it comes back.
pub fn pool(config: &DatabaseConfig) -> Result<PgPool, sqlx::Error> {
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect_lazy_with(config.options()?))
}

/// Ensures the database, connects, and runs the service's migrations.
pub async fn connect_and_migrate(
    config: &DatabaseConfig,
    migrator: &sqlx::migrate::Migrator,
) -> Result<PgPool, sqlx::Error> {
    ensure_database(config).await?;
    let pool = pool(config)?;
    migrator.run(&pool).await?;
    Ok(pool)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("auth"), "\"auth\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn url_parts_are_percent_encoded() {
        assert_eq!(percent_encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
        let url = format!("postgres://u:{}@h:5432/db", percent_encode("p@ss:w/rd"));
        let options = PgConnectOptions::from_str(&url).expect("parses");
        assert_eq!(options.get_host(), "h");
    }

    #[test]
    fn config_debug_hides_the_url() {
        let cfg = DatabaseConfig::with_url("postgres://u:secretpw@h/db");
        assert!(!format!("{cfg:?}").contains("secretpw"));
    }
}
