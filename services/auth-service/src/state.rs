//! What every handler shares: the repositories, the token issuer and the settings.

use std::{collections::BTreeSet, net::IpAddr, sync::Arc};

use pulsetrack_common::{
    audit::AuditLog,
    identity::Role,
    rate_limit::{Rate, RateLimiter},
    service_auth::ServiceVerifier,
    settings::{PasswordPolicy, SignupMode},
};

use crate::{
    config::{LoginThrottleConfig, SessionConfig},
    error::Error,
    mfa::SealKey,
    repository::{Lockout, LoginFailures, PasswordResets, Revocations, Sessions, Totp, UserRepository},
    tokens::TokenIssuer,
};

#[derive(Clone)]
pub struct AppState {
    pub users: UserRepository,
    pub sessions: Sessions,
    pub revocations: Revocations,
    pub resets: PasswordResets,
    pub tokens: Arc<TokenIssuer>,
    pub signup_mode: SignupMode,
    pub password_policy: PasswordPolicy,
    pub session_config: SessionConfig,
    pub mfa: Mfa,
    pub throttle: Arc<LoginThrottle>,
    pub logins: LoginCounter,
    /// The service's own trail: every security event.
    pub audit: AuditLog,
    /// Checks the gateway's credential on its refusal reports.
    pub refusal_reporters: Arc<ServiceVerifier>,
}

/// The second factor: the stored secrets, the key they are sealed with (none when
/// `MFA_ENCRYPTION_KEY` is unset) and the roles that must use one.
#[derive(Clone)]
pub struct Mfa {
    pub totp: Totp,
    pub seal: Option<Arc<SealKey>>,
    pub required_roles: BTreeSet<Role>,
}

/// Failed logins, slowed per email address ([`Lockout`], in the database, whether or
/// not an account has the address) and per client address (a token bucket per
/// address, in memory).
pub struct LoginThrottle {
    pub lockout: Lockout,
    pub failures: LoginFailures,
    pub per_address: RateLimiter<IpAddr>,
}

impl LoginThrottle {
    /// `Err(Throttled)` while `email` is locked after failed logins (known or not).
    pub async fn check_email(&self, email: &str) -> Result<(), Error> {
        match self.failures.locked_until(email).await? {
            Some(until) => Err(Error::Throttled((until - chrono::Utc::now()).to_std().unwrap_or_default())),
            None => Ok(()),
        }
    }

    pub fn new(config: &LoginThrottleConfig, failures: LoginFailures) -> Self {
        Self {
            lockout: config.lockout,
            failures,
            per_address: RateLimiter::new(Rate::per_minute(config.failures_per_minute_per_address)),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct LoginOutcome {
    pub outcome: &'static str,
}

/// `auth_logins_total{outcome}`.
pub type LoginCounter =
    prometheus_client::metrics::family::Family<LoginOutcome, prometheus_client::metrics::counter::Counter>;
