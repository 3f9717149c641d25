//! patient-service configuration, from the environment (docs/src/configuration.md has the table).

use std::time::Duration;

use pulsetrack_common::{
    audit::{AuditConfig, audited_database},
    config::{self, ConfigError, ListenConfig, Raw},
    db::DatabaseConfig,
    kafka::KafkaConfig,
    service_auth::ServiceSecret,
    settings::{PatientService, PatientTuning},
    token_check::TokenCheckConfig,
};

pub const DEFAULT_PORT: u16 = 4000;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: ListenConfig,
    pub database: DatabaseConfig,
    /// The audit trail's key and anchors.
    pub audit: AuditConfig,
    /// billing-service, where the outbox opens and closes accounts.
    pub billing: BillingTarget,
    pub kafka: KafkaConfig,
    /// How the routes verify their callers' tokens.
    pub token_check: TokenCheckConfig,
    pub outbox: OutboxConfig,
    /// `CLOUDWATCH_METRICS_NAMESPACE`: publish the outbox's gauges to CloudWatch there.
    pub cloudwatch_namespace: Option<String>,
}

/// billing-service as the outbox reaches it.
#[derive(Debug, Clone)]
pub struct BillingTarget {
    /// The gRPC endpoint (`BILLING_GRPC_URL`); `https://` needs the TLS settings.
    pub url: String,
    /// `BILLING_GRPC_SECRET`: what the credential on every call is minted with
    /// (billing-service refuses calls without it).
    pub secret: ServiceSecret,
    /// The service's TLS identity: billing-service's certificate is verified with its
    /// CA, and the service presents its own.
    pub tls: Option<pulsetrack_common::tls::TlsConfig>,
}

/// How the outbox dispatcher delivers.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// How often pending rows are looked for when no change woke the dispatcher.
    pub poll_interval: Duration,
    /// Retry delay after the first failure; doubles per attempt up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Deadline of one gRPC call to billing-service.
    pub billing_deadline: Duration,
    /// How long the producer tries to deliver one event before the row is retried later.
    pub kafka_delivery_timeout: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            billing_deadline: Duration::from_secs(2),
            kafka_delivery_timeout: Duration::from_secs(5),
        }
    }
}

impl OutboxConfig {
    /// The longest one delivery may take: a gRPC call, or a Kafka send (queueing plus
    /// the producer's own delivery timeout), plus a second of slack.
    pub fn delivery_bound(&self) -> Duration {
        self.billing_deadline.max(self.kafka_delivery_timeout.saturating_mul(2)) + Duration::from_secs(1)
    }

    /// How long Postgres lets a dispatcher's transaction, which holds its claim on a
    /// destination, sit idle before it ends it (and the claim with it): longer than any
    /// delivery, so a row is delivered twice only when its dispatcher hung for that long.
    pub fn claim_timeout(&self) -> Duration {
        self.delivery_bound() + Duration::from_secs(5)
    }

    pub fn from_settings(tuning: &PatientTuning<Raw>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let ms = |raw: &Raw, default: Duration| -> Result<Duration, ConfigError> {
            let value = raw.parse_or(u64::try_from(default.as_millis()).unwrap_or(u64::MAX))?;
            if value == 0 {
                return Err(raw.error("must be positive"));
            }
            Ok(Duration::from_millis(value))
        };
        Ok(Self {
            poll_interval: ms(&tuning.outbox_poll_interval_ms, d.poll_interval)?,
            base_backoff: ms(&tuning.outbox_base_backoff_ms, d.base_backoff)?,
            max_backoff: ms(&tuning.outbox_max_backoff_ms, d.max_backoff)?,
            billing_deadline: ms(&tuning.billing_deadline_ms, d.billing_deadline)?,
            kafka_delivery_timeout: ms(&tuning.kafka_delivery_timeout_ms, d.kafka_delivery_timeout)?,
        })
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&config::from_env())
    }

    /// The database alone, for `verify-audit` (which serves nothing, so it needs no
    /// `BILLING_GRPC_SECRET`).
    pub fn database_from_env() -> Result<DatabaseConfig, ConfigError> {
        audited_database(&config::from_env::<PatientService<Raw>>().database, "patient_service")
    }

    /// The database and the trail's key and anchors, for `verify-audit`.
    pub fn trail_from_env() -> Result<(DatabaseConfig, AuditConfig), ConfigError> {
        let settings = config::from_env::<PatientService<Raw>>();
        Ok((audited_database(&settings.database, "patient_service")?, AuditConfig::from_settings(&settings.audit)?))
    }

    pub fn from_settings(settings: &PatientService<Raw>) -> Result<Self, ConfigError> {
        let listen = ListenConfig::from_settings(&settings.listen, DEFAULT_PORT)?;
        Ok(Self {
            database: audited_database(&settings.database, "patient_service")?,
            audit: AuditConfig::from_settings(&settings.audit)?,
            billing: BillingTarget {
                url: config::http_base_url(&settings.billing_grpc_url, "http://127.0.0.1:9001", listen.tls.is_some())?
                    .to_string(),
                secret: ServiceSecret::from_setting(&settings.billing_caller.secret)?,
                tls: listen.tls.clone(),
            },
            kafka: KafkaConfig::from_settings(&settings.kafka)?,
            token_check: TokenCheckConfig::from_settings(&settings.token_check, listen.tls.is_some())?,
            outbox: OutboxConfig::from_settings(&settings.tuning)?,
            cloudwatch_namespace: settings.cloudwatch_metrics_namespace.optional(),
            listen,
        })
    }
}

#[cfg(test)]
mod tests {
    use pulsetrack_common::settings::{AUDIT_ANCHORS, AUDIT_KEY, BILLING_GRPC_SECRET, Var};

    use super::*;

    /// The settings `pairs`, after an audit key and anchors.
    fn config(pairs: &[(Var, &str)]) -> Result<Config, ConfigError> {
        let key = "k".repeat(40);
        let mut all = vec![(AUDIT_KEY, key.as_str()), (AUDIT_ANCHORS, "file:/var/lib/pulsetrack/anchors.jsonl")];
        all.extend_from_slice(pairs);
        Config::from_settings(&config::from_pairs(&all))
    }

    #[test]
    fn it_needs_the_billing_grpc_secret_and_never_shows_it() {
        assert_eq!(config(&[]).expect_err("no secret").variable, "BILLING_GRPC_SECRET");
        let secret = "p".repeat(40);
        let config = config(&[(BILLING_GRPC_SECRET, &secret)]).expect("valid");
        assert!(!format!("{config:?}").contains(&secret), "the secret is redacted");
    }
}
