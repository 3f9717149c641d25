//! Twelve-factor configuration: every setting comes from an environment variable and
//! has a default that works on a developer machine. Secrets are wrapped in [`Secret`]
//! so that `Debug` output (and thus logs) never shows them.

use std::{env, fmt, str::FromStr};

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

/// Reads `key`, or returns `None` when it is unset or empty.
pub fn optional(key: &str) -> Option<String> {
    env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// Reads and parses `key`, or returns `default` when it is unset or empty.
pub fn parse_or<T>(key: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match optional(key) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|e: T::Err| ConfigError::new(key, e.to_string())),
    }
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

/// Where a service listens: `HOST` (default 127.0.0.1) and a service-specific port variable.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    pub host: String,
    pub port: u16,
}

impl ListenConfig {
    /// `HOST` and `PORT` (or `SERVER_PORT`, the seed's name) with the service's default port.
    pub fn from_env(default_port: u16) -> Result<Self, ConfigError> {
        let port = match optional("PORT") {
            Some(_) => parse_or("PORT", default_port)?,
            None => parse_or("SERVER_PORT", default_port)?,
        };
        Ok(Self { host: string_or("HOST", "127.0.0.1"), port })
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
    fn unset_variable_takes_the_default() {
        assert_eq!(parse_or("PULSETRACK_TEST_UNSET_VARIABLE", 7u16).ok(), Some(7));
        assert_eq!(string_or("PULSETRACK_TEST_UNSET_VARIABLE", "d"), "d");
    }
}
