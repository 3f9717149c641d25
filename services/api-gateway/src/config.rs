//! api-gateway configuration, from the environment (docs/src/configuration.md has the table).

use std::time::Duration;

use http::Uri;
use ipnet::IpNet;
use pulsetrack_common::{
    config::{self, ConfigError, ListenConfig, Raw},
    rate_limit::Rate,
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
    /// auth-service's revocation feed, which the gateway follows.
    pub revocations_url: Uri,
    /// Time allowed for an upstream to start answering (504 after it).
    pub upstream_timeout: Duration,
    /// Largest request body forwarded (413 beyond it).
    pub max_body_bytes: usize,
    /// Requests one caller (an account, or a client address on public routes) may make.
    pub rate_limit: Rate,
    /// The proxies in front of the gateway whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

/// Requests per second per caller when `RATE_LIMIT_PER_SECOND` is unset.
pub const DEFAULT_RATE_LIMIT_PER_SECOND: u32 = 100;

fn rate_limit(settings: &ApiGateway<Raw>) -> Result<Rate, ConfigError> {
    let raw = &settings.rate_limit_per_second;
    let per_second: u32 = raw.parse_or(DEFAULT_RATE_LIMIT_PER_SECOND)?;
    if per_second == 0 {
        return Err(raw.error("must be positive"));
    }
    let raw_burst = &settings.tuning.rate_limit_burst;
    let burst: u32 = raw_burst.parse_or(per_second.saturating_mul(2))?;
    if burst == 0 {
        return Err(raw_burst.error("must be positive"));
    }
    Ok(Rate { per_second: f64::from(per_second), burst: f64::from(burst) })
}

/// Comma-separated CIDRs (a bare address is one host).
fn trusted_proxies(raw: &Raw) -> Result<Vec<IpNet>, ConfigError> {
    let value = raw.string_or("");
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| raw.error(format!("{s:?} is not a CIDR (like 10.0.0.0/16) or an address")))
        })
        .collect()
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

/// auth-service's revocation feed.
pub fn revocations_url(auth_url: &Uri) -> Result<Uri, ConfigError> {
    let url = format!("{}{}", auth_url.to_string().trim_end_matches('/'), pulsetrack_common::revocation::FEED_PATH);
    url.parse().map_err(|e| ConfigError::new(pulsetrack_common::settings::AUTH_SERVICE_URL.name(), format!("{e}")))
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
            revocations_url: revocations_url(&auth_url)?,
            auth_url,
            jwt: JwtConfig {
                issuer: tuning.jwt.issuer.string_or("pulsetrack-auth"),
                audience: tuning.jwt.audience.string_or("pulsetrack"),
                keys,
            },
            upstream_timeout: Duration::from_millis(tuning.upstream_timeout_ms.parse_or(15_000)?),
            max_body_bytes: tuning.max_body_bytes.parse_or(1024 * 1024)?,
            rate_limit: rate_limit(settings)?,
            trusted_proxies: trusted_proxies(&settings.trusted_proxies)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use pulsetrack_common::settings::{RATE_LIMIT_BURST, RATE_LIMIT_PER_SECOND, TRUSTED_PROXIES};

    use super::*;

    fn config(pairs: &[(pulsetrack_common::settings::Var, &str)]) -> Result<Config, ConfigError> {
        Config::from_settings(&pulsetrack_common::config::from_pairs(pairs))
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        let c = config(&[(TRUSTED_PROXIES, "10.0.0.0/16, 192.0.2.7 ,")]).expect("config");
        assert_eq!(
            c.trusted_proxies,
            ["10.0.0.0/16".parse::<IpNet>().expect("net"), "192.0.2.7/32".parse().expect("net")]
        );
        assert!(config(&[]).expect("config").trusted_proxies.is_empty());
        assert_eq!(config(&[(TRUSTED_PROXIES, "10.0.0/8")]).expect_err("bad").variable, "TRUSTED_PROXIES");
    }

    #[test]
    fn the_rate_limit_has_a_burst_of_twice_the_rate_unless_set() {
        let c = config(&[(RATE_LIMIT_PER_SECOND, "5")]).expect("config");
        assert_eq!(c.rate_limit, Rate { per_second: 5.0, burst: 10.0 });
        let c = config(&[(RATE_LIMIT_PER_SECOND, "5"), (RATE_LIMIT_BURST, "1")]).expect("config");
        assert_eq!(c.rate_limit.burst, 1.0);
        assert_eq!(config(&[(RATE_LIMIT_PER_SECOND, "0")]).expect_err("zero").variable, "RATE_LIMIT_PER_SECOND");
    }

    #[test]
    fn the_default_jwks_url_has_no_double_slash() {
        let auth: Uri = "http://127.0.0.1:4005".parse().expect("uri");
        assert_eq!(default_jwks_url(&auth), "http://127.0.0.1:4005/.well-known/jwks.json");
    }
}
