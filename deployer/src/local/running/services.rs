//! The services of the plan, each a supervised process (or container) with the local
//! touches to its task's environment, and Prometheus scraping them (`--prometheus`).

use std::path::Path;

use anyhow::Context;
use pulsetrack_stacks::settings::{
    DATABASE_ADMIN_PASSWORD, DATABASE_ADMIN_USER, DATABASE_MIGRATIONS, KAFKA_SASL_PASSWORD, KAFKA_SASL_USERNAME,
    KAFKA_SECURITY_PROTOCOL, KAFKA_TOPIC_PARTITIONS, KafkaSecurityProtocol, LOG_FORMAT, MigrationMode, RUST_LOG, Var,
};

use super::Running;
use crate::local::{
    containers::container_name,
    health::monitor_health,
    net::{wait_ready, wait_tcp},
    options::{KafkaLogin, UpOptions},
    plan::LocalService,
    postgres::secret_file_of_length,
    prometheus,
    state::ProcessState,
    supervisor::{ProcessSpec, Supervised},
    tansu_scram,
};

/// Partitions of a topic a service creates under `up` (unless its task sets
/// `KAFKA_TOPIC_PARTITIONS`): one machine runs one analytics consumer, and each
/// partition costs the broker a fixed amount in every produce and fetch request (tansu
/// reads and updates each one's watermarks). 60 s of creates at 100 clients: tansu 0.105
/// -> 0.091 ms of CPU per create, 3,622 -> 3,834 creates/s, p99 52.5 -> 49.3 ms
/// (bench/ISSUE17.md). The stack's tasks keep the services' default (3), so that ECS
/// can run consumers side by side.
const LOCAL_TOPIC_PARTITIONS: &str = "1";

/// Sets `var` to `value`, replacing the task's own value.
fn set(env: &mut Vec<(String, String)>, var: Var, value: String) {
    env.retain(|(k, _)| k != var.name());
    env.push((var.name().into(), value));
}

impl Running {
    /// Starts one service (a process, or with `--containers` a container) and waits
    /// until it is ready.
    pub(super) async fn start_service(
        &mut self,
        index: usize,
        service: &LocalService,
        services: &[LocalService],
        options: &UpOptions,
    ) -> anyhow::Result<()> {
        let mut env = self.local_env(service, options).await?;
        let binary = options.bin_dir.join(&service.name);
        if service.database.is_some() {
            self.migrate(service, &env, services, options).await?;
            // The service holds its own role only: the step above did the admin's part.
            env.retain(|(k, _)| k != DATABASE_ADMIN_USER.name() && k != DATABASE_ADMIN_PASSWORD.name());
            set(&mut env, DATABASE_MIGRATIONS, MigrationMode::Check.as_str().into());
        }
        let (spec, container) = match &self.engine {
            Some(engine) => {
                let container = container_name(&self.data_dir, &service.name);
                // A container left by a killed `up` would hold the name.
                engine.remove(&container).await;
                let task = LocalService { env, ..service.clone() };
                (engine.run_spec(&task, &container, services), Some(container))
            }
            None => {
                let program = binary.clone();
                (ProcessSpec::new(service.name.clone(), program, vec![], env), None)
            }
        };
        let supervised = self.supervise(spec, index);
        let took = wait_ready(&format!("{}/ready", service.url()), supervised, options.ready_timeout).await?;
        let pid = supervised.pid();
        self.say(format!("{} ready in {:.1}s: {}", service.name, took.as_secs_f64(), service.url()));
        let mut process =
            ProcessState::process(pid, Some(service.url()), service.ports.iter().map(|p| p.1).collect(), binary);
        if let (Some(engine), Some(container)) = (&self.engine, container) {
            if let Some(check) = &service.health_check {
                let printer = self.supervision.printer.clone();
                let monitor =
                    monitor_health(engine.clone(), container.clone(), service.name.clone(), check.clone(), printer);
                self.health_checks.push(monitor);
            }
            process.container_pid = engine.pid(&container).await;
            process.image = Some(service.image.clone());
            self.containers.insert(service.name.clone(), container.clone());
            process.container = Some(container);
        }
        self.track(&service.name, process);
        Ok(())
    }

    /// The separate migration step: `<service> migrate` (a process, or a container of
    /// its image) with the task's environment, the admin role among it, run to its end.
    /// Its output goes to `up`'s; a failure stops `up`.
    async fn migrate(
        &self,
        service: &LocalService,
        env: &[(String, String)],
        services: &[LocalService],
        options: &UpOptions,
    ) -> anyhow::Result<()> {
        let task = LocalService { env: env.to_vec(), ..service.clone() };
        let mut spec = match &self.engine {
            Some(engine) => {
                let container = container_name(&self.data_dir, &format!("{}-migrate", service.name));
                engine.remove(&container).await;
                engine.run_spec(&task, &container, services)
            }
            None => ProcessSpec::new(service.name.clone(), options.bin_dir.join(&service.name), vec![], task.env),
        };
        spec.args.push("migrate".into());
        let output = tokio::process::Command::new(&spec.program)
            .args(&spec.args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .with_context(|| format!("cannot run {} migrate", service.name))?;
        let said = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            let err = String::from_utf8_lossy(&output.stderr);
            anyhow::bail!("{} migrate failed ({}): {}{}", service.name, output.status, said.trim(), err.trim());
        }
        for line in said.lines().filter(|l| l.contains(" migrated ")) {
            self.say(line.to_string());
        }
        Ok(())
    }

    /// The task's environment with `up`'s touches: the log format and filter asked
    /// for, one partition per topic, the broker login, plain lines off a terminal.
    async fn local_env(&self, service: &LocalService, options: &UpOptions) -> anyhow::Result<Vec<(String, String)>> {
        let mut env = service.env.clone();
        set(&mut env, LOG_FORMAT, options.log_format.clone());
        if let Some(filter) = &options.rust_log {
            set(&mut env, RUST_LOG, filter.clone());
        }
        if service.kafka && !env.iter().any(|(k, _)| k == KAFKA_TOPIC_PARTITIONS.name()) {
            env.push((KAFKA_TOPIC_PARTITIONS.name().into(), LOCAL_TOPIC_PARTITIONS.into()));
        }
        if service.kafka
            && let Some(login) = self.kafka_login(&service.name, options).await?
        {
            set(&mut env, KAFKA_SECURITY_PROTOCOL, KafkaSecurityProtocol::SaslPlaintext.as_str().into());
            set(&mut env, KAFKA_SASL_USERNAME, login.username);
            set(&mut env, KAFKA_SASL_PASSWORD, login.password);
        }
        if !self.supervision.printer.color() {
            // Plain lines when `up`'s output is not a terminal (tracing honours NO_COLOR).
            env.push(("NO_COLOR".into(), "1".into()));
        }
        Ok(env)
    }

    /// The login `service` uses at the brokers: at the private tansu its own, with a
    /// password generated once into the data folder and written into tansu's storage;
    /// at given brokers the one given (`--kafka-username`), if any.
    async fn kafka_login(&self, service: &str, options: &UpOptions) -> anyhow::Result<Option<KafkaLogin>> {
        let Some(db) = &self.broker_logins else { return Ok(options.kafka_login.clone()) };
        let password = secret_file_of_length(&tansu_scram::password_file(&self.data_dir, service), 32)?;
        tansu_scram::set_user_when_ready(db, service, &password, options.ready_timeout)
            .await
            .with_context(|| format!("cannot write {service}'s login into {}", db.display()))?;
        Ok(Some(KafkaLogin { username: service.to_string(), password }))
    }

    /// Prometheus, scraping every service (`--prometheus`), supervised like the rest.
    pub(super) async fn start_prometheus(
        &mut self,
        bin: &Path,
        services: &[LocalService],
        options: &UpOptions,
    ) -> anyhow::Result<()> {
        let dir = self.data_dir.join("prometheus");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let targets: Vec<(String, String)> =
            services.iter().map(|s| (s.name.clone(), format!("127.0.0.1:{}", s.http_port))).collect();
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, prometheus::config(&targets))
            .with_context(|| format!("cannot write {}", config.display()))?;
        let port = prometheus::PORT + options.port_offset;
        let spec = ProcessSpec {
            cwd: Some(dir.clone()),
            ..ProcessSpec::new("prometheus", bin.to_path_buf(), prometheus::args(&dir, port), vec![])
        };
        self.supervise(spec, 7);
        let addr = format!("127.0.0.1:{port}");
        wait_tcp(&addr, options.ready_timeout).await.context("prometheus did not start")?;
        let pid = self.processes.last().and_then(Supervised::pid);
        self.say(format!(
            "prometheus ready: http://{addr} (scraping {} services; config {})",
            targets.len(),
            config.display()
        ));
        self.track(
            "prometheus",
            ProcessState::process(pid, Some(format!("http://{addr}")), vec![port], bin.to_path_buf()),
        );
        Ok(())
    }
}
