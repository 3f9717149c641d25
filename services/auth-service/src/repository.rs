//! Users and the signing key in auth-service's own database.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pulsetrack_common::identity::Role;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// An account as a login sees it: the user and its recent failures.
#[derive(Debug, Clone)]
pub struct LoginAccount {
    pub user: User,
    /// Consecutive failed logins since the last successful one.
    pub failures: i32,
    pub locked_until: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    username: String,
    password_hash: String,
    role: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = sqlx::Error;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        let role = row.role.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))?;
        Ok(User {
            id: row.id,
            email: row.email,
            username: row.username,
            password_hash: row.password_hash,
            role,
            created_at: row.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct LoginRow {
    #[sqlx(flatten)]
    user: UserRow,
    failures: Option<i32>,
    locked_until: Option<DateTime<Utc>>,
}

/// How failed logins lock an account: the first `free` failures in a row cost nothing;
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

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Clone)]
pub struct UserRepository {
    pool: PgPool,
}

impl UserRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn insert(
        &self,
        email: &str,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, RepoError> {
        let id = Uuid::now_v7();
        let result =
            sqlx::query("INSERT INTO users (id, email, username, password_hash, role) VALUES ($1, $2, $3, $4, $5)")
                .bind(id)
                .bind(email)
                .bind(username)
                .bind(password_hash)
                .bind(role.as_str())
                .execute(&self.pool)
                .await;
        match result {
            Ok(_) => Ok(User {
                id,
                email: email.into(),
                username: username.into(),
                password_hash: password_hash.into(),
                role,
                created_at: Utc::now(),
            }),
            Err(e) if pulsetrack_common::error::unique_violation(&e) == Some("users_email_key") => {
                Err(RepoError::EmailTaken)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The account of `email` with its failed logins (one query).
    pub async fn find_for_login(&self, email: &str) -> Result<Option<LoginAccount>, sqlx::Error> {
        let row = sqlx::query_as::<_, LoginRow>(
            "SELECT u.id, u.email, u.username, u.password_hash, u.role, u.created_at, f.failures, f.locked_until \
             FROM users u LEFT JOIN login_failures f ON f.user_id = u.id WHERE u.email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(LoginAccount {
                user: User::try_from(row.user)?,
                failures: row.failures.unwrap_or(0),
                locked_until: row.locked_until,
            })
        })
        .transpose()
    }

    /// Counts a failed login of `user_id` and locks the account as `lockout` says;
    /// returns until when it is locked now.
    pub async fn record_failure(&self, user_id: Uuid, lockout: &Lockout) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let forget_ms = i64::try_from(lockout.forget_after.as_millis()).unwrap_or(i64::MAX);
        let failures: i32 = sqlx::query_scalar(
            "INSERT INTO login_failures AS f (user_id, failures, last_failed_at) VALUES ($1, 1, now()) \
             ON CONFLICT (user_id) DO UPDATE SET \
               failures = CASE WHEN f.last_failed_at < now() - make_interval(secs => $2::float8 / 1000) \
                               THEN 1 ELSE f.failures + 1 END, \
               last_failed_at = now() \
             RETURNING failures",
        )
        .bind(user_id)
        .bind(forget_ms as f64)
        .fetch_one(&self.pool)
        .await?;
        let Some(lock) = lockout.lock_after(u32::try_from(failures).unwrap_or(u32::MAX)) else {
            return Ok(None);
        };
        sqlx::query_scalar(
            "UPDATE login_failures SET locked_until = now() + make_interval(secs => $2::float8 / 1000) \
             WHERE user_id = $1 RETURNING locked_until",
        )
        .bind(user_id)
        .bind(lock.as_millis() as f64)
        .fetch_one(&self.pool)
        .await
    }

    /// Forgets the failed logins of `user_id` (after a successful one).
    pub async fn clear_failures(&self, user_id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM login_failures WHERE user_id = $1").bind(user_id).execute(&self.pool).await?;
        Ok(())
    }

    /// Accounts, newest first, optionally of one role only; at most `limit`.
    pub async fn list(&self, role: Option<Role>, limit: i64) -> Result<Vec<User>, sqlx::Error> {
        sqlx::query_as::<_, UserRow>(
            "SELECT id, email, username, password_hash, role, created_at FROM users \
             WHERE $1::text IS NULL OR role = $1 ORDER BY created_at DESC, id LIMIT $2",
        )
        .bind(role.map(Role::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(User::try_from)
        .collect()
    }

    /// Gives `user_id` the role `role`, recording who did; `None` when there is no such account.
    pub async fn set_role(&self, user_id: Uuid, role: Role, changed_by: Uuid) -> Result<Option<User>, sqlx::Error> {
        sqlx::query_as::<_, UserRow>(
            "UPDATE users SET role = $2, role_changed_by = $3, role_changed_at = now() WHERE id = $1 \
             RETURNING id, email, username, password_hash, role, created_at",
        )
        .bind(user_id)
        .bind(role.as_str())
        .bind(changed_by)
        .fetch_optional(&self.pool)
        .await?
        .map(User::try_from)
        .transpose()
    }

    /// Creates the admin account unless the email is already registered. Returns
    /// whether it was created.
    pub async fn seed_admin(&self, email: &str, username: &str, password_hash: &str) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "INSERT INTO users (id, email, username, password_hash, role) VALUES ($1, $2, $3, $4, 'ADMIN') \
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(email)
        .bind(username)
        .bind(password_hash)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
