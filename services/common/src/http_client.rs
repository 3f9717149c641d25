//! The pooled HTTP client a service calls its peers with (the gateway's forwarded
//! requests and audit fan-out, every service's JWKS and revocation-feed reads), tuned
//! so that an idle connection is never reused while its upstream closes it. It speaks
//! `http://` and, with the service's TLS settings, `https://`: it trusts only the
//! internal CA and presents the service's own certificate.

use std::{sync::Arc, time::Duration};

use axum::body::Body;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use rustls::{ClientConfig, RootCertStore, crypto::ring};

use crate::tls::TlsConfig;

/// Pooled HTTP/1.1 client shared by all of a service's calls to its peers.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

/// How long an idle upstream connection is kept: well under the services' header-read
/// timeout (which also closes idle connections, 10 s by default), so that the gateway
/// never sends a request on a connection the upstream is closing.
pub const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Without `tls`, an `https://` URL fails its handshake: nothing is trusted (the
/// services' configurations refuse such URLs before it comes to that).
pub fn http_client(tls: Option<&TlsConfig>) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    connector.enforce_http(false);
    let config = tls.map_or_else(trusts_nothing, |tls| (*tls.client()).clone());
    let https =
        HttpsConnectorBuilder::new().with_tls_config(config).https_or_http().enable_http1().wrap_connector(connector);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(UPSTREAM_IDLE_TIMEOUT).build(https)
}

fn trusts_nothing() -> ClientConfig {
    ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(RootCertStore::empty()).with_no_client_auth())
        .unwrap_or_else(|e| unreachable!("ring supports the default protocol versions: {e}"))
}
