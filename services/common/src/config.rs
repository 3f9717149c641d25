//! Twelve-factor configuration: every setting comes from an environment variable and
//! has a default that works on a developer machine. The variables are the services'
//! typed settings ([`crate::settings`]), read as [`Raw`] values; secrets are wrapped in
//! [`Secret`] so that `Debug` output (and thus logs) never shows them.

use std::{env, fmt, str::FromStr, time::Duration};

use pulsetrack_settings::{Listen, Settings, Var};

/// A configuration error names the variable and why its value was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}: {reason}")]
pub struct ConfigError {
    pub variable: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(variable: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { variable: variable.into(), reason: reason.into() }
    }
}

/// One variable as the environment holds it: the services' value type of the settings.
#[derive(Clone, PartialEq, Eq)]
pub struct Raw {
    pub var: Var,
    pub value: Option<String>,
}

/// Settings `S` read from the process environment.
pub fn from_env<S: Settings<Raw>>() -> S {
    S::from_fn(Raw::from_env)
}

/// Settings `S` with these values and every other variable unset (tests read
/// settings so, without touching the process environment).
pub fn from_pairs<S: Settings<Raw>>(pairs: &[(Var, &str)]) -> S {
    S::from_fn(|var| Raw::new(var, pairs.iter().find(|(v, _)| *v == var).map(|(_, value)| value.to_string())))
}

impl Raw {
    pub fn new(var: Var, value: Option<String>) -> Self {
        Self { var, value }
    }

    pub fn from_env(var: Var) -> Self {
        Self::new(var, env::var(var.name()).ok())
    }

    /// The value, or `None` when it is unset or empty.
    pub fn optional(&self) -> Option<String> {
        present(self.value.clone())
    }

    /// The value parsed, or `default` when it is unset or empty.
    pub fn parse_or<T>(&self, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        parse(self.var.name(), self.optional(), default)
    }

    /// The value, or `default`.
    pub fn string_or(&self, default: &str) -> String {
        self.optional().unwrap_or_else(|| default.to_string())
    }

    /// An error naming this variable.
    pub fn error(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::new(self.var.name(), reason)
    }
}

/// An `http://host:port` or `https://host:port` base URL (no trailing slash), or
/// `default` when unset. An `https` URL needs the service's TLS settings (`TLS_CA` is
/// what the server's certificate is verified with): `tls` says whether it has them.
pub fn http_base_url(raw: &Raw, default: &str, tls: bool) -> Result<http::Uri, ConfigError> {
    let value = raw.string_or(default);
    let uri: http::Uri = value.trim_end_matches('/').parse().map_err(|e| raw.error(format!("not a URL: {e}")))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http"), Some(_)) => Ok(uri),
        (Some("https"), Some(_)) if tls => Ok(uri),
        (Some("https"), Some(_)) => Err(raw.error("an https:// URL needs TLS_CERT, TLS_KEY and TLS_CA")),
        _ => Err(raw.error("must be an http://host:port or https://host:port URL")),
    }
}

/// Shows whether the variable is set, never the value (it may be a secret).
impl fmt::Debug for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.value.is_some() { "[set]" } else { "[unset]" })
    }
}

fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn parse<T>(key: &str, value: Option<String>, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match value {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|e: T::Err| ConfigError::new(key, e.to_string())),
    }
}

/// Reads `key`, or returns `None` when it is unset or empty. For variables outside the
/// services' settings (test harness switches); settings are read as [`Raw`].
pub fn optional(key: &str) -> Option<String> {
    present(env::var(key).ok())
}

/// Reads and parses `key`, or returns `default` when it is unset or empty.
pub fn parse_or<T>(key: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    parse(key, optional(key), default)
}

/// Reads `key` as a string, or returns `default`.
pub fn string_or(key: &str, default: &str) -> String {
    optional(key).unwrap_or_else(|| default.to_string())
}

/// A value that must never be printed: `Debug` and `Display` show `[REDACTED]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The wrapped value. Call sites that expose a secret are easy to find.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Where a service listens: `HOST` (default 127.0.0.1) and a service-specific port
/// variable, and how long and how many requests its HTTP server takes.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    pub host: String,
    pub port: u16,
    pub limits: ServerLimits,
    /// TLS on the listener and on calls to other services; `None`: plain HTTP.
    pub tls: Option<crate::tls::TlsConfig>,
}

/// What one HTTP server allows its clients, so that slow or many clients cannot hold
/// its connections and tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// For a whole request header, and for the next request on an idle keep-alive
    /// connection (hyper measures both from the end of the previous response).
    pub header_read_timeout: Duration,
    /// From a request's header to its response, the body read included.
    pub request_timeout: Duration,
    /// Requests handled at once; one more gets 503 at once.
    pub max_in_flight: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_in_flight: 1024,
        }
    }
}

impl ListenConfig {
    /// `host:port` with the default limits.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self { host: host.into(), port, limits: ServerLimits::default(), tls: None }
    }

    /// `HOST` and `PORT` (or `SERVER_PORT`, the seed's name) with the service's default port.
    pub fn from_settings(listen: &Listen<Raw>, default_port: u16) -> Result<Self, ConfigError> {
        let port = match listen.port.optional() {
            Some(_) => &listen.port,
            None => &listen.tuning.server_port,
        };
        let defaults = ServerLimits::default();
        let tuning = &listen.tuning;
        let millis = |raw: &Raw, default: Duration| -> Result<Duration, ConfigError> {
            let ms: u64 = raw.parse_or(u64::try_from(default.as_millis()).unwrap_or(u64::MAX))?;
            if ms == 0 { Err(raw.error("must be positive")) } else { Ok(Duration::from_millis(ms)) }
        };
        let max_in_flight: usize = tuning.max_in_flight.parse_or(defaults.max_in_flight)?;
        if max_in_flight == 0 {
            return Err(tuning.max_in_flight.error("must be positive"));
        }
        Ok(Self {
            host: listen.host.string_or("127.0.0.1"),
            port: port.parse_or(default_port)?,
            limits: ServerLimits {
                header_read_timeout: millis(&tuning.header_read_timeout_ms, defaults.header_read_timeout)?,
                request_timeout: millis(&tuning.request_timeout_ms, defaults.request_timeout)?,
                max_in_flight,
            },
            tls: crate::tls::TlsConfig::from_settings(&listen.tls)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_in_debug_and_display() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{s}"), "[REDACTED]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn port_wins_over_server_port_and_errors_name_the_variable() {
        use pulsetrack_settings::{PORT, SERVER_PORT};
        let listen = |pairs: &[(Var, &str)]| ListenConfig::from_settings(&from_pairs(pairs), 4000);
        assert_eq!(listen(&[]).map(|l| (l.host, l.port)).ok(), Some(("127.0.0.1".into(), 4000)));
        assert_eq!(listen(&[(SERVER_PORT, "81")]).map(|l| l.port).ok(), Some(81));
        assert_eq!(listen(&[(PORT, "80"), (SERVER_PORT, "81")]).map(|l| l.port).ok(), Some(80));
        assert_eq!(listen(&[(PORT, " ")]).map(|l| l.port).ok(), Some(4000));
        let err = listen(&[(PORT, "http")]).expect_err("not a port");
        assert_eq!(err.variable, "PORT");
    }

    #[test]
    fn server_limits_have_defaults_and_refuse_zero() {
        use pulsetrack_settings::{HTTP_HEADER_READ_TIMEOUT_MS, HTTP_MAX_IN_FLIGHT};
        let listen = |pairs: &[(Var, &str)]| ListenConfig::from_settings(&from_pairs(pairs), 4000);
        assert_eq!(listen(&[]).map(|l| l.limits).ok(), Some(ServerLimits::default()));
        let limits = listen(&[(HTTP_HEADER_READ_TIMEOUT_MS, "250"), (HTTP_MAX_IN_FLIGHT, "3")]).expect("limits").limits;
        assert_eq!((limits.header_read_timeout, limits.max_in_flight), (Duration::from_millis(250), 3));
        assert_eq!(listen(&[(HTTP_MAX_IN_FLIGHT, "0")]).expect_err("zero").variable, "HTTP_MAX_IN_FLIGHT");
        assert_eq!(
            listen(&[(HTTP_HEADER_READ_TIMEOUT_MS, "0")]).expect_err("zero").variable,
            "HTTP_HEADER_READ_TIMEOUT_MS"
        );
    }

    #[test]
    fn unset_variable_takes_the_default() {
        assert_eq!(parse_or("PULSETRACK_TEST_UNSET_VARIABLE", 7u16).ok(), Some(7));
        assert_eq!(string_or("PULSETRACK_TEST_UNSET_VARIABLE", "d"), "d");
    }
}
