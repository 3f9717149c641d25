//! api-gateway configuration, from the environment (see README for the table).

use std::time::Duration;

use http::Uri;
use pulsetrack_common::{
    config::{self, ConfigError, ListenConfig, Raw},
    settings::ApiGateway,
};

pub const DEFAULT_PORT: u16 = 4004;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: ListenConfig,
    pub auth_url: Uri,
    pub patient_url: Uri,
    pub billing_url: Uri,
    pub analytics_url: Uri,
    pub jwt: JwtConfig,
    /// Time allowed for an upstream to start answering (504 after it).
    pub upstream_timeout: Duration,
    /// Largest request body forwarded (413 beyond it).
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: String,
    pub keys: KeySource,
}

/// Where the gateway gets the token verification key. It never holds a signing key.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// auth-service's JWKS, fetched at start and again when a token names an unknown key.
    Jwks(Uri),
    /// A fixed Ed25519 public key (SPKI PEM).
    PublicKeyPem(String),
}

fn base_url(raw: &Raw, default: &str) -> Result<Uri, ConfigError> {
    let value = raw.string_or(default);
    let uri: Uri = value.trim_end_matches('/').parse().map_err(|e| raw.error(format!("not a URL: {e}")))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http"), Some(_)) => Ok(uri),
        _ => Err(raw.error("must be an http://host:port URL")),
    }
}

/// auth-service's JWKS. `Uri` prints a bare authority with a trailing `/`.
pub fn default_jwks_url(auth_url: &Uri) -> String {
    format!("{}/.well-known/jwks.json", auth_url.to_string().trim_end_matches('/'))
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&config::from_env())
    }

    pub fn from_settings(settings: &ApiGateway<Raw>) -> Result<Self, ConfigError> {
        let tuning = &settings.tuning;
        let auth_url = base_url(&settings.auth_service_url, "http://127.0.0.1:4005")?;
        let keys = match tuning.jwt_public_key.optional() {
            Some(pem) => KeySource::PublicKeyPem(pem),
            None => KeySource::Jwks(base_url(&tuning.jwks_url, &default_jwks_url(&auth_url))?),
        };
        Ok(Self {
            listen: ListenConfig::from_settings(&settings.listen, DEFAULT_PORT)?,
            patient_url: base_url(&settings.patient_service_url, "http://127.0.0.1:4000")?,
            billing_url: base_url(&settings.billing_service_url, "http://127.0.0.1:4001")?,
            analytics_url: base_url(&settings.analytics_service_url, "http://127.0.0.1:4002")?,
            auth_url,
            jwt: JwtConfig {
                issuer: tuning.jwt.issuer.string_or("pulsetrack-auth"),
                audience: tuning.jwt.audience.string_or("pulsetrack"),
                keys,
            },
            upstream_timeout: Duration::from_millis(tuning.upstream_timeout_ms.parse_or(15_000)?),
            max_body_bytes: tuning.max_body_bytes.parse_or(1024 * 1024)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_jwks_url_has_no_double_slash() {
        let auth: Uri = "http://127.0.0.1:4005".parse().expect("uri");
        assert_eq!(default_jwks_url(&auth), "http://127.0.0.1:4005/.well-known/jwks.json");
    }
}
