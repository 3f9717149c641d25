//! Forwarding one request to an upstream, streaming both bodies.

use std::{error::Error as StdError, net::IpAddr, time::Duration};

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, HeaderName, HeaderValue, Uri, header},
    response::Response,
};
use http_body_util::{LengthLimitError, Limited};
use pulsetrack_common::{http_client::HttpClient, identity};

use crate::error::GatewayError;

/// Hop-by-hop headers (RFC 9110 §7.6.1) apply to one connection and are not forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// An upstream service: its name (for errors and logs) and base URL.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: &'static str,
    pub base: Uri,
}

impl Upstream {
    fn uri(&self, path: &str, query: Option<&str>) -> Result<Uri, GatewayError> {
        let base = self.base.to_string();
        let target = match query {
            Some(q) => format!("{}{path}?{q}", base.trim_end_matches('/')),
            None => format!("{}{path}", base.trim_end_matches('/')),
        };
        target
            .parse()
            .map_err(|_| GatewayError::UpstreamUnavailable { upstream: self.name, reason: "bad target URI".into() })
    }
}

pub struct Forward<'a> {
    pub client: &'a HttpClient,
    pub upstream: &'a Upstream,
    /// The path on the upstream (the gateway's prefix already rewritten).
    pub path: &'a str,
    pub timeout: Duration,
    pub max_body_bytes: usize,
    /// The client as the gateway determined it, sent upstream as `X-Forwarded-For`.
    pub client_addr: IpAddr,
}

/// Forwarding headers the gateway sets itself; a client's values are not passed on.
const FORWARDING: [&str; 5] = ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip"];

/// Removes hop-by-hop headers, including those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named.into_iter().chain(HOP_BY_HOP) {
        headers.remove(name);
    }
}

/// Removes what a client may not send upstream: hop-by-hop, forwarding and identity headers.
pub fn sanitize(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    for name in FORWARDING.into_iter().chain(identity::IDENTITY_HEADERS) {
        headers.remove(name);
    }
}

impl Forward<'_> {
    pub async fn send(self, request: Request) -> Result<Response, GatewayError> {
        let (mut parts, body) = request.into_parts();
        if let Some(len) =
            parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            && len > self.max_body_bytes
        {
            return Err(GatewayError::PayloadTooLarge);
        }
        let uri = self.upstream.uri(self.path, parts.uri.query())?;
        sanitize(&mut parts.headers);
        if let Some(host) = parts.headers.remove(header::HOST) {
            parts.headers.insert(HeaderName::from_static("x-forwarded-host"), host);
        }
        if let Ok(value) = HeaderValue::from_str(&self.client_addr.to_string()) {
            parts.headers.insert(HeaderName::from_static(identity::CLIENT_ADDR_HEADER), value);
        }
        // The upstream's spans are children of this request's.
        pulsetrack_common::trace_context::inject_current(&mut parts.headers);
        parts.uri = uri;
        // Streams the body, failing the upstream request past the limit.
        let limited = Body::new(Limited::new(body, self.max_body_bytes));
        let upstream_request = http::Request::from_parts(parts, limited);

        let response = match tokio::time::timeout(self.timeout, self.client.request(upstream_request)).await {
            Err(_) => return Err(GatewayError::UpstreamTimeout(self.upstream.name)),
            Ok(Err(e)) if caused_by_body_limit(&e) => return Err(GatewayError::PayloadTooLarge),
            Ok(Err(e)) => {
                return Err(GatewayError::UpstreamUnavailable {
                    upstream: self.upstream.name,
                    reason: error_chain(&e),
                });
            }
            Ok(Ok(response)) => response,
        };
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

fn caused_by_body_limit(error: &(dyn StdError + 'static)) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if e.is::<LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}

fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut current = error.source();
    while let Some(e) = current {
        parts.push(e.to_string());
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_identity_and_hop_by_hop_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("x-user-role", HeaderValue::from_static("ADMIN"));
        headers.insert("x-user-id", HeaderValue::from_static("someone"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("close, x-secret-hop"));
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        sanitize(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::ACCEPT));
    }

    #[test]
    fn upstream_uri_keeps_the_query() {
        let up = Upstream { name: "patient-service", base: "http://127.0.0.1:4000".parse().expect("uri") };
        assert_eq!(
            up.uri("/patients", Some("page=1")).expect("uri").to_string(),
            "http://127.0.0.1:4000/patients?page=1"
        );
    }
}
