//! The HTTP server every service runs: bind first (port 0 works, so tests learn the
//! real port), then serve until a shutdown signal, draining in-flight requests.
//!
//! Every connection is HTTP/1.1 (the ALB and the gateway speak it to their targets) and
//! bounded by [`ServerLimits`]: a client that sends half a header, or keeps an idle
//! connection open, is disconnected after the header-read timeout; a request that takes
//! longer than the request timeout is answered 503; past the in-flight limit a request
//! is refused with 503 at once instead of waiting in a queue that grows.

use std::{convert::Infallible, future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::{GracefulShutdown, Watcher},
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::Semaphore,
};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::{
    ApiError,
    config::{ListenConfig, ServerLimits},
    health::{HEALTH_PATH, READY_PATH},
};

/// How long a shutdown waits for open connections to finish their requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub struct HttpServer {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
    limits: ServerLimits,
    tls: Option<TlsAcceptor>,
}

impl HttpServer {
    pub async fn bind(listen: &ListenConfig, router: Router) -> io::Result<Self> {
        let listener = TcpListener::bind((listen.host.as_str(), listen.port)).await?;
        let addr = listener.local_addr()?;
        let tls = listen.tls.as_ref().map(|tls| TlsAcceptor::from(tls.server()));
        Ok(Self { listener, addr, router, limits: listen.limits, tls })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until SIGINT/SIGTERM.
    pub async fn run(self) -> io::Result<()> {
        self.run_until(crate::shutdown::signal()).await
    }

    /// Serves until `shutdown` completes, then lets open requests finish (at most
    /// [`DRAIN_TIMEOUT`]).
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        tracing::info!(addr = %self.addr, limits = ?self.limits, tls = self.tls.is_some(), "listening");
        let app = with_limits(self.router, self.limits);
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(self.limits.header_read_timeout).keep_alive(true);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            let connection =
                Connection { app: app.clone(), builder: builder.clone(), watcher: graceful.watcher(), peer };
            match &self.tls {
                None => tokio::spawn(connection.serve(stream)),
                Some(acceptor) => {
                    tokio::spawn(connection.serve_tls(acceptor.clone(), stream, self.limits.header_read_timeout))
                }
            };
        }
        drop(self.listener);
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(DRAIN_TIMEOUT) => {
                tracing::warn!(timeout_s = DRAIN_TIMEOUT.as_secs(), "connections still open after the drain timeout");
            }
        }
        Ok(())
    }
}

/// One accepted connection, served on a task of its own.
struct Connection {
    app: Router,
    builder: http1::Builder,
    watcher: Watcher,
    peer: SocketAddr,
}

impl Connection {
    async fn serve<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(self, io: I) {
        let Self { app, builder, watcher, peer } = self;
        // Connect info lets the gateway forward the client address (X-Forwarded-For).
        let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(Body::new))
        });
        if let Err(e) = watcher.watch(builder.serve_connection(TokioIo::new(io), service)).await {
            // Header-read timeouts, resets and malformed requests end here.
            tracing::debug!(%peer, error = %e, "connection closed with an error");
        }
    }

    /// The TLS handshake first (bounded like a request header), then HTTP. A client
    /// that presents no certificate the CA signed, when one is required, ends here.
    async fn serve_tls(self, acceptor: TlsAcceptor, stream: tokio::net::TcpStream, timeout: Duration) {
        let peer = self.peer;
        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => self.serve(stream).await,
            // A TCP probe (a load balancer's health check) closes before a ClientHello.
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                tracing::debug!(%peer, "connection closed before the TLS handshake");
            }
            Ok(Err(e)) => tracing::warn!(%peer, error = %e, "TLS handshake refused"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    }
}

/// The in-flight limit and the request timeout around `router`. The health probes are
/// outside both, so that a busy service is not taken for a dead one.
fn with_limits(router: Router, limits: ServerLimits) -> Router {
    let state = Arc::new(Limiter { slots: Arc::new(Semaphore::new(limits.max_in_flight)), limits });
    router.layer(middleware::from_fn_with_state(state, limit))
}

struct Limiter {
    slots: Arc<Semaphore>,
    limits: ServerLimits,
}

async fn limit(State(limiter): State<Arc<Limiter>>, request: Request, next: Next) -> Result<Response, Infallible> {
    let path = request.uri().path();
    if path == HEALTH_PATH || path == READY_PATH {
        return Ok(next.run(request).await);
    }
    let Ok(_slot) = limiter.slots.clone().try_acquire_owned() else {
        tracing::warn!(max_in_flight = limiter.limits.max_in_flight, "shedding a request: too many in flight");
        return Ok(ApiError::service_unavailable("the service is at capacity, retry shortly")
            .retry_after(1)
            .into_response());
    };
    let timeout = limiter.limits.request_timeout;
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => Ok(response),
        Err(_) => {
            tracing::warn!(timeout_ms = timeout.as_millis(), "request timed out");
            Ok(ApiError::new(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "REQUEST_TIMEOUT",
                format!("the request took longer than {} ms", timeout.as_millis()),
            )
            .into_response())
        }
    }
}
