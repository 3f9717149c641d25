//! The revocation feed: ended sessions whose access tokens may still be unexpired, in
//! the order they ended. The gateways follow it with a cursor (`after`).

pub use pulsetrack_common::revocation::{Revocation, RevocationFeed};
use sqlx::PgPool;

/// The advisory lock every transaction that writes revocations holds until it commits:
/// one at a time, so they commit in `seq` order and a follower's cursor never passes a
/// row that is still to commit.
pub const REVOCATION_LOCK: i64 = 0x7075_6c73_6533_3301;

#[derive(Clone)]
pub struct Revocations {
    pool: PgPool,
}

impl Revocations {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Live revocations after cursor `after` (a `seq`), at most `limit`, oldest first,
    /// and the cursor to ask with next. Revocations commit in `seq` order
    /// ([`REVOCATION_LOCK`]), so nothing below a row read is still to come. Past the
    /// last row, the cursor is where the sequence stands; a new database's sequence
    /// stands below a follower's cursor, which tells it to start again.
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
            // pg_sequences needs only USAGE on the sequence, which the service's role has.
            None => sqlx::query_scalar::<_, i64>(
                "SELECT COALESCE(last_value, 0) FROM pg_sequences \
                 WHERE schemaname = current_schema() AND sequencename = 'revocations_seq_seq'",
            )
            .fetch_one(&self.pool)
            .await?
            .min(after),
        };
        Ok(RevocationFeed { revocations, cursor })
    }

    /// Forgets revocations whose tokens have all expired; returns how many.
    pub async fn prune(&self) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query("DELETE FROM revocations WHERE until < now()").execute(&self.pool).await?.rows_affected())
    }
}
