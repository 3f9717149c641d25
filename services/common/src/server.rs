//! The HTTP server every service runs: bind first (port 0 works, so tests learn the
//! real port), then serve until a shutdown signal, draining in-flight requests.

use std::{future::Future, io, net::SocketAddr};

use axum::Router;
use tokio::net::TcpListener;

use crate::config::ListenConfig;

pub struct HttpServer {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
}

impl HttpServer {
    pub async fn bind(listen: &ListenConfig, router: Router) -> io::Result<Self> {
        let listener = TcpListener::bind((listen.host.as_str(), listen.port)).await?;
        let addr = listener.local_addr()?;
        Ok(Self { listener, addr, router })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until SIGINT/SIGTERM.
    pub async fn run(self) -> io::Result<()> {
        self.run_until(crate::shutdown::signal()).await
    }

    /// Serves until `shutdown` completes.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        tracing::info!(addr = %self.addr, "listening");
        // Connect info lets the gateway forward the client address (X-Forwarded-For).
        axum::serve(self.listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await
    }
}
