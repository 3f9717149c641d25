//! The parts the services share, started before them: the private Postgres (or the
//! given server) and the private tansu broker (or the given brokers).

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::Running;
use crate::local::{
    net::{free_port, wait_tcp},
    options::UpOptions,
    postgres::{self, PrivateCluster, Server},
    state::{ProcessState, write_state},
    supervisor::{ProcessSpec, Supervised, postmaster::watch_postgres},
    tansu_db,
};

/// The private broker's SQLite database, in the data folder.
const TANSU_DB: &str = "tansu.db";

impl Running {
    /// The given server, or the private cluster.
    pub(super) async fn start_postgres(&mut self, options: &UpOptions) -> anyhow::Result<Server> {
        let data_dir = self.data_dir.clone();
        let server = match &options.database_url {
            Some(url) => {
                let server = Server::from_url(url)?;
                wait_tcp(&format!("{}:{}", server.host, server.port), Duration::from_secs(5))
                    .await
                    .with_context(|| format!("DATABASE_URL {}", server.display()))?;
                self.say(format!("using Postgres at {}", server.display()));
                server
            }
            None => {
                let bin = postgres::find_bin_dir(options.postgres_bin.as_deref())?;
                let cluster = PrivateCluster::prepare(&data_dir, bin, free_port()?).await?;
                let (server, data, log) = (cluster.server.clone(), cluster.data.clone(), cluster.log.clone());
                // Recorded before it starts: an interrupted start-up stops it too.
                self.state.postgres = server.display();
                self.state.postgres_data = Some(data.clone());
                write_state(&self.data_dir, &self.state);
                let t = Instant::now();
                let cluster = self.cluster.insert(cluster);
                cluster.start().await?;
                let watch = watch_postgres(cluster.clone(), self.supervision.clone());
                self.health_checks.push(watch);
                self.say(format!(
                    "postgres ready in {:.1}s: {} (data {}, log {})",
                    t.elapsed().as_secs_f64(),
                    server.display(),
                    data.display(),
                    log.display()
                ));
                server
            }
        };
        self.state.postgres = server.display();
        Ok(server)
    }

    /// The given brokers, or a private tansu storing topics, messages, producer state
    /// and committed offsets in SQLite in the data folder (`tansu.db`), so that they
    /// survive a restart of the broker or of `up`. The private tansu serves only
    /// clients that log in.
    pub(super) async fn start_broker(&mut self, options: &UpOptions, tansu: Option<PathBuf>) -> anyhow::Result<String> {
        let brokers = match (&options.kafka_brokers, tansu) {
            (Some(brokers), _) => {
                self.say(format!("using Kafka brokers {brokers}"));
                brokers.clone()
            }
            (None, Some(tansu)) => {
                let addr = format!("127.0.0.1:{}", free_port()?);
                let url = format!("tcp://{addr}");
                // tansu reads a `sqlite://` path relative to its working directory.
                // `--authentication`: only clients with a SASL/SCRAM login are served
                // (each Kafka service gets its own, local/tansu_scram.rs).
                let args = ["broker", "--listener-url", &url, "--advertised-listener-url", &url]
                    .into_iter()
                    .chain(["--storage-engine", &format!("sqlite://{TANSU_DB}"), "--authentication"])
                    .map(String::from)
                    .collect();
                let env = vec![("RUST_LOG".into(), "warn".into())];
                let spec = ProcessSpec {
                    cwd: Some(self.data_dir.clone()),
                    // A panicked storage task leaves tansu serving nothing but errors
                    // (seen: "more or less than one row" on a fetch racing a topic
                    // deletion): killed and restarted on its durable storage instead.
                    fatal_line: Some("panicked at"),
                    ..ProcessSpec::new("tansu", tansu.clone(), args, env)
                };
                self.supervise(spec, 6);
                wait_tcp(&addr, options.ready_timeout).await.context("tansu did not start")?;
                self.index_tansu_headers().await;
                self.broker_logins = Some(self.data_dir.join(TANSU_DB));
                let pid = self.processes.last().and_then(Supervised::pid);
                // Recorded in the state file before it is announced: whoever reads the
                // line finds the pid (`down`, the tests).
                self.track("tansu", ProcessState::process(pid, Some(addr.clone()), vec![], tansu));
                self.say(format!("tansu ready: {addr}"));
                addr
            }
            (None, None) => bail!("no Kafka broker: give KAFKA_BROKERS or install tansu"),
        };
        self.state.kafka_brokers = brokers.clone();
        Ok(brokers)
    }

    /// Adds the index tansu's schema lacks (`tansu_db`), once tansu has made its schema.
    /// Without it the broker still works but slows down as messages accumulate: said,
    /// not fatal.
    async fn index_tansu_headers(&mut self) {
        let path = self.data_dir.join(TANSU_DB);
        let mut outcome: Result<bool, String> = Ok(false);
        for _ in 0..50 {
            let path = path.clone();
            outcome = tokio::task::spawn_blocking(move || tansu_db::index_headers(&path))
                .await
                .map_err(|e| e.to_string())
                .and_then(|indexed| indexed.map_err(|e| e.to_string()));
            if !matches!(outcome, Ok(false)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match outcome {
            Ok(true) => {}
            Ok(false) => self.say(format!(
                "WARNING: {} has no `header` table to index (another tansu version?): the broker will slow down as \
                 messages accumulate",
                path.display()
            )),
            Err(e) => self.say(format!(
                "WARNING: could not index tansu's headers in {} ({e}): the broker will slow down as messages accumulate",
                path.display()
            )),
        }
    }
}
