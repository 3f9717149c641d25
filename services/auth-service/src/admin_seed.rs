//! The seeded admin, managed by its secret: `PULSETRACK_ADMIN_PASSWORD` is its password.
//! At start the account is created if missing; when the secret no longer matches its
//! password (the secret was rotated), the password is set to it and the account's
//! sessions end. The API never changes this account's password.

use pulsetrack_common::identity::Role;

use crate::{
    config::AdminSeed,
    password,
    repository::{EndReason, NewUser, PasswordUpdate, Sessions, UserRepository},
};

/// What seeding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    Created,
    /// The secret changed: the password was set and this many sessions ended.
    Rotated {
        sessions_ended: u64,
    },
    Unchanged,
}

pub async fn seed(admin: &AdminSeed, users: &UserRepository, sessions: &Sessions) -> anyhow::Result<Seeded> {
    let secret = admin.password.expose().clone();
    let grade = password::grade(&secret, &[&admin.email]);
    let Some(existing) = users.find_by_email(&admin.email).await? else {
        let hash = password::hash(secret).await?;
        let new = NewUser {
            email: &admin.email,
            username: "admin",
            password_hash: &hash,
            password_grade: grade,
            role: Role::Admin,
            managed_by_secret: true,
        };
        return match users.insert(&new).await {
            Ok(_) => Ok(Seeded::Created),
            // Another replica created it meanwhile.
            Err(crate::repository::RepoError::EmailTaken) => Ok(Seeded::Unchanged),
            Err(e) => Err(e.into()),
        };
    };
    users.manage_by_secret(existing.id).await?;
    if password::verify(secret.clone(), Some(existing.password_hash.clone())).await? {
        return Ok(Seeded::Unchanged);
    }
    let hash = password::hash(secret).await?;
    users.set_password(existing.id, &PasswordUpdate { hash: &hash, grade }).await?;
    let sessions_ended = sessions.end_all_of(existing.id, None, EndReason::AdminSecretRotated).await?;
    Ok(Seeded::Rotated { sessions_ended })
}
