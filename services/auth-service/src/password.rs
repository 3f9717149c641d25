//! Password policy and argon2id hashing. Hashing is CPU-bound, so it runs on the
//! blocking pool, never on the async workers.

use std::{
    sync::{
        LazyLock,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};

/// At most this many hashes run at once (each takes ~19 MiB and a core for tens of
/// milliseconds); a flood of logins queues here instead of exhausting memory.
static HASHING: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| tokio::sync::Semaphore::new(slots()));

fn slots() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(2) * 2
}
/// How long a request waits for a hashing slot before it is answered 503.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing is saturated")]
    Busy,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// How many requests wait for a hashing slot right now.
static WAITING: AtomicI64 = AtomicI64::new(0);

/// `auth_password_hashes_waiting` and `auth_password_hashes_running`, read at each scrape.
pub fn register_metrics(metrics: &pulsetrack_common::metrics::Metrics) {
    use prometheus_client::metrics::gauge::Gauge;
    let (waiting, running) = (Gauge::<i64>::default(), Gauge::<i64>::default());
    metrics.register("auth_password_hashes_waiting", "Logins and signups waiting for a hashing slot", waiting.clone());
    metrics.register("auth_password_hashes_running", "Password hashes being computed", running.clone());
    let slots = i64::try_from(slots()).unwrap_or(i64::MAX);
    metrics.on_scrape(move || {
        waiting.set(WAITING.load(Ordering::Relaxed));
        running.set(slots - i64::try_from(HASHING.available_permits()).unwrap_or(0));
        std::future::ready(())
    });
}

/// Runs `work` on the blocking pool once a hashing slot is free.
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> Result<T, HashError> {
    WAITING.fetch_add(1, Ordering::Relaxed);
    let permit = tokio::time::timeout(QUEUE_TIMEOUT, HASHING.acquire()).await;
    WAITING.fetch_sub(1, Ordering::Relaxed);
    let _permit = permit.map_err(|_| HashError::Busy)?.map_err(|e| HashError::Internal(e.into()))?;
    Ok(tokio::task::spawn_blocking(work).await.map_err(anyhow::Error::from)??)
}

pub const MIN_LEN: usize = 8;
/// Bounds the hashing work a single request can ask for.
pub const MAX_LEN: usize = 128;

pub fn check_policy(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(format!("must be at least {MIN_LEN} characters"));
    }
    if len > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters"));
    }
    Ok(())
}

/// Argon2id with the crate's defaults (the OWASP-recommended m=19 MiB, t=2, p=1).
pub async fn hash(password: String) -> Result<String, HashError> {
    hashing(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hash failed: {e}"))
    })
    .await
}

/// A hash of no real password, verified against when the email is unknown so that
/// an unknown email and a wrong password take the same time.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(b"no-such-user-password", &salt).map(|h| h.to_string()).unwrap_or_default()
});

/// Verifies `password` against `stored`, or against a dummy hash when `stored` is None.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, HashError> {
    hashing(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let parsed = PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        let matches = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(known && matches)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_bounds() {
        assert!(check_policy("1234567").is_err());
        assert!(check_policy("12345678").is_ok());
        assert!(check_policy(&"x".repeat(129)).is_err());
    }

    #[tokio::test]
    async fn hash_is_argon2id_and_verifies() {
        let h = hash("correct horse".into()).await.expect("hashes");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(h.clone())).await.expect("verifies"));
        assert!(!verify("wrong horse!".into(), Some(h)).await.expect("verifies"));
        assert!(!verify("no-such-user-password".into(), None).await.expect("verifies"));
    }
}
