//! Accounts: who they are, their role, status and password.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use pulsetrack_common::identity::Role;
use sqlx::PgPool;
use uuid::Uuid;

use super::RepoError;
use crate::password::PasswordGrade;

/// Whether an account may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum AccountStatus {
    Active,
    /// Cannot log in or refresh; its sessions have ended.
    Disabled,
}

impl AccountStatus {
    pub const ALL: [AccountStatus; 2] = [AccountStatus::Active, AccountStatus::Disabled];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Disabled => "DISABLED",
        }
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccountStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| format!("{s:?} is not ACTIVE or DISABLED"))
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub status: AccountStatus,
    pub password_grade: PasswordGrade,
    pub must_change_password: bool,
    pub managed_by_secret: bool,
    /// A second factor is enrolled: login needs a TOTP or recovery code.
    pub totp_enrolled: bool,
    pub created_at: DateTime<Utc>,
}

/// The columns of [`User`], in [`UserRow`]'s order.
pub(super) const USER_COLUMNS: &str = "u.id, u.email, u.username, u.password_hash, u.role, u.status, \
    u.password_grade, u.must_change_password, u.managed_by_secret, \
    u.totp_enrolled_at IS NOT NULL AS totp_enrolled, u.created_at";

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: Uuid,
    email: String,
    username: String,
    password_hash: String,
    role: String,
    status: String,
    password_grade: String,
    must_change_password: bool,
    managed_by_secret: bool,
    totp_enrolled: bool,
    created_at: DateTime<Utc>,
}

fn decode<T: FromStr<Err = String>>(value: &str) -> Result<T, sqlx::Error> {
    value.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))
}

impl TryFrom<UserRow> for User {
    type Error = sqlx::Error;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(User {
            role: decode(&row.role)?,
            status: decode(&row.status)?,
            password_grade: decode(&row.password_grade)?,
            id: row.id,
            email: row.email,
            username: row.username,
            password_hash: row.password_hash,
            must_change_password: row.must_change_password,
            managed_by_secret: row.managed_by_secret,
            totp_enrolled: row.totp_enrolled,
            created_at: row.created_at,
        })
    }
}

/// A new account's fields.
pub struct NewUser<'a> {
    pub email: &'a str,
    pub username: &'a str,
    pub password_hash: &'a str,
    pub password_grade: PasswordGrade,
    pub role: Role,
    pub managed_by_secret: bool,
}

/// A new password for an account.
pub struct PasswordUpdate<'a> {
    pub hash: &'a str,
    pub grade: PasswordGrade,
}

#[derive(Clone)]
pub struct UserRepository {
    pool: PgPool,
}

impl UserRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn insert(&self, new: &NewUser<'_>) -> Result<User, RepoError> {
        let result = sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
            "INSERT INTO users AS u (id, email, username, password_hash, password_grade, role, managed_by_secret) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {USER_COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(new.email)
        .bind(new.username)
        .bind(new.password_hash)
        .bind(new.password_grade.as_str())
        .bind(new.role.as_str())
        .bind(new.managed_by_secret)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(row) => Ok(User::try_from(row)?),
            Err(e) if pulsetrack_common::error::unique_violation(&e) == Some("users_email_key") => {
                Err(RepoError::EmailTaken)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn find_by_email(&self, email: &str) -> Result<Option<User>, sqlx::Error> {
        self.find_where("u.email = $1", email).await
    }

    pub async fn find(&self, id: Uuid) -> Result<Option<User>, sqlx::Error> {
        self.find_where("u.id = $1", id).await
    }

    async fn find_where<T>(&self, condition: &str, value: T) -> Result<Option<User>, sqlx::Error>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE {condition}"
        )))
        .bind(value)
        .fetch_optional(&self.pool)
        .await?
        .map(User::try_from)
        .transpose()
    }

    /// Accounts, newest first, optionally of one role only; at most `limit`.
    pub async fn list(&self, role: Option<Role>, limit: i64) -> Result<Vec<User>, sqlx::Error> {
        sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE $1::text IS NULL OR u.role = $1 \
             ORDER BY u.created_at DESC, u.id LIMIT $2"
        )))
        .bind(role.map(Role::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(User::try_from)
        .collect()
    }

    /// Gives `user_id` the role `role`, recording who did, and whether its next login
    /// must change the password first; `None` when there is no such account.
    pub async fn set_role(
        &self,
        user_id: Uuid,
        role: Role,
        changed_by: Uuid,
        must_change_password: bool,
    ) -> Result<Option<User>, sqlx::Error> {
        self.update_returning(
            "role = $2, role_changed_by = $3, role_changed_at = now(), \
             must_change_password = (must_change_password OR $4) AND NOT managed_by_secret",
            user_id,
            |q| q.bind(role.as_str()).bind(changed_by).bind(must_change_password),
        )
        .await
    }

    pub async fn set_status(&self, user_id: Uuid, status: AccountStatus) -> Result<Option<User>, sqlx::Error> {
        let user = self.update_returning("status = $2", user_id, |q| q.bind(status.as_str())).await?;
        if status == AccountStatus::Disabled {
            self.spend_resets(user_id).await?;
        }
        Ok(user)
    }

    /// Sets the password (and clears a pending forced change); the account's
    /// outstanding reset tokens are spent.
    pub async fn set_password(&self, user_id: Uuid, update: &PasswordUpdate<'_>) -> Result<Option<User>, sqlx::Error> {
        let user = self
            .update_returning(
                "password_hash = $2, password_grade = $3, password_changed_at = now(), must_change_password = false",
                user_id,
                |q| q.bind(update.hash).bind(update.grade.as_str()),
            )
            .await?;
        self.spend_resets(user_id).await?;
        Ok(user)
    }

    /// Spends every outstanding reset token of `user_id` (its password changed, or it
    /// was disabled: a token handed over before must not work after).
    async fn spend_resets(&self, user_id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Makes an existing account the one `PULSETRACK_ADMIN_PASSWORD` manages.
    pub async fn manage_by_secret(&self, user_id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE users SET managed_by_secret = true WHERE id = $1 AND NOT managed_by_secret")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn update_returning<'q>(
        &self,
        set: &str,
        user_id: Uuid,
        bind: impl FnOnce(
            sqlx::query::QueryAs<'q, sqlx::Postgres, UserRow, sqlx::postgres::PgArguments>,
        ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, UserRow, sqlx::postgres::PgArguments>,
    ) -> Result<Option<User>, sqlx::Error> {
        let sql = format!("UPDATE users AS u SET {set} WHERE u.id = $1 RETURNING {USER_COLUMNS}");
        bind(sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql)).bind(user_id))
            .fetch_optional(&self.pool)
            .await?
            .map(User::try_from)
            .transpose()
    }
}
