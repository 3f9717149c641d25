//! auth-service: signup and login on its own Postgres database; issues EdDSA JWTs and
//! publishes the verification key as a JWKS.

pub mod config;
pub mod error;
pub mod password;
pub mod repository;
pub mod routes;
pub mod tokens;

use std::sync::Arc;

use anyhow::Context;
use pulsetrack_common::{HttpServer, Readiness, error::json_fallbacks, request_id};

use crate::{config::Config, repository::UserRepository, tokens::TokenIssuer};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Builds the service; `build` returns the bound server (port 0 picks a free port).
pub struct Application;

impl Application {
    /// Connects and migrates the database, loads the signing key, seeds the admin
    /// account and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<HttpServer> {
        let pool = pulsetrack_common::db::connect_and_migrate(&config.database, &MIGRATOR)
            .await
            .context("cannot prepare the auth database")?;
        let users = UserRepository::new(pool.clone());

        tracing::info!(signup_mode = %config.signup_mode, "signup mode");
        let tokens = Arc::new(TokenIssuer::from_config(&config.jwt).context("the token signing key")?);

        if let Some(admin) = &config.admin {
            let hash = password::hash(admin.password.expose().clone()).await?;
            if users.seed_admin(&admin.email, "admin", &hash).await? {
                tracing::info!(email = %admin.email, "seeded the admin account");
            }
        }

        let metrics = pulsetrack_common::metrics::Metrics::new();
        metrics.track_pool(pool.clone(), config.database.max_connections);
        password::register_metrics(&metrics);
        let logins = routes::LoginCounter::default();
        metrics.register("auth_logins", "Login attempts, by outcome", logins.clone());
        let router = json_fallbacks(
            routes::router(routes::AppState {
                users,
                tokens,
                signup_mode: config.signup_mode,
                throttle: Arc::new(routes::LoginThrottle::new(&config.login_throttle)),
                logins,
            })
            .merge(Readiness::new().postgres(pool).routes()),
        );
        Ok(HttpServer::bind(&config.listen, request_id::layer(metrics.instrument(router))).await?)
    }
}
