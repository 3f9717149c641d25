//! `GET /api/audit` and `GET /api/audit/verify`: every audited service (auth-service's
//! security events, and the three that hold patient data) keeps its own audit trail in
//! its own database; the gateway asks each of them with
//! the caller's token (each verifies it, checks `audit:read` again and records the read in its
//! own trail) and merges the answers. A service that cannot answer fails the request:
//! a partial trail is never presented as the whole.

use std::sync::Arc;

use axum::{
    Json,
    body::Body,
    extract::{Request, State},
    http::{Method, StatusCode, header::AUTHORIZATION},
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;
use pulsetrack_common::{
    ApiError, FieldError,
    audit::{AuditQueryParams, Entry, QUERY_LIMIT_MAX, Verification},
    identity::Permission,
    openapi::BearerAuth,
    request_id::REQUEST_ID_HEADER,
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{error::GatewayError, gateway::Gateway, proxy::Upstream};

/// The largest answer one service may give (1,000 entries of 100 patient ids).
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "PulseTrack audit", description = "The audit trails of auth-, patient-, billing- and analytics-service, merged by the gateway."),
    servers((url = "/api", description = "through the gateway")),
    paths(entries, verify),
    components(schemas(Entry, Verification, AuditReport, ApiError, FieldError)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "audit", description = "The audit trail: AUDITOR or ADMIN, read-only"))
)]
pub struct ApiDoc;

/// Every trail walked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditReport {
    /// Whether every trail is intact.
    pub intact: bool,
    pub trails: Vec<Verification>,
}

/// Entries of every trail matching the query, newest first, at most `limit`.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQueryParams),
    responses((status = 200, body = Vec<Entry>), (status = 400, body = ApiError), (status = "default", description = "Any other error (401, 403, 429, 502 ...), with the same body", body = ApiError)))]
pub async fn entries(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, GatewayError> {
    let limit = query_limit(request.uri().query());
    let answers = match gw.ask_audited::<Vec<Entry>>("/audit", request).await? {
        Ok(answers) => answers,
        Err(refusal) => return Ok(refusal),
    };
    let mut all: Vec<Entry> = answers.into_iter().flatten().collect();
    all.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.service.cmp(&b.service)).then_with(|| b.seq.cmp(&a.seq)));
    all.truncate(limit);
    Ok(Json(all).into_response())
}

/// Every trail walked: `{"intact": bool, "trails": [Verification, ...]}`.
#[utoipa::path(get, path = "/audit/verify", tag = "audit",
    responses((status = 200, body = AuditReport), (status = "default", description = "Any other error (401, 403, 429, 502 ...), with the same body", body = ApiError)))]
pub async fn verify(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, GatewayError> {
    let trails = match gw.ask_audited::<Verification>("/audit/verify", request).await? {
        Ok(trails) => trails,
        Err(refusal) => return Ok(refusal),
    };
    Ok(Json(AuditReport { intact: trails.iter().all(|t| t.intact), trails }).into_response())
}

/// The `limit` the services were asked for (they refuse a bad one with 400 first).
fn query_limit(query: Option<&str>) -> usize {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.strip_prefix("limit="))
        .find_map(|value| value.parse::<usize>().ok())
        .unwrap_or(100)
        .min(QUERY_LIMIT_MAX as usize)
}

impl Gateway {
    fn audited(&self) -> [&Upstream; 4] {
        [&self.auth, &self.patients, &self.billing, &self.analytics]
    }

    /// Asks every audited service for `path` (with the request's query) as the caller,
    /// at once. `Ok(Err(response))`: a service refused (its answer, 4xx, passed on).
    async fn ask_audited<T: DeserializeOwned>(
        &self,
        path: &str,
        request: Request,
    ) -> Result<Result<Vec<T>, Response>, GatewayError> {
        self.authorize(request.headers(), Permission::AuditRead).await?;
        let client = self.client(&request);
        let asks = self.audited().map(|upstream| {
            let sub = sub_request(&request);
            async move {
                let response = self.forward(upstream, path, client, sub).await?;
                read_answer::<T>(upstream, response).await
            }
        });
        let answers = futures_util::future::join_all(asks).await;
        let mut parsed = Vec::with_capacity(answers.len());
        for answer in answers {
            match answer? {
                Ok(value) => parsed.push(value),
                Err(refusal) => return Ok(Err(refusal)),
            }
        }
        Ok(Ok(parsed))
    }
}

/// A bodiless GET with the original's query, request id and bearer token (each
/// service verifies the caller's token itself).
fn sub_request(original: &Request) -> Request {
    let mut builder = Request::builder().method(Method::GET).uri(original.uri().clone());
    for name in [REQUEST_ID_HEADER, AUTHORIZATION] {
        if let Some(value) = original.headers().get(&name) {
            builder = builder.header(name, value.clone());
        }
    }
    let mut request = builder.body(Body::empty()).unwrap_or_default();
    if let Some(peer) = original.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>() {
        request.extensions_mut().insert(*peer);
    }
    request
}

/// A 2xx answer parsed; a 4xx passed on as it is; anything else an upstream failure.
async fn read_answer<T: DeserializeOwned>(
    upstream: &Upstream,
    response: Response,
) -> Result<Result<T, Response>, GatewayError> {
    let status = response.status();
    if status.is_client_error() {
        return Ok(Err(response));
    }
    let failed = |reason: String| GatewayError::UpstreamUnavailable { upstream: upstream.name, reason };
    let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| failed(format!("reading the audit answer: {e}")))?
        .to_bytes();
    if status != StatusCode::OK {
        return Err(failed(format!("answered {status}: {}", String::from_utf8_lossy(&body))));
    }
    serde_json::from_slice(&body).map(Ok).map_err(|e| failed(format!("an audit answer that does not parse: {e}")))
}

#[cfg(test)]
mod tests {
    use super::query_limit;

    #[test]
    fn the_limit_is_read_from_the_query_and_bounded() {
        assert_eq!(query_limit(None), 100);
        assert_eq!(query_limit(Some("actor=x&limit=7")), 7);
        assert_eq!(query_limit(Some("limit=100000")), 1000);
        assert_eq!(query_limit(Some("limit=abc")), 100);
    }
}
