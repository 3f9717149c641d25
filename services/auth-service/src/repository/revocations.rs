//! The revocation feed: ended sessions whose access tokens may still be unexpired, in
//! the order they ended. The gateways follow it with a cursor (`after`).

pub use pulsetrack_common::revocation::{Revocation, RevocationFeed};
use sqlx::PgPool;

#[derive(Clone)]
pub struct Revocations {
    pool: PgPool,
}

impl Revocations {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Live revocations after `after`, at most `limit`, oldest first.
    pub async fn after(&self, after: i64, limit: usize) -> Result<RevocationFeed, sqlx::Error> {
        let revocations: Vec<Revocation> = sqlx::query_as(
            "SELECT seq, session_id, until FROM revocations WHERE seq > $1 AND until > now() ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let cursor = match revocations.last() {
            Some(last) => last.seq,
            None => sqlx::query_scalar::<_, Option<i64>>("SELECT max(seq) FROM revocations")
                .fetch_one(&self.pool)
                .await?
                .unwrap_or(0)
                .min(after),
        };
        Ok(RevocationFeed { revocations, cursor })
    }

    /// Forgets revocations whose tokens have all expired; returns how many.
    pub async fn prune(&self) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query("DELETE FROM revocations WHERE until < now()").execute(&self.pool).await?.rows_affected())
    }
}
