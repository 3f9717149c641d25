//! The gateway's routing table and access policy.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, Method, header},
    response::Response,
    routing::{any, get},
};
use pulsetrack_common::identity::{Claims, Role};

use crate::{
    Gateway,
    error::GatewayError,
    proxy::{Forward, Upstream},
};

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/auth/{*rest}", any(auth))
        .route("/api/patients", any(patients))
        .route("/api/patients/{*rest}", any(patients))
        .route("/api/billing/{*rest}", any(billing))
        .route("/api/analytics/{*rest}", any(analytics))
        .route("/api-docs/patients", get(patient_docs))
        .with_state(gateway)
}

/// Public: signup, login, keys.
async fn auth(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, GatewayError> {
    let path = request.uri().path().to_string();
    gw.forward(&gw.auth, &path, None, request).await
}

/// Protected: any authenticated caller; deleting a patient needs ADMIN.
async fn patients(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, GatewayError> {
    let claims = gw.authenticate(request.headers()).await?;
    if request.method() == Method::DELETE && claims.role != Role::Admin {
        return Err(GatewayError::Forbidden(claims.role.as_str()));
    }
    gw.forward(&gw.patients, &strip_api(&request), Some(&claims), request).await
}

/// Protected: any authenticated caller may read billing accounts.
async fn billing(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, GatewayError> {
    let claims = gw.authenticate(request.headers()).await?;
    gw.forward(&gw.billing, &strip_api(&request), Some(&claims), request).await
}

/// Protected: ADMIN only.
async fn analytics(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, GatewayError> {
    let claims = gw.authenticate(request.headers()).await?;
    if claims.role != Role::Admin {
        return Err(GatewayError::Forbidden(claims.role.as_str()));
    }
    gw.forward(&gw.analytics, &strip_api(&request), Some(&claims), request).await
}

/// `/api/x/...` → `/x/...` (every `/api` route is matched with that prefix).
fn strip_api(request: &Request) -> String {
    request.uri().path().strip_prefix("/api").unwrap_or_default().to_string()
}

/// Public: patient-service's OpenAPI document.
async fn patient_docs(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, GatewayError> {
    gw.forward(&gw.patients, "/v3/api-docs", None, request).await
}

impl Gateway {
    /// The claims of the request's bearer token.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, GatewayError> {
        let value = headers.get(header::AUTHORIZATION).ok_or(GatewayError::MissingToken)?;
        let value = value.to_str().map_err(|_| GatewayError::InvalidToken("non-ASCII Authorization header".into()))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => token.trim(),
            _ => return Err(GatewayError::InvalidToken("Authorization is not a Bearer token".into())),
        };
        self.verifier.verify(token).await
    }

    async fn forward(
        &self,
        upstream: &Upstream,
        path: &str,
        identity: Option<&Claims>,
        request: Request,
    ) -> Result<Response, GatewayError> {
        let client_addr = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0);
        Forward {
            client: &self.client,
            upstream,
            path,
            identity,
            timeout: self.upstream_timeout,
            max_body_bytes: self.max_body_bytes,
            client_addr,
        }
        .send(request)
        .await
    }
}
