//! One-time password reset tokens, which an ADMIN creates and hands over.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::secs;

/// The account a valid reset token resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetTarget {
    pub user_id: Uuid,
}

#[derive(Clone)]
pub struct PasswordResets {
    pool: PgPool,
}

impl PasswordResets {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Stores a reset token for `user_id`, valid for `life`; returns when it expires.
    pub async fn create(
        &self,
        user_id: Uuid,
        created_by: Uuid,
        digest: &[u8],
        life: Duration,
    ) -> Result<DateTime<Utc>, sqlx::Error> {
        sqlx::query_scalar(
            "INSERT INTO password_resets (token_digest, user_id, created_by, expires_at) \
             VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING expires_at",
        )
        .bind(digest)
        .bind(user_id)
        .bind(created_by)
        .bind(secs(life))
        .fetch_one(&self.pool)
        .await
    }

    /// The account the valid (unused, unexpired) reset token `digest` resets.
    pub async fn find(&self, digest: &[u8]) -> Result<Option<ResetTarget>, sqlx::Error> {
        let user_id: Option<Uuid> = sqlx::query_scalar(
            "SELECT user_id FROM password_resets WHERE token_digest = $1 AND used_at IS NULL AND expires_at > now()",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        Ok(user_id.map(|user_id| ResetTarget { user_id }))
    }

    /// Uses the reset token `digest` once: `None` when it is unknown, used or expired.
    pub async fn redeem(&self, digest: &[u8]) -> Result<Option<ResetTarget>, sqlx::Error> {
        let user_id: Option<Uuid> = sqlx::query_scalar(
            "UPDATE password_resets SET used_at = now() \
             WHERE token_digest = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        Ok(user_id.map(|user_id| ResetTarget { user_id }))
    }
}
