//! auth-service's own database: accounts, sessions and their refresh tokens, the
//! revocations the gateways follow, password resets and failed logins. One file per
//! table group; every query of the service is here.

mod failures;
mod resets;
mod revocations;
mod sessions;
mod totp;
mod users;

pub use self::{
    failures::{Lockout, LoginFailures},
    resets::{PasswordResets, ResetTarget},
    revocations::{REVOCATION_LOCK, Revocation, RevocationFeed, Revocations},
    sessions::{EndReason, RefreshLookup, SessionRow, Sessions},
    totp::{Totp, TotpState},
    users::{AccountStatus, NewUser, PasswordUpdate, User, UserRepository},
};

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The SHA-256 digest under which a bearer secret (a refresh token, a reset token) is
/// stored: the secrets are 256-bit random values, so a fast hash is enough, and the
/// database never holds a usable token.
pub fn digest(secret: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Seconds as a Postgres interval argument (`make_interval(secs => $n)`).
fn secs(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}
