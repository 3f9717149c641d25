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

    /// Live revocations of the transactions from cursor `after` on that have ended,
    /// at most `limit`, oldest first, and the cursor to ask with next.
    ///
    /// The cursor is a transaction id: rows are served once every transaction older
    /// than their own has ended (below the snapshot's xmin), and the next cursor is
    /// that xmin, so a transaction that commits late is never skipped. A database
    /// whose xmin is below the follower's cursor is a new one: the follower restarts.
    pub async fn after(&self, after: i64, limit: usize) -> Result<RevocationFeed, sqlx::Error> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            revocation: Revocation,
            xid: i64,
            xmin: i64,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "WITH s AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) \
             SELECT r.seq, r.session_id, r.until, r.xid::text::bigint AS xid, s.xmin::text::bigint AS xmin \
             FROM revocations r, s \
             WHERE r.xid >= $1::text::xid8 AND r.xid < s.xmin AND r.until > now() \
             ORDER BY r.xid, r.seq LIMIT $2",
        )
        .bind(after.to_string())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let cursor = if rows.len() >= limit {
            // A full page: the next starts at its last transaction (read again, harmless).
            rows.last().map_or(after, |r| r.xid)
        } else {
            match rows.first() {
                Some(row) => row.xmin,
                None => {
                    sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
                        .fetch_one(&self.pool)
                        .await?
                }
            }
        };
        Ok(RevocationFeed { revocations: rows.into_iter().map(|r| r.revocation).collect(), cursor })
    }

    /// Forgets revocations whose tokens have all expired; returns how many.
    pub async fn prune(&self) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query("DELETE FROM revocations WHERE until < now()").execute(&self.pool).await?.rows_affected())
    }
}
