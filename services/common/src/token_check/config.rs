//! Where a service finds what it verifies tokens with: auth-service's keys (or a fixed
//! public key) and its revocation feed, and what the tokens must say (`iss`, `aud`).

use http::Uri;

use crate::{
    config::{ConfigError, Raw, http_base_url},
    settings::{AUTH_SERVICE_URL, TokenCheck},
};

/// auth-service's address when `AUTH_SERVICE_URL` is unset (`deployer up`'s port).
pub const DEFAULT_AUTH_SERVICE_URL: &str = "http://127.0.0.1:4005";
/// The tokens' `iss` when `JWT_ISSUER` is unset (auth-service writes the same default).
pub const DEFAULT_ISSUER: &str = "pulsetrack-auth";
/// The tokens' `aud` when `JWT_AUDIENCE` is unset (auth-service writes the same default).
pub const DEFAULT_AUDIENCE: &str = "pulsetrack";

#[derive(Debug, Clone)]
pub struct TokenCheckConfig {
    /// auth-service's base URL.
    pub auth_url: Uri,
    pub issuer: String,
    pub audience: String,
    pub keys: KeySource,
    /// auth-service's revocation feed, which the service follows.
    pub revocations_url: Uri,
}

/// Where a service gets the token verification key. No service but auth-service holds
/// a signing key.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// auth-service's JWKS, fetched at start and again when a token names an unknown key.
    Jwks(Uri),
    /// A fixed Ed25519 public key (SPKI PEM).
    PublicKeyPem(String),
}

impl TokenCheckConfig {
    /// `tls`: whether the service has TLS settings, which an `https://` auth-service
    /// needs (its certificate is verified with `TLS_CA`).
    pub fn from_settings(settings: &TokenCheck<Raw>, tls: bool) -> Result<Self, ConfigError> {
        let tuning = &settings.tuning;
        let auth_url = http_base_url(&settings.auth_service_url, DEFAULT_AUTH_SERVICE_URL, tls)?;
        let mut config = Self::with_jwks(
            auth_url,
            tuning.jwt.issuer.string_or(DEFAULT_ISSUER),
            tuning.jwt.audience.string_or(DEFAULT_AUDIENCE),
        )?;
        if let Some(pem) = tuning.jwt_public_key.optional() {
            config.keys = KeySource::PublicKeyPem(pem);
        } else if tuning.jwks_url.optional().is_some() {
            config.keys = KeySource::Jwks(http_base_url(&tuning.jwks_url, "", tls)?);
        }
        Ok(config)
    }

    /// Checks tokens with `iss` and `aud` from the auth-service at `auth_url`, with its
    /// JWKS and its revocation feed.
    pub fn with_jwks(auth_url: Uri, issuer: String, audience: String) -> Result<Self, ConfigError> {
        let jwks = default_jwks_url(&auth_url)
            .parse()
            .map_err(|e| ConfigError::new(AUTH_SERVICE_URL.name(), format!("no JWKS URL can be made from it: {e}")))?;
        Ok(Self {
            revocations_url: revocations_url(&auth_url)?,
            auth_url,
            issuer,
            audience,
            keys: KeySource::Jwks(jwks),
        })
    }
}

/// auth-service's revocation feed.
pub fn revocations_url(auth_url: &Uri) -> Result<Uri, ConfigError> {
    let url = format!("{}{}", auth_url.to_string().trim_end_matches('/'), crate::revocation::FEED_PATH);
    url.parse().map_err(|e| ConfigError::new(AUTH_SERVICE_URL.name(), format!("{e}")))
}

/// auth-service's JWKS. `Uri` prints a bare authority with a trailing `/`.
pub fn default_jwks_url(auth_url: &Uri) -> String {
    format!("{}/.well-known/jwks.json", auth_url.to_string().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{AUTH_JWKS_URL, JWT_AUDIENCE};

    fn config(pairs: &[(crate::settings::Var, &str)]) -> Result<TokenCheckConfig, ConfigError> {
        TokenCheckConfig::from_settings(&crate::config::from_pairs(pairs), false)
    }

    #[test]
    fn the_default_jwks_url_has_no_double_slash() {
        let auth: Uri = "http://127.0.0.1:4005".parse().expect("uri");
        assert_eq!(default_jwks_url(&auth), "http://127.0.0.1:4005/.well-known/jwks.json");
    }

    #[test]
    fn keys_and_feed_come_from_auth_service_unless_set() {
        let c = config(&[(AUTH_SERVICE_URL, "http://auth.internal:4005/")]).expect("config");
        assert!(
            matches!(&c.keys, KeySource::Jwks(url) if url == "http://auth.internal:4005/.well-known/jwks.json"),
            "{c:?}"
        );
        assert_eq!(c.revocations_url, "http://auth.internal:4005/internal/revocations");
        let c = config(&[(AUTH_JWKS_URL, "http://keys:1/jwks"), (JWT_AUDIENCE, "clinic")]).expect("config");
        assert!(matches!(&c.keys, KeySource::Jwks(url) if url == "http://keys:1/jwks"));
        assert_eq!((c.audience.as_str(), c.auth_url.to_string().as_str()), ("clinic", "http://127.0.0.1:4005/"));
        assert_eq!(config(&[(AUTH_SERVICE_URL, "ftp://x")]).expect_err("scheme").variable, "AUTH_SERVICE_URL");
    }
}
