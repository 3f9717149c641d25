//! Token verification: EdDSA only (the algorithm is pinned, whatever the header says),
//! signature, `exp`, `iss` and `aud` checked. Keys come from auth-service's JWKS or a
//! configured public key; no service but auth-service holds a signing key.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use tokio::sync::Mutex;

use super::{KeySource, TokenCheckConfig, TokenError};
use crate::{http_client::HttpClient, identity::Claims};

/// A JWKS is re-fetched at most this often when tokens name unknown keys, so that
/// forged `kid`s cannot turn a service into a load generator against auth-service.
const REFRESH_INTERVAL: Duration = Duration::from_secs(5);
/// Verified tokens remembered; past this many the memory is cleared and refilled.
const VERIFIED_CAPACITY: usize = 10_000;
const MAX_JWKS_BYTES: usize = 64 * 1024;

pub struct Verifier {
    validation: Validation,
    source: KeySource,
    keys: RwLock<Keys>,
    last_refresh: Mutex<Option<Instant>>,
    client: HttpClient,
    /// Tokens that passed every check, so a client's next request costs a hash lookup
    /// instead of an Ed25519 verification. Expiry is checked on every use; the memory
    /// is dropped whenever the key set changes.
    verified: RwLock<HashMap<String, Claims>>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    /// The configured public key, used for every token.
    fixed: Option<DecodingKey>,
}

impl Verifier {
    pub fn new(config: &TokenCheckConfig, client: HttpClient) -> anyhow::Result<Self> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let mut keys = Keys::default();
        if let KeySource::PublicKeyPem(pem) = &config.keys {
            keys.fixed =
                Some(DecodingKey::from_ed_pem(pem.as_bytes()).map_err(|e| anyhow::anyhow!("JWT_PUBLIC_KEY: {e}"))?);
        }
        Ok(Self {
            validation,
            source: config.keys.clone(),
            keys: RwLock::new(keys),
            last_refresh: Mutex::new(None),
            client,
            verified: RwLock::new(HashMap::new()),
        })
    }

    /// Loads the keys at start-up, whatever the rate limit.
    pub async fn load(&self) -> Result<(), String> {
        self.refresh(true).await;
        if self.has_keys() { Ok(()) } else { Err("no verification key loaded".into()) }
    }

    /// Whether a verification key is loaded (fetching the JWKS, rate-limited, if not).
    pub async fn ready(&self) -> Result<(), String> {
        if self.has_keys() {
            return Ok(());
        }
        self.refresh(false).await;
        if self.has_keys() { Ok(()) } else { Err("no verification key loaded".into()) }
    }

    fn has_keys(&self) -> bool {
        self.keys.read().map(|k| k.fixed.is_some() || !k.by_kid.is_empty()).unwrap_or(false)
    }

    /// Verifies `token` and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if let Some(claims) = self.remembered(token) {
            return Ok(claims);
        }
        let claims = self.verify_signature(token).await?;
        if let Ok(mut verified) = self.verified.write() {
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
            verified.insert(token.to_string(), claims.clone());
        }
        Ok(claims)
    }

    /// A token verified before and not expired since (with the same leeway).
    fn remembered(&self, token: &str) -> Option<Claims> {
        let claims = self.verified.read().ok()?.get(token).cloned()?;
        let now = jsonwebtoken::get_current_timestamp();
        (claims.exp.saturating_add(self.validation.leeway) >= now).then_some(claims)
    }

    async fn verify_signature(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let key = match self.lookup(header.kid.as_deref()) {
            Some(key) => key,
            None => {
                self.refresh(false).await;
                self.lookup(header.kid.as_deref()).ok_or_else(|| {
                    if self.has_keys() {
                        TokenError::Invalid("unknown key id".into())
                    } else {
                        TokenError::KeysUnavailable
                    }
                })?
            }
        };
        jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    fn lookup(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let keys = self.keys.read().ok()?;
        if let Some(fixed) = &keys.fixed {
            return Some(fixed.clone());
        }
        keys.by_kid.get(kid?).cloned()
    }

    /// Re-fetches the JWKS unless one was fetched within `REFRESH_INTERVAL` (`force`
    /// ignores the interval). Failures are logged; the previous keys stay.
    async fn refresh(&self, force: bool) {
        let KeySource::Jwks(url) = &self.source else { return };
        let mut last = self.last_refresh.lock().await;
        if !force && last.is_some_and(|t| t.elapsed() < REFRESH_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        match self.fetch(url).await {
            Ok(by_kid) if !by_kid.is_empty() => {
                tracing::info!(keys = by_kid.len(), "loaded token verification keys");
                if let Ok(mut keys) = self.keys.write() {
                    keys.by_kid = by_kid;
                }
                // A key may have been withdrawn: what it verified is verified again.
                if let Ok(mut verified) = self.verified.write() {
                    verified.clear();
                }
            }
            Ok(_) => tracing::warn!(%url, "JWKS holds no usable EdDSA key"),
            Err(e) => tracing::warn!(%url, error = %e, "cannot fetch JWKS"),
        }
    }

    async fn fetch(&self, url: &http::Uri) -> anyhow::Result<HashMap<String, DecodingKey>> {
        let request = http::Request::get(url.clone()).body(axum::body::Body::new(Empty::<Bytes>::new()))?;
        let response = tokio::time::timeout(Duration::from_secs(3), self.client.request(request)).await??;
        anyhow::ensure!(response.status().is_success(), "JWKS answered {}", response.status());
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading JWKS: {e}"))?
            .to_bytes();
        let set: JwkSet = serde_json::from_slice(&body)?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                // Only EdDSA keys: a JWKS entry cannot widen the accepted algorithms.
                match DecodingKey::from_jwk(jwk) {
                    Ok(key) if matches!(jwk.algorithm, jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_)) => {
                        Some((kid, key))
                    }
                    _ => None,
                }
            })
            .collect())
    }
}
