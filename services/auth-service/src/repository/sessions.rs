//! Sessions and their refresh tokens. Ending a session records a revocation in the
//! same transaction, so no session ends without the gateways hearing of it.

use std::{fmt, net::IpAddr, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{
    revocations::REVOCATION_LOCK,
    secs,
    users::{USER_COLUMNS, User, UserRow},
};

/// Why a session ended (`sessions.end_reason`, and the logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Logout,
    AccountDisabled,
    RoleChanged,
    PasswordChanged,
    PasswordReset,
    EndedByAdmin,
    /// A spent refresh token was presented again: it was stolen, or the client is broken.
    RefreshReused,
    IdleTimeout,
    MaxAge,
    /// `PULSETRACK_ADMIN_PASSWORD` changed.
    AdminSecretRotated,
}

impl EndReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::AccountDisabled => "account-disabled",
            Self::RoleChanged => "role-changed",
            Self::PasswordChanged => "password-changed",
            Self::PasswordReset => "password-reset",
            Self::EndedByAdmin => "ended-by-admin",
            Self::RefreshReused => "refresh-reused",
            Self::IdleTimeout => "idle-timeout",
            Self::MaxAge => "max-age",
            Self::AdminSecretRotated => "admin-secret-rotated",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A session; its columns are aliased so that a row joined with its account has no two
/// columns of one name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    #[sqlx(rename = "session_id")]
    pub id: Uuid,
    pub user_id: Uuid,
    #[sqlx(rename = "session_created_at")]
    pub created_at: DateTime<Utc>,
    pub last_refresh_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client_addr: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
}

const SESSION_COLUMNS: &str = "s.id AS session_id, s.user_id, s.created_at AS session_created_at, \
    s.last_refresh_at, s.expires_at, s.client_addr, s.ended_at";

/// What a presented refresh token leads to.
pub struct RefreshLookup {
    pub session: SessionRow,
    pub user: User,
    /// The token was used before (a replay).
    pub spent: bool,
}

#[derive(sqlx::FromRow)]
struct LookupRow {
    #[sqlx(flatten)]
    session: SessionRow,
    #[sqlx(flatten)]
    user: UserRow,
    spent: bool,
}

#[derive(Clone)]
pub struct Sessions {
    pool: PgPool,
    /// How long after a session ends its access tokens may still be presented (their
    /// life and the verifiers' leeway): how long its revocation is kept.
    revocation_life: Duration,
}

impl Sessions {
    pub fn new(pool: PgPool, revocation_life: Duration) -> Self {
        Self { pool, revocation_life }
    }

    /// Starts a session of `user` that ends at the latest after `max_age`, with its
    /// first refresh token; `None` when the account changed since it was read (its
    /// password, role or status: a reset, demotion or disable that ended its sessions
    /// while this login was being checked must not be outlived by it). The account's
    /// row is read `FOR SHARE`, so such a change waits for this session or is seen.
    pub async fn start(
        &self,
        user: &User,
        max_age: Duration,
        client_addr: Option<IpAddr>,
        refresh_digest: &[u8],
    ) -> Result<Option<SessionRow>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let unchanged: Option<bool> = sqlx::query_scalar(
            "SELECT password_hash = $2 AND role = $3 AND status = 'ACTIVE' FROM users WHERE id = $1 FOR SHARE",
        )
        .bind(user.id)
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if unchanged != Some(true) {
            return Ok(None);
        }
        let user_id = user.id;
        let session = sqlx::query_as::<_, SessionRow>(sqlx::AssertSqlSafe(format!(
            "INSERT INTO sessions AS s (id, user_id, expires_at, client_addr) \
             VALUES ($1, $2, now() + make_interval(secs => $3), $4) RETURNING {SESSION_COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(user_id)
        .bind(secs(max_age))
        .bind(client_addr.map(|a| a.to_string()))
        .fetch_one(&mut *tx)
        .await?;
        insert_refresh(&mut tx, session.id, refresh_digest).await?;
        tx.commit().await?;
        Ok(Some(session))
    }

    /// The session and account a refresh token belongs to, and whether it was spent.
    pub async fn lookup_refresh(&self, digest: &[u8]) -> Result<Option<RefreshLookup>, sqlx::Error> {
        let row = sqlx::query_as::<_, LookupRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS}, {USER_COLUMNS}, r.spent_at IS NOT NULL AS spent \
             FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id JOIN users u ON u.id = s.user_id \
             WHERE r.token_digest = $1"
        )))
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok(RefreshLookup { session: row.session, user: User::try_from(row.user)?, spent: row.spent }))
            .transpose()
    }

    /// Spends refresh token `old` of a live session and stores its successor. `false`
    /// when `old` was spent meanwhile (a concurrent use: the caller treats it as reuse)
    /// or the session ended.
    pub async fn rotate(&self, session_id: Uuid, old: &[u8], new: &[u8]) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET spent_at = now() WHERE token_digest = $1 AND session_id = $2 \
             AND spent_at IS NULL",
        )
        .bind(old)
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
        let touched = sqlx::query("UPDATE sessions SET last_refresh_at = now() WHERE id = $1 AND ended_at IS NULL")
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        if spent.rows_affected() != 1 || touched.rows_affected() != 1 {
            return Ok(false);
        }
        insert_refresh(&mut tx, session_id, new).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The live session `session_id` of `user_id`, with its account.
    pub async fn live(&self, session_id: Uuid, user_id: Uuid) -> Result<Option<(SessionRow, User)>, sqlx::Error> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            session: SessionRow,
            #[sqlx(flatten)]
            user: UserRow,
        }
        let row = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS}, {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = $1 AND s.user_id = $2 AND s.ended_at IS NULL AND s.expires_at > now()"
        )))
        .bind(session_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((row.session, User::try_from(row.user)?))).transpose()
    }

    /// The live sessions of `user_id`, newest first.
    pub async fn live_of(&self, user_id: Uuid) -> Result<Vec<SessionRow>, sqlx::Error> {
        sqlx::query_as::<_, SessionRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.user_id = $1 AND s.ended_at IS NULL \
             AND s.expires_at > now() ORDER BY s.created_at DESC"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
    }

    /// Ends one session; `false` when it had ended already.
    pub async fn end(&self, session_id: Uuid, reason: EndReason) -> Result<bool, sqlx::Error> {
        let ended = self.end_where("id = $1", session_id, None, reason).await?;
        Ok(ended == 1)
    }

    /// Ends every session of `user_id` but `except`; returns how many ended.
    pub async fn end_all_of(&self, user_id: Uuid, except: Option<Uuid>, reason: EndReason) -> Result<u64, sqlx::Error> {
        self.end_where("user_id = $1", user_id, except, reason).await
    }

    async fn end_where(
        &self,
        condition: &str,
        key: Uuid,
        except: Option<Uuid>,
        reason: EndReason,
    ) -> Result<u64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Sessions past their absolute limit are over already (refresh refuses them, and
        // no token outlives the limit); a revocation is written only for a session whose
        // last token may still be unexpired.
        let rows: Vec<(Uuid, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE sessions SET ended_at = now(), end_reason = $3 \
             WHERE {condition} AND ended_at IS NULL AND expires_at > now() AND ($2::uuid IS NULL OR id <> $2) \
             RETURNING id, last_refresh_at > now() - make_interval(secs => $4)"
        )))
        .bind(key)
        .bind(except)
        .bind(reason.as_str())
        .bind(secs(self.revocation_life))
        .fetch_all(&mut *tx)
        .await?;
        let ended: Vec<Uuid> = rows.iter().filter(|(_, live)| *live).map(|(id, _)| *id).collect();
        if !ended.is_empty() {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(REVOCATION_LOCK).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO revocations (session_id, until) \
                 SELECT id, now() + make_interval(secs => $2) FROM unnest($1::uuid[]) AS id",
            )
            .bind(&ended)
            .bind(secs(self.revocation_life))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }
}

async fn insert_refresh(
    tx: &mut Transaction<'_, Postgres>,
    session_id: Uuid,
    digest: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO refresh_tokens (token_digest, session_id) VALUES ($1, $2)")
        .bind(digest)
        .bind(session_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
