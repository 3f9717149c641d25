//! The gateway's routing table and access policy: which permission each route needs
//! ([`pulsetrack_common::identity::Role::may`] decides), and the per-caller rate limit.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    Json, Router,
    extract::{ConnectInfo, Path, Request, State},
    http::{HeaderMap, Method, header},
    response::{IntoResponse, Response},
    routing::{any, get},
};
use pulsetrack_common::identity::{Claims, Permission};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::{
    Gateway,
    client_addr::client_addr,
    error::GatewayError,
    proxy::{Forward, Upstream},
};

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/auth/users", any(users))
        .route("/auth/users/{*rest}", any(users))
        .route("/auth/{*rest}", any(auth))
        .route("/api/patients", any(patients))
        .route("/api/patients/{*rest}", any(patients))
        .route("/api/billing/{*rest}", any(billing))
        .route("/api/analytics/{*rest}", any(analytics))
        .route("/api/audit", get(crate::audit::entries))
        .route("/api/audit/verify", get(crate::audit::verify))
        .route("/api-docs/{api}", get(api_docs))
        .with_state(gateway)
        .merge(SwaggerUi::new("/swagger-ui").config(Config::new(DOCUMENTED_APIS.map(|api| format!("/api-docs/{api}")))))
}

/// The APIs with an OpenAPI document at `/api-docs/<api>` (all listed in the Swagger UI
/// at `/swagger-ui`).
pub const DOCUMENTED_APIS: [&str; 5] = ["auth", "patients", "billing", "analytics", "audit"];

/// Whom the rate limit counts a request against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// An authenticated account (its token's subject), wherever it calls from.
    Account(String),
    /// A client address, on the public routes.
    Address(IpAddr),
}

/// Public: signup, login, keys; limited per client address.
async fn auth(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, GatewayError> {
    let client = gw.client(&request);
    gw.admit(RateKey::Address(client))?;
    let path = request.uri().path().to_string();
    gw.forward(&gw.auth, &path, None, client, request).await
}

/// Accounts and their roles.
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

/// Public: each API's OpenAPI document, from the service that serves it (the audit
/// API is the gateway's own).
async fn api_docs(
    State(gw): State<Arc<Gateway>>,
    Path(api): Path<String>,
    request: Request,
) -> Result<Response, GatewayError> {
    let client = gw.client(&request);
    gw.admit(RateKey::Address(client))?;
    let upstream = match api.as_str() {
        "auth" => &gw.auth,
        "patients" => &gw.patients,
        "billing" => &gw.billing,
        "analytics" => &gw.analytics,
        "audit" => return Ok(Json(<crate::audit::ApiDoc as utoipa::OpenApi>::openapi()).into_response()),
        _ => return Err(GatewayError::NoSuchApi),
    };
    gw.forward(upstream, pulsetrack_common::openapi::DOCS_PATH, None, client, request).await
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

    /// The client's address: the peer, or what a trusted proxy reported.
    pub(crate) fn client(&self, request: &Request) -> IpAddr {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(peer)| peer.ip());
        client_addr(peer, request.headers(), &self.trusted_proxies)
    }

    /// Counts one request against `key`'s rate limit.
    pub(crate) fn admit(&self, key: RateKey) -> Result<(), GatewayError> {
        self.rate_limiter.acquire(&key).map_err(|wait| {
            tracing::info!(?key, wait_ms = wait.as_millis(), "rate limited");
            GatewayError::RateLimited(wait)
        })
    }

    /// Authenticates, checks `permission` and the caller's rate limit, and forwards with
    /// the caller's identity.
    async fn protected(
        &self,
        upstream: &Upstream,
        permission: Permission,
        path: String,
        request: Request,
    ) -> Result<Response, GatewayError> {
        let claims = self.authorize(request.headers(), permission).await?;
        let client = self.client(&request);
        self.forward(upstream, &path, Some(&claims), client, request).await
    }

    pub(crate) async fn forward(
        &self,
        upstream: &Upstream,
        path: &str,
        identity: Option<&Claims>,
        client_addr: IpAddr,
        request: Request,
    ) -> Result<Response, GatewayError> {
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
