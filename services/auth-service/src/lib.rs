//! auth-service: accounts, sessions and roles on its own Postgres database; issues
//! EdDSA JWTs, publishes the verification key as a JWKS and the ended sessions as a
//! revocation feed that the gateways follow.

pub mod admin_seed;
pub mod audit;
pub mod authenticated;
pub mod config;
pub mod error;
pub mod mfa;
pub mod password;
pub mod repository;
pub mod routes;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use pulsetrack_common::{
    HttpServer, Readiness,
    audit::AuditLog,
    error::json_fallbacks,
    request_id,
    service_auth::{REFUSAL_REPORTERS, ServiceVerifier},
};

pub use crate::audit::SERVICE;
use crate::{
    admin_seed::Seeded,
    config::Config,
    repository::{LoginFailures, PasswordResets, Revocations, Sessions, Totp, UserRepository},
    state::{AppState, LoginCounter, LoginThrottle, Mfa},
    tokens::TokenIssuer,
};

/// The service's migrations (`<service> migrate` runs them as a separate step).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How often ended sessions whose tokens have all expired are forgotten.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// The verifiers' leeway on `exp` (the gateway's and this service's).
const LEEWAY: Duration = Duration::from_secs(5);

/// Builds the service; `build` returns the bound server (port 0 picks a free port).
pub struct Application;

impl Application {
    /// Connects and migrates the database, loads the signing key, seeds the admin
    /// account and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<HttpServer> {
        let pool = pulsetrack_common::db::connect_and_migrate(&config.database, &MIGRATOR)
            .await
            .context("cannot prepare the auth database")?;
        tracing::info!(signup_mode = %config.signup_mode, password_policy = %config.password_policy, "account rules");
        let tokens = Arc::new(TokenIssuer::from_config(&config.jwt).context("the token signing key")?);
        // A revocation is kept while a token of its session may still be presented.
        let revocation_life = Duration::from_secs(config.jwt.ttl_seconds) + LEEWAY * 2;
        let users = UserRepository::new(pool.clone());
        let sessions = Sessions::new(pool.clone(), revocation_life);
        if let Some(admin) = &config.admin {
            match admin_seed::seed(admin, &users, &sessions).await.context("seeding the admin account")? {
                Seeded::Created => tracing::info!(email = %admin.email, "seeded the admin account"),
                Seeded::Rotated { sessions_ended } => {
                    tracing::info!(email = %admin.email, sessions_ended, "the admin secret changed: password set")
                }
                Seeded::Unchanged => {}
            }
        }
        let revocations = Revocations::new(pool.clone());
        tokio::spawn(prune(revocations.clone()));

        let metrics = pulsetrack_common::metrics::Metrics::new();
        metrics.track_pool(pool.clone(), config.database.max_connections);
        password::register_metrics(&metrics);
        let logins = LoginCounter::default();
        metrics.register("auth_logins", "Login attempts, by outcome", logins.clone());
        let state = AppState {
            users,
            sessions,
            revocations,
            resets: PasswordResets::new(pool.clone()),
            tokens,
            signup_mode: config.signup_mode,
            password_policy: config.password_policy,
            session_config: config.sessions,
            mfa: Mfa {
                totp: Totp::new(pool.clone()),
                seal: match &config.mfa.encryption_key {
                    Some(key) => Some(Arc::new(mfa::SealKey::from_secret(key.expose()).context("MFA_ENCRYPTION_KEY")?)),
                    None => None,
                },
                required_roles: config.mfa.required_roles.clone(),
            },
            throttle: Arc::new(LoginThrottle::new(&config.login_throttle, LoginFailures::new(pool.clone()))),
            logins,
            audit: AuditLog::spawn(pool.clone(), SERVICE, &config.audit),
            refusal_reporters: Arc::new(ServiceVerifier::new(&config.gateway_audit, SERVICE, &REFUSAL_REPORTERS)),
        };
        let router = json_fallbacks(routes::router(state).merge(Readiness::new().postgres(pool).routes()));
        Ok(HttpServer::bind(&config.listen, request_id::layer(metrics.instrument(router))).await?)
    }
}

/// Forgets expired revocations now and then; a failure is logged and tried again.
async fn prune(revocations: Revocations) {
    let mut tick = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tick.tick().await;
        match revocations.prune().await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "expired revocations forgotten"),
            Err(e) => tracing::warn!(error = %e, "cannot prune expired revocations"),
        }
    }
}
