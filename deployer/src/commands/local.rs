//! `deployer up`, `down` and `status --local`: the stack model on this machine.

use std::{path::Path, time::Duration};

use crate::{
    cli::UpArgs,
    error::{Error, Result},
    local,
};

pub async fn up(args: UpArgs) -> Result<()> {
    let images = args.images.options()?;
    let containers = args.containers.then_some(local::ContainerOptions {
        engine: args.engine,
        registry: args.registry,
        base: images.base.clone(),
        store: images.store.clone(),
    });
    let options = local::UpOptions {
        data_dir: args.data_dir,
        bin_dir: images.bin_dir,
        containers,
        database_url: args.database_url,
        kafka_login: kafka_login(args.kafka_username)?,
        kafka_brokers: args.kafka_brokers,
        tansu: args.tansu,
        postgres_bin: args.postgres_bin,
        gateway_port: args.port,
        port_offset: args.port_offset,
        ready_timeout: Duration::from_secs(args.ready_timeout),
        log_format: args.log_format,
        rust_log: args.rust_log,
        admin_password: args.admin_password,
        prometheus: match args.prometheus {
            true => Some(local::prometheus::find(args.prometheus_bin.as_deref()).map_err(Error::Failed)?),
            false => None,
        },
    };
    local::up(options).await.map_err(Error::Failed)
}

/// `--kafka-username` with the password from `KAFKA_SASL_PASSWORD` (only from the
/// environment: a secret stays off the command line).
fn kafka_login(username: Option<String>) -> Result<Option<local::KafkaLogin>> {
    let Some(username) = username else { return Ok(None) };
    match std::env::var("KAFKA_SASL_PASSWORD") {
        Ok(password) if !password.is_empty() => Ok(Some(local::KafkaLogin { username, password })),
        _ => Err(Error::Usage("--kafka-username needs the password in KAFKA_SASL_PASSWORD".into())),
    }
}

pub async fn down(data_dir: &Path, timeout: Duration) -> Result<()> {
    let report = local::down(data_dir, timeout).await.map_err(Error::Failed)?;
    println!("{report}");
    Ok(())
}

pub async fn status(data_dir: &Path) -> Result<()> {
    let report = local::status(data_dir).await.map_err(Error::Failed)?;
    print!("{report}");
    Ok(())
}

pub async fn top(data_dir: &Path, interval: f64, count: Option<u32>) -> Result<()> {
    if !(interval.is_finite() && interval >= 0.1) {
        return Err(Error::Usage(format!("--interval {interval}: must be at least 0.1 seconds")));
    }
    local::top::top(data_dir, Duration::from_secs_f64(interval), count).await.map_err(Error::Failed)
}

pub async fn guard(data_dir: std::path::PathBuf, parent: u32) -> Result<()> {
    local::guard::run(data_dir, parent).await.map_err(Error::Failed)
}
