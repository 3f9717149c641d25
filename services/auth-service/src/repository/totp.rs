//! Second factors: an account's sealed TOTP secret, the last time step it used, and its
//! recovery codes. Every "use" is one conditional update, so a code is accepted once
//! even when two logins race.

use sqlx::PgPool;
use uuid::Uuid;

/// An account's TOTP state.
#[derive(Debug, Clone)]
pub struct TotpState {
    /// The sealed secret (see `crate::mfa::seal`).
    pub sealed: Vec<u8>,
    pub enrolled: bool,
}

#[derive(Clone)]
pub struct Totp {
    pool: PgPool,
}

impl Totp {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Stores a new sealed secret for an account not enrolled yet; `false` when it is.
    pub async fn start(&self, user_id: Uuid, sealed: &[u8]) -> Result<bool, sqlx::Error> {
        let updated = sqlx::query(
            "UPDATE users SET totp_secret = $2, totp_last_step = NULL WHERE id = $1 AND totp_enrolled_at IS NULL",
        )
        .bind(user_id)
        .bind(sealed)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    pub async fn state(&self, user_id: Uuid) -> Result<Option<TotpState>, sqlx::Error> {
        let row: Option<(Option<Vec<u8>>, bool)> =
            sqlx::query_as("SELECT totp_secret, totp_enrolled_at IS NOT NULL FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(sealed, enrolled)| sealed.map(|sealed| TotpState { sealed, enrolled })))
    }

    /// Confirms the enrolment of the secret `sealed` (the one the code was checked
    /// against) with a code of time step `step`, and stores the recovery codes'
    /// digests; `false` when it was confirmed already, the step was used, or another
    /// enrolment replaced the secret meanwhile.
    pub async fn confirm(
        &self,
        user_id: Uuid,
        sealed: &[u8],
        step: u64,
        recovery: &[[u8; 32]],
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let confirmed = sqlx::query(
            "UPDATE users SET totp_enrolled_at = now(), totp_last_step = $2 \
             WHERE id = $1 AND totp_secret = $3 AND totp_enrolled_at IS NULL \
             AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(user_id)
        .bind(step_value(step))
        .bind(sealed)
        .execute(&mut *tx)
        .await?;
        if confirmed.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        let digests: Vec<Vec<u8>> = recovery.iter().map(|d| d.to_vec()).collect();
        sqlx::query("INSERT INTO recovery_codes (code_digest, user_id) SELECT d, $2 FROM unnest($1::bytea[]) AS d")
            .bind(&digests)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Uses time step `step` of an enrolled account: `false` when it (or a later one)
    /// was used already.
    pub async fn use_step(&self, user_id: Uuid, step: u64) -> Result<bool, sqlx::Error> {
        let used = sqlx::query(
            "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_enrolled_at IS NOT NULL \
             AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(user_id)
        .bind(step_value(step))
        .execute(&self.pool)
        .await?;
        Ok(used.rows_affected() == 1)
    }

    /// Uses a recovery code of the account once: `false` when unknown or used.
    pub async fn use_recovery(&self, user_id: Uuid, digest: &[u8]) -> Result<bool, sqlx::Error> {
        let used = sqlx::query(
            "UPDATE recovery_codes SET used_at = now() WHERE code_digest = $1 AND user_id = $2 AND used_at IS NULL",
        )
        .bind(digest)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(used.rows_affected() == 1)
    }
}

/// A time step as the database stores it (steps are far below `i64::MAX`).
fn step_value(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}
