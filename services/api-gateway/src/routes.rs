//! The gateway's routing table: which upstream serves each route and which permission
//! it needs (the check itself is [`crate::policy`]), and the per-caller rate limit on
//! the public routes.

use std::sync::Arc;

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::Method,
    middleware::Next,
    response::Response,
    routing::{any, get},
};
use pulsetrack_common::identity::{Permission, auth_paths};

use crate::{
    api_docs::{api_docs, swagger_ui},
    audit,
    error::GatewayError,
    gateway::{Gateway, RateKey},
    proxy::Upstream,
    refusals::{Refused, method_name},
};

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route(auth_paths::LOGOUT, any(account))
        .route(auth_paths::ME, any(account))
        .route("/auth/me/{*rest}", any(account))
        .route("/auth/users", any(users))
        .route("/auth/users/{*rest}", any(users))
        .route("/auth/{*rest}", any(auth))
        .route("/api/patients", any(patients))
        .route("/api/patients/{*rest}", any(patients))
        .route("/api/billing/{*rest}", any(billing))
        .route("/api/analytics/{*rest}", any(analytics))
        .route("/api/audit", get(audit::entries))
        .route("/api/audit/verify", get(audit::verify))
        .route("/api-docs/{api}", get(api_docs))
        .route_layer(axum::middleware::from_fn_with_state(gateway.clone(), count_refusals))
        .with_state(gateway)
        .merge(swagger_ui())
}

/// Counts the responses the gateway itself refused with 401, 403 or 429 for the audit
/// trail ([`crate::refusals`]). What it keeps of each request until the answer is cheap
/// (the method, the matched route's shared name, the client); the route's text is
/// made only for a refusal.
async fn count_refusals(State(gw): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let client = gw.client(&request);
    let method = method_name(request.method());
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    if response.extensions().get::<Refused>().is_some() {
        let route = format!("{method} {}", matched.as_ref().map_or("(unmatched)", MatchedPath::as_str));
        gw.refusals.count(client, route, response.status());
    }
    response
}

/// Public: signup, login, refresh, password reset, keys; limited per client address.
async fn auth(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, GatewayError> {
    let client = gw.client(&request);
    gw.admit(RateKey::Address(client))?;
    let path = request.uri().path().to_string();
    gw.forward(&gw.auth, &path, client, request).await
}

/// The caller's own account and session: any valid token of a live session (one
/// restricted to a step reaches only that step's routes).
async fn account(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, GatewayError> {
    let path = request.uri().path().to_string();
    gw.authenticate_for(request.headers(), &path).await?;
    let client = gw.client(&request);
    gw.forward(&gw.auth, &path, client, request).await
}

/// Accounts, their roles, statuses and sessions.
async fn users(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, GatewayError> {
    let path = request.uri().path().to_string();
    gw.protected(&gw.auth, Permission::UsersManage, path, request).await
}

/// The permission a patient request needs, by method.
pub fn patient_permission(method: &Method) -> Permission {
    match *method {
        Method::GET | Method::HEAD => Permission::PatientsRead,
        Method::DELETE => Permission::PatientsDelete,
        _ => Permission::PatientsWrite,
    }
}

async fn patients(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, GatewayError> {
    let permission = patient_permission(request.method());
    gw.protected(&gw.patients, permission, strip_api(&request), request).await
}

async fn billing(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, GatewayError> {
    gw.protected(&gw.billing, Permission::BillingRead, strip_api(&request), request).await
}

async fn analytics(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, GatewayError> {
    gw.protected(&gw.analytics, Permission::AnalyticsRead, strip_api(&request), request).await
}

/// `/api/x/...` → `/x/...` (every `/api` route is matched with that prefix).
fn strip_api(request: &Request) -> String {
    request.uri().path().strip_prefix("/api").unwrap_or_default().to_string()
}

impl Gateway {
    /// Authenticates, checks `permission` and the caller's rate limit, and forwards with
    /// the caller's token (which the upstream verifies again).
    async fn protected(
        &self,
        upstream: &Upstream,
        permission: Permission,
        path: String,
        request: Request,
    ) -> Result<Response, GatewayError> {
        self.authorize(request.headers(), permission).await?;
        let client = self.client(&request);
        self.forward(upstream, &path, client, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_methods_map_to_read_write_and_delete() {
        assert_eq!(patient_permission(&Method::GET), Permission::PatientsRead);
        assert_eq!(patient_permission(&Method::POST), Permission::PatientsWrite);
        assert_eq!(patient_permission(&Method::PUT), Permission::PatientsWrite);
        assert_eq!(patient_permission(&Method::DELETE), Permission::PatientsDelete);
    }
}
