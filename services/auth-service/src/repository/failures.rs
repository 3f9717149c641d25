//! Failed logins, counted per email address whether or not an account has it, so that
//! a lockout answers a known and an unknown address alike.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::secs;

/// How failed logins lock an address: the first `free` failures in a row cost nothing;
/// each one after locks it for `first_lock`, doubling, at most `max_lock`. Failures
/// older than `forget_after` start the count again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub free: u32,
    pub first_lock: Duration,
    pub max_lock: Duration,
    pub forget_after: Duration,
}

impl Default for Lockout {
    fn default() -> Self {
        Self {
            free: 4,
            first_lock: Duration::from_secs(1),
            max_lock: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(60 * 60),
        }
    }
}

impl Lockout {
    /// The lock after the `failures`-th failure in a row, if any.
    pub fn lock_after(&self, failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(self.free).filter(|n| *n > 0)?;
        let factor = 2u32.saturating_pow(over - 1);
        Some(self.first_lock.saturating_mul(factor).min(self.max_lock))
    }
}

#[derive(Clone)]
pub struct LoginFailures {
    pool: PgPool,
}

impl LoginFailures {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Until when `email` is locked, if it is now.
    pub async fn locked_until(&self, email: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        sqlx::query_scalar("SELECT locked_until FROM login_failures WHERE email = $1 AND locked_until > now()")
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .map(Option::flatten)
    }

    /// Counts a failed login of `email` and locks it as `lockout` says; returns until
    /// when it is locked now. Rows past the forgetting window are pruned as it goes.
    pub async fn record(&self, email: &str, lockout: &Lockout) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let forget = secs(lockout.forget_after);
        let failures: i32 = sqlx::query_scalar(
            "INSERT INTO login_failures AS f (email, failures, last_failed_at) VALUES ($1, 1, now()) \
             ON CONFLICT (email) DO UPDATE SET \
               failures = CASE WHEN f.last_failed_at < now() - make_interval(secs => $2) \
                               THEN 1 ELSE f.failures + 1 END, \
               last_failed_at = now() \
             RETURNING failures",
        )
        .bind(email)
        .bind(forget)
        .fetch_one(&self.pool)
        .await?;
        if failures == 1 {
            sqlx::query("DELETE FROM login_failures WHERE last_failed_at < now() - make_interval(secs => $1)")
                .bind(forget)
                .execute(&self.pool)
                .await?;
        }
        let Some(lock) = lockout.lock_after(u32::try_from(failures).unwrap_or(u32::MAX)) else {
            return Ok(None);
        };
        sqlx::query_scalar(
            "UPDATE login_failures SET locked_until = now() + make_interval(secs => $2) \
             WHERE email = $1 RETURNING locked_until",
        )
        .bind(email)
        .bind(secs(lock))
        // A successful login may have cleared the row meanwhile: then nothing is locked.
        .fetch_optional(&self.pool)
        .await
    }

    /// Forgets the failed logins of `email` (after a successful one).
    pub async fn clear(&self, email: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM login_failures WHERE email = $1").bind(email).execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_double_after_the_free_failures_up_to_the_maximum() {
        let lockout = Lockout::default();
        assert_eq!(lockout.lock_after(4), None);
        assert_eq!(lockout.lock_after(5), Some(Duration::from_secs(1)));
        assert_eq!(lockout.lock_after(6), Some(Duration::from_secs(2)));
        assert_eq!(lockout.lock_after(40), Some(Duration::from_secs(900)));
    }
}
