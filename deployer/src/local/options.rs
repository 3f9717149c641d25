//! What `deployer up` is asked for: the command line's choices, as `up` reads them.

use std::{path::PathBuf, time::Duration};

/// What `up` was asked for.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Data folder: the private Postgres cluster, generated secrets, the state file.
    pub data_dir: PathBuf,
    /// Where the service binaries are (the deployer's own folder by default).
    pub bin_dir: PathBuf,
    /// An existing Postgres (`DATABASE_URL`) instead of a private cluster.
    pub database_url: Option<String>,
    /// An existing Kafka-protocol broker (`KAFKA_BROKERS`) instead of a private tansu.
    pub kafka_brokers: Option<String>,
    /// The SCRAM-SHA-512 login the services use at the given brokers
    /// (`KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD`); `None`: they do not log in.
    pub kafka_login: Option<KafkaLogin>,
    pub tansu: Option<PathBuf>,
    pub postgres_bin: Option<PathBuf>,
    pub gateway_port: Option<u16>,
    pub port_offset: u16,
    pub ready_timeout: Duration,
    pub log_format: String,
    pub rust_log: Option<String>,
    pub admin_password: Option<String>,
    /// Run the task definitions as containers from pushed images instead of processes.
    pub containers: Option<ContainerOptions>,
    /// Also run Prometheus (this binary) scraping every service.
    pub prometheus: Option<PathBuf>,
}

/// A SCRAM login at the brokers (the password never printed).
#[derive(Clone)]
pub struct KafkaLogin {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for KafkaLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KafkaLogin({}, [REDACTED])", self.username)
    }
}

/// How `up --containers` gets and runs the images.
#[derive(Debug, Clone)]
pub struct ContainerOptions {
    /// podman or docker (default: whichever is on PATH, podman first).
    pub engine: Option<PathBuf>,
    /// Push to this registry (`host:port/path`) instead of a private one in the data folder.
    pub registry: Option<String>,
    /// The base root filesystem and the image layout (binaries come from `bin_dir`).
    pub base: PathBuf,
    pub store: PathBuf,
}
