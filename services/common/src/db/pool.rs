//! The service role's connection pool, the one the service serves with.

use sqlx::{PgPool, postgres::PgPoolOptions};

use super::config::DatabaseConfig;

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

pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}
