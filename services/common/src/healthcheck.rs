//! `<binary> healthcheck`: the container health check (ECS task definitions and the
//! Dockerfiles run it). It asks the running service's own `/health` on `PORT` and
//! exits 0 when the answer is 200, so images need no curl. With the service's TLS
//! settings it speaks TLS to `localhost` (a name every service certificate holds) and
//! presents the service's own certificate, as its peers do.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use rustls::{ClientConnection, StreamOwned, pki_types::ServerName};

use crate::{
    config::Raw,
    settings::{PORT, TLS_LOCAL_NAME},
    tls::TlsConfig,
};

/// If the first argument is `healthcheck`, probes and exits; otherwise returns.
pub fn exit_if_requested(default_port: u16) {
    if std::env::args().nth(1).as_deref() != Some("healthcheck") {
        return;
    }
    let port = Raw::from_env(PORT).parse_or(default_port).unwrap_or(default_port);
    let tls = match TlsConfig::from_settings(&crate::config::from_env()) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("healthcheck: {e}");
            std::process::exit(1);
        }
    };
    std::process::exit(if probe(SocketAddr::from(([127, 0, 0, 1], port)), tls.as_ref()) { 0 } else { 1 });
}

/// Whether `GET /health` on `addr` answers 200 within 3 seconds (over TLS with `tls`).
pub fn probe(addr: SocketAddr, tls: Option<&TlsConfig>) -> bool {
    let timeout = Duration::from_secs(3);
    let Ok(stream) = TcpStream::connect_timeout(&addr, timeout) else { return false };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    match tls {
        None => ask(stream),
        Some(tls) => match ServerName::try_from(TLS_LOCAL_NAME).map(|name| ClientConnection::new(tls.client(), name)) {
            Ok(Ok(connection)) => ask(StreamOwned::new(connection, stream)),
            _ => false,
        },
    }
}

fn ask(mut stream: impl Read + Write) -> bool {
    if stream.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    head[..read].starts_with(b"HTTP/1.1 200") || head[..read].starts_with(b"HTTP/1.0 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn probe_is_true_only_for_a_healthy_server() {
        let router = crate::Readiness::new().routes::<()>();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        assert!(tokio::task::spawn_blocking(move || probe(addr, None)).await.expect("join"));
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
        assert!(!tokio::task::spawn_blocking(move || probe(closed, None)).await.expect("join"));
    }
}
