//! api-gateway configuration, from the environment (docs/src/configuration.md has the table).

use std::time::Duration;

use http::Uri;
use ipnet::IpNet;
use pulsetrack_common::{
    config::{self, ConfigError, ListenConfig, Raw, http_base_url},
    rate_limit::Rate,
    service_auth::ServiceSecret,
    settings::ApiGateway,
    token_check::TokenCheckConfig,
};

pub const DEFAULT_PORT: u16 = 4004;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: ListenConfig,
    /// auth-service (where `/auth/**` goes), its keys and its revocation feed.
    pub token_check: TokenCheckConfig,
    pub patient_url: Uri,
    pub billing_url: Uri,
    pub analytics_url: Uri,
    /// Time allowed for an upstream to start answering (504 after it).
    pub upstream_timeout: Duration,
    /// Largest request body forwarded (413 beyond it).
    pub max_body_bytes: usize,
    /// Requests one caller (an account, or a client address on public routes) may make.
    pub rate_limit: Rate,
    /// The proxies in front of the gateway whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `GATEWAY_AUDIT_SECRET`: what the credentials on the refusal reports to
    /// auth-service's trail are minted with.
    pub audit_secret: ServiceSecret,
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

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&config::from_env())
    }

    pub fn from_settings(settings: &ApiGateway<Raw>) -> Result<Self, ConfigError> {
        let tuning = &settings.tuning;
        let listen = ListenConfig::from_settings(&settings.listen, DEFAULT_PORT)?;
        let tls = listen.tls.is_some();
        Ok(Self {
            token_check: TokenCheckConfig::from_settings(&settings.token_check, tls)?,
            patient_url: http_base_url(&settings.patient_service_url, "http://127.0.0.1:4000", tls)?,
            billing_url: http_base_url(&settings.billing_service_url, "http://127.0.0.1:4001", tls)?,
            analytics_url: http_base_url(&settings.analytics_service_url, "http://127.0.0.1:4002", tls)?,
            listen,
            upstream_timeout: Duration::from_millis(tuning.upstream_timeout_ms.parse_or(15_000)?),
            max_body_bytes: tuning.max_body_bytes.parse_or(1024 * 1024)?,
            rate_limit: rate_limit(settings)?,
            trusted_proxies: trusted_proxies(&settings.trusted_proxies)?,
            audit_secret: ServiceSecret::from_setting(&settings.gateway_audit_caller.secret)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use pulsetrack_common::settings::{RATE_LIMIT_BURST, RATE_LIMIT_PER_SECOND, TRUSTED_PROXIES};

    use super::*;

    /// The settings `pairs` and a gateway audit secret.
    fn config(pairs: &[(pulsetrack_common::settings::Var, &str)]) -> Result<Config, ConfigError> {
        let secret = "g".repeat(40);
        let mut all = vec![(pulsetrack_common::settings::GATEWAY_AUDIT_SECRET, secret.as_str())];
        all.extend_from_slice(pairs);
        Config::from_settings(&pulsetrack_common::config::from_pairs(&all))
    }

    #[test]
    fn it_needs_the_audit_secret_and_never_shows_it() {
        let e = Config::from_settings(&pulsetrack_common::config::from_pairs(&[])).expect_err("no secret");
        assert_eq!(e.variable, "GATEWAY_AUDIT_SECRET");
        assert!(!format!("{:?}", config(&[]).expect("valid")).contains(&"g".repeat(40)));
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
}
