//! Kafka client settings shared by the producer (patient-service) and the consumer
//! (analytics-service), and topic creation: the broker (tansu in development, MSK in
//! AWS) does not auto-create topics, so each service creates the ones it needs.

use std::{path::PathBuf, time::Duration};

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer as _},
    error::KafkaError,
    types::RDKafkaErrorCode,
};

use crate::{
    config::{ConfigError, Raw, Secret},
    settings::{Kafka, KafkaSecurityProtocol},
};

/// The SASL mechanism of every login: SCRAM-SHA-512 (MSK's SASL/SCRAM and tansu both
/// offer it; the password never crosses the wire).
pub const SASL_MECHANISM: &str = "SCRAM-SHA-512";

/// A service's login at the brokers: `KAFKA_SASL_USERNAME` and `KAFKA_SASL_PASSWORD`.
#[derive(Debug, Clone)]
pub struct ScramLogin {
    pub username: String,
    pub password: Secret<String>,
}

/// The patient events topic.
pub const PATIENT_TOPIC: &str = "patient";
/// Where analytics-service sends messages it cannot decode.
pub const PATIENT_DLT_TOPIC: &str = "patient.dlt";
/// Default partition count of the patient topic: events are keyed by patient id, so
/// this bounds how many analytics consumers can share the work.
pub const DEFAULT_PARTITIONS: i32 = 3;

/// Whether a produce failed because the broker does not know the topic (a fresh
/// in-memory broker after a restart): the producer should create it and retry.
pub fn is_unknown_topic(error: &KafkaError) -> bool {
    matches!(
        error,
        KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
    )
}

/// Whether a consumer error means a subscribed topic (or its partition) is gone: a
/// broker that came back empty. The topics should be created again.
pub fn is_missing_topic(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
        )
    )
}

/// Whether a producer became unusable: an idempotent producer goes fatal when the
/// broker lost its producer state ("unknown producer id"), and stays so until it is
/// replaced by a new one.
pub fn is_fatal(error: &KafkaError) -> bool {
    matches!(error, KafkaError::MessageConsumptionFatal(_))
        || error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal)
}

/// Whether an error only says the broker cannot be reached right now (down,
/// restarting, timing out, overloaded, or a producer that must be replaced): waiting
/// and retrying is the answer, however long it takes. Everything else (a rejected
/// message, a missing authorization) is not plainly transient.
pub fn is_transient(error: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    match error {
        KafkaError::Canceled | KafkaError::NoMessageReceived | KafkaError::MessageConsumptionFatal(_) => true,
        _ => matches!(
            error.rdkafka_error_code(),
            Some(
                C::BrokerTransportFailure
                    | C::Resolve
                    | C::MessageTimedOut
                    | C::AllBrokersDown
                    | C::OperationTimedOut
                    | C::QueueFull
                    | C::TimedOutQueue
                    | C::Retry
                    | C::PurgeQueue
                    | C::PurgeInflight
                    | C::Fatal
                    | C::Fenced
                    | C::DestroyBroker
                    | C::BrokerDestroy
                    | C::WaitCache
                    | C::UnknownTopicOrPartition
                    | C::UnknownTopic
                    | C::UnknownPartition
                    | C::LeaderNotAvailable
                    | C::NotLeaderForPartition
                    | C::RequestTimedOut
                    | C::BrokerNotAvailable
                    | C::ReplicaNotAvailable
                    | C::NetworkException
                    | C::CoordinatorLoadInProgress
                    | C::CoordinatorNotAvailable
                    | C::NotCoordinator
                    | C::NotEnoughReplicas
                    | C::NotEnoughReplicasAfterAppend
                    | C::NotController
                    | C::KafkaStorageError
                    | C::UnknownProducerId
                    | C::OutOfOrderSequenceNumber
                    | C::InvalidProducerEpoch
                    | C::ProducerFenced
                    | C::ThrottlingQuotaExceeded
                    | C::FencedLeaderEpoch
                    | C::UnknownLeaderEpoch
                    | C::OffsetNotAvailable
                    | C::RebalanceInProgress
            )
        ),
    }
}

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `KAFKA_BROKERS` (or `KAFKA_BOOTSTRAP_SERVERS`): comma-separated host:port.
    pub brokers: String,
    /// `KAFKA_TOPIC_PARTITIONS`, used when a service creates a topic.
    pub partitions: i32,
    /// `KAFKA_REPLICATION_FACTOR` (1 for a single local broker, 3 on MSK).
    pub replication: i32,
    /// `KAFKA_SECURITY_PROTOCOL`: plain TCP or TLS, with or without a login.
    pub security: KafkaSecurityProtocol,
    /// `KAFKA_SSL_CA_FILE` (TLS only): the CAs that sign the brokers' certificates;
    /// `None`: the system trust store.
    pub ca_file: Option<PathBuf>,
    /// The SCRAM login, exactly when `security` is `sasl_*`.
    pub login: Option<ScramLogin>,
}

impl KafkaConfig {
    pub fn from_settings(kafka: &Kafka<Raw>) -> Result<Self, ConfigError> {
        let brokers = kafka
            .brokers
            .optional()
            .or_else(|| kafka.tuning.bootstrap_servers.optional())
            .unwrap_or_else(|| "127.0.0.1:9092".into());
        let partitions = kafka.tuning.topic_partitions.parse_or(DEFAULT_PARTITIONS)?;
        if partitions < 1 {
            return Err(kafka.tuning.topic_partitions.error("must be at least 1"));
        }
        let replication = kafka.replication_factor.parse_or(1)?;
        if replication < 1 {
            return Err(kafka.replication_factor.error("must be at least 1"));
        }
        let security = kafka.security_protocol.parse_or(KafkaSecurityProtocol::Plaintext)?;
        let ca_file = kafka.tuning.ssl_ca_file.optional().map(PathBuf::from);
        let protocol = kafka.security_protocol.var;
        match &ca_file {
            Some(_) if !security.tls() => {
                return Err(kafka.tuning.ssl_ca_file.error(format!("needs {protocol}=ssl or sasl_ssl")));
            }
            Some(file) if !file.is_file() => {
                return Err(kafka.tuning.ssl_ca_file.error(format!("{} is not a file", file.display())));
            }
            _ => {}
        }
        let login = Self::login_from_settings(kafka, security)?;
        Ok(Self { brokers, partitions, replication, security, ca_file, login })
    }

    /// The SCRAM login: both variables with a `sasl_*` protocol, neither without.
    fn login_from_settings(
        kafka: &Kafka<Raw>,
        security: KafkaSecurityProtocol,
    ) -> Result<Option<ScramLogin>, ConfigError> {
        let (user, password) = (&kafka.tuning.sasl_username, &kafka.tuning.sasl_password);
        let protocol = kafka.security_protocol.var;
        if !security.sasl() {
            return match [user, password].into_iter().find(|raw| raw.optional().is_some()) {
                Some(set) => Err(set.error(format!("needs {protocol}=sasl_plaintext or sasl_ssl"))),
                None => Ok(None),
            };
        }
        let required =
            |raw: &Raw| raw.optional().ok_or_else(|| raw.error(format!("is required with {protocol}={security}")));
        Ok(Some(ScramLogin { username: required(user)?, password: Secret::new(required(password)?) }))
    }

    /// A local broker over plain TCP.
    pub fn local(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            partitions: DEFAULT_PARTITIONS,
            replication: 1,
            security: KafkaSecurityProtocol::Plaintext,
            ca_file: None,
            login: None,
        }
    }

    /// The same brokers over TLS, trusting the CAs in `ca_file` (`None`: the system's).
    pub fn with_tls(self, ca_file: Option<PathBuf>) -> Self {
        let security = if self.security.sasl() { KafkaSecurityProtocol::SaslSsl } else { KafkaSecurityProtocol::Ssl };
        Self { security, ca_file, ..self }
    }

    /// The same brokers and transport, logging in as `login`.
    pub fn with_login(self, login: ScramLogin) -> Self {
        Self { security: self.security.with_sasl(), login: Some(login), ..self }
    }

    /// Base client settings (the producer's, the consumer's and the admin client's);
    /// callers add producer or consumer settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.brokers)
            .set("security.protocol", self.security.as_str())
            // Fail over to a restarted broker quickly.
            .set("reconnect.backoff.ms", "50")
            .set("reconnect.backoff.max.ms", "1000")
            .set("topic.metadata.refresh.interval.ms", "5000")
            .set("log_level", "4");
        if self.security.tls() {
            // Certificates are verified and so are host names (librdkafka's default
            // `ssl.endpoint.identification.algorithm=https`). "probe" looks in the
            // usual system locations for the trust store, wherever the OpenSSL the
            // binary runs with was configured to look.
            let ca = self.ca_file.as_ref().map_or_else(|| "probe".into(), |f| f.display().to_string());
            cfg.set("ssl.ca.location", ca);
        }
        if let Some(login) = &self.login {
            cfg.set("sasl.mechanism", SASL_MECHANISM)
                .set("sasl.username", &login.username)
                .set("sasl.password", login.password.expose());
        }
        cfg
    }

    /// Creates those of `topics` that the broker does not have. Errors when the broker
    /// cannot be reached. The broker is asked first, so that a service starting beside
    /// topics that exist creates nothing: a create of an existing topic is answered with
    /// TopicAlreadyExists, which brokers (tansu, MSK) log as an error. Two services that
    /// both find a topic missing may still race; the loser's TopicAlreadyExists is fine.
    pub async fn ensure_topics(&self, topics: &[&str]) -> Result<(), KafkaError> {
        let missing = missing_topics(self.client_config(), topics).await?;
        if missing.is_empty() {
            return Ok(());
        }
        let admin: AdminClient<DefaultClientContext> = self.client_config().create()?;
        let new_topics: Vec<NewTopic> = missing
            .iter()
            .map(|t| NewTopic::new(t, self.partitions, TopicReplication::Fixed(self.replication)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
        let results = admin.create_topics(&new_topics, &options).await?;
        for result in results {
            match result {
                Ok(topic) => tracing::info!(%topic, partitions = self.partitions, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(KafkaError::AdminOp(code))
                        .inspect_err(|_| tracing::warn!(%topic, ?code, "topic creation failed"));
                }
            }
        }
        Ok(())
    }

    /// A client for readiness probes: [`BrokerProbe::check`] asks the broker for a
    /// topic's metadata.
    pub fn probe(&self) -> Result<BrokerProbe, KafkaError> {
        Ok(BrokerProbe(std::sync::Arc::new(self.client_config().create()?)))
    }

    /// Retries [`Self::ensure_topics`] until it succeeds (the broker may start later).
    pub async fn ensure_topics_until_ok(&self, topics: &[&str]) {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.ensure_topics(topics).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, brokers = %self.brokers, "cannot create topics yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Those of `topics` the broker does not list (one metadata request for all topics,
/// which never auto-creates one).
async fn missing_topics<'a>(config: ClientConfig, topics: &[&'a str]) -> Result<Vec<&'a str>, KafkaError> {
    // A metadata request blocks its thread until the broker answers or the timeout.
    let existing: Vec<String> = tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = config.create()?;
        let metadata = client.fetch_metadata(None, Duration::from_secs(5))?;
        Ok::<_, KafkaError>(
            metadata.topics().iter().filter(|t| t.error().is_none()).map(|t| t.name().to_owned()).collect(),
        )
    })
    .await
    .map_err(|_| KafkaError::Canceled)??;
    Ok(topics.iter().copied().filter(|t| !existing.iter().any(|e| e == t)).collect())
}

/// Asks the broker whether it answers and knows a topic (a readiness check).
#[derive(Clone)]
pub struct BrokerProbe(std::sync::Arc<BaseConsumer>);

impl BrokerProbe {
    /// `Ok` when the broker answered within a second and knows `topic`.
    pub async fn check(&self, topic: &'static str) -> Result<(), String> {
        let client = self.0.clone();
        // A metadata request blocks its thread until the broker answers or the timeout.
        let metadata = tokio::task::spawn_blocking(move || {
            client
                .fetch_metadata(Some(topic), Duration::from_secs(1))
                .map(|m| m.topics().iter().find(|t| t.name() == topic).map(|t| (t.error(), t.partitions().len())))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("broker: {e}"))?;
        match metadata {
            Some((None, partitions)) if partitions > 0 => Ok(()),
            Some((Some(error), _)) => Err(format!("topic {topic}: {:?}", RDKafkaErrorCode::from(error))),
            _ => Err(format!("topic {topic}: no partitions")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_transient_and_rejections_are_not() {
        for code in [RDKafkaErrorCode::AllBrokersDown, RDKafkaErrorCode::MessageTimedOut, RDKafkaErrorCode::Fatal] {
            assert!(is_transient(&KafkaError::MessageProduction(code)), "{code:?}");
        }
        for code in [RDKafkaErrorCode::MessageSizeTooLarge, RDKafkaErrorCode::TopicAuthorizationFailed] {
            assert!(!is_transient(&KafkaError::MessageProduction(code)), "{code:?}");
        }
    }

    fn settings(pairs: &[(pulsetrack_settings::Var, &str)]) -> Result<KafkaConfig, ConfigError> {
        KafkaConfig::from_settings(&crate::config::from_pairs(pairs))
    }

    #[test]
    fn tls_settings_are_read_and_checked() {
        use pulsetrack_settings::{KAFKA_SECURITY_PROTOCOL, KAFKA_SSL_CA_FILE};
        let plain = settings(&[]).expect("defaults");
        assert_eq!((plain.security, plain.ca_file.as_deref()), (KafkaSecurityProtocol::Plaintext, None));
        assert_eq!(plain.client_config().get("security.protocol"), Some("plaintext"));

        let tls = settings(&[(KAFKA_SECURITY_PROTOCOL, "ssl")]).expect("tls without a CA file");
        assert_eq!(tls.client_config().get("security.protocol"), Some("ssl"));
        assert_eq!(tls.client_config().get("ssl.ca.location"), Some("probe"));

        let ca = std::env::current_exe().expect("a file that exists");
        let ca = ca.to_str().expect("utf-8 path");
        let tls = settings(&[(KAFKA_SECURITY_PROTOCOL, "ssl"), (KAFKA_SSL_CA_FILE, ca)]).expect("tls with a CA");
        assert_eq!(tls.client_config().get("ssl.ca.location"), Some(ca));

        let err = settings(&[(KAFKA_SSL_CA_FILE, ca)]).expect_err("a CA file without TLS");
        assert_eq!(err.variable, "KAFKA_SSL_CA_FILE");
        let err = settings(&[(KAFKA_SECURITY_PROTOCOL, "ssl"), (KAFKA_SSL_CA_FILE, "/nonexistent/ca.pem")])
            .expect_err("a missing CA file");
        assert_eq!(err.variable, "KAFKA_SSL_CA_FILE");
        let err = settings(&[(KAFKA_SECURITY_PROTOCOL, "tls")]).expect_err("unknown protocol");
        assert_eq!(err.variable, "KAFKA_SECURITY_PROTOCOL");
    }

    #[test]
    fn scram_logins_are_read_and_checked() {
        use pulsetrack_settings::{KAFKA_SASL_PASSWORD, KAFKA_SASL_USERNAME, KAFKA_SECURITY_PROTOCOL};
        let login = settings(&[
            (KAFKA_SECURITY_PROTOCOL, "sasl_ssl"),
            (KAFKA_SASL_USERNAME, "patient-service"),
            (KAFKA_SASL_PASSWORD, "pw-0123456789"),
        ])
        .expect("a login over TLS");
        let cfg = login.client_config();
        assert_eq!(cfg.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(cfg.get("ssl.ca.location"), Some("probe"));
        assert_eq!(cfg.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(cfg.get("sasl.username"), Some("patient-service"));
        assert_eq!(cfg.get("sasl.password"), Some("pw-0123456789"));
        assert!(!format!("{login:?}").contains("pw-0123456789"), "the password is redacted");

        let plain = settings(&[
            (KAFKA_SECURITY_PROTOCOL, "sasl_plaintext"),
            (KAFKA_SASL_USERNAME, "u"),
            (KAFKA_SASL_PASSWORD, "p"),
        ])
        .expect("a login over TCP");
        assert_eq!(plain.client_config().get("security.protocol"), Some("sasl_plaintext"));
        assert_eq!(plain.client_config().get("ssl.ca.location"), None);

        let err = settings(&[(KAFKA_SECURITY_PROTOCOL, "sasl_plaintext"), (KAFKA_SASL_USERNAME, "u")])
            .expect_err("no password");
        assert_eq!(err.variable, "KAFKA_SASL_PASSWORD");
        let err = settings(&[(KAFKA_SECURITY_PROTOCOL, "sasl_ssl")]).expect_err("no login");
        assert_eq!(err.variable, "KAFKA_SASL_USERNAME");
        let err = settings(&[(KAFKA_SASL_PASSWORD, "p")]).expect_err("a login without SASL");
        assert_eq!(err.variable, "KAFKA_SASL_PASSWORD");

        let local = KafkaConfig::local("127.0.0.1:9092")
            .with_login(ScramLogin { username: "u".into(), password: Secret::new("p".into()) });
        assert_eq!(local.security, KafkaSecurityProtocol::SaslPlaintext);
        assert_eq!(local.with_tls(None).security, KafkaSecurityProtocol::SaslSsl);
    }

    #[test]
    fn fatal_and_missing_topics_are_recognised() {
        assert!(is_fatal(&KafkaError::MessageProduction(RDKafkaErrorCode::Fatal)));
        assert!(is_fatal(&KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::UnknownProducerId)));
        assert!(!is_fatal(&KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut)));
        assert!(is_missing_topic(&KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)));
        assert!(!is_missing_topic(&KafkaError::MessageConsumption(RDKafkaErrorCode::AllBrokersDown)));
    }
}
