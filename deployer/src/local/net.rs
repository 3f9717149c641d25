//! Loopback ports: picking free ones for the parts `up` starts, and waiting until
//! what was started listens, or answers its readiness probe.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::supervisor::Supervised;

pub(super) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(super) fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Waits until a TCP connection to `addr` succeeds.
pub async fn wait_tcp(addr: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("nothing listens on {addr} after {}s", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) async fn wait_ready(url: &str, supervised: &Supervised, timeout: Duration) -> anyhow::Result<Duration> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let started = Instant::now();
    loop {
        if supervised.pid().is_some()
            && let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= timeout {
            bail!("{} was not ready at {url} after {}s", supervised.name, timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
