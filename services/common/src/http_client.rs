//! The pooled HTTP client a service calls its peers with (the gateway's forwarded
//! requests and audit fan-out, every service's JWKS and revocation-feed reads), tuned
//! so that an idle connection is never reused while its upstream closes it.

use std::time::Duration;

use axum::body::Body;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// Pooled HTTP/1.1 client shared by all of a service's calls to its peers.
pub type HttpClient = Client<HttpConnector, Body>;

/// How long an idle upstream connection is kept: well under the services' header-read
/// timeout (which also closes idle connections, 10 s by default), so that the gateway
/// never sends a request on a connection the upstream is closing.
pub const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

pub fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    Client::builder(TokioExecutor::new()).pool_idle_timeout(UPSTREAM_IDLE_TIMEOUT).build(connector)
}
