//! Users and the signing key in auth-service's own database.

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
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    username: String,
    password_hash: String,
    role: String,
}

impl TryFrom<UserRow> for User {
    type Error = sqlx::Error;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        let role = row.role.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))?;
        Ok(User { id: row.id, email: row.email, username: row.username, password_hash: row.password_hash, role })
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
            }),
            Err(e) if pulsetrack_common::error::unique_violation(&e) == Some("users_email_key") => {
                Err(RepoError::EmailTaken)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn find_by_email(&self, email: &str) -> Result<Option<User>, sqlx::Error> {
        sqlx::query_as::<_, UserRow>("SELECT id, email, username, password_hash, role FROM users WHERE email = $1")
            .bind(email)
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
