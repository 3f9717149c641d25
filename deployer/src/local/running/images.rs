//! With `--containers`: the images the containers run, built from the same binaries
//! as the processes, pushed to a registry (a private one by default) and pulled.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::Context;

use super::Running;
use crate::{
    images::registry::Registry,
    local::{
        containers,
        net::{free_port, wait_tcp},
        options::{ContainerOptions, UpOptions},
        plan,
        process::on_path,
        state::ProcessState,
        supervisor::{ProcessSpec, Supervised},
    },
    publish::{ImageOptions, explicit_registry, publish},
};

impl Running {
    /// With `--containers`: the images of the task definitions, built from the same
    /// binaries, pushed, and pulled; returns them by service, named by digest.
    pub(super) async fn publish_images(
        &mut self,
        options: &UpOptions,
        containers: &ContainerOptions,
        kafka_brokers: &str,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let engine = self.engine.clone().context("--containers without a container engine")?;
        let registry = self.start_registry(containers).await?;
        let template = plan::local_template(kafka_brokers, BTreeMap::new())?;
        let image_options = ImageOptions {
            bin_dir: options.bin_dir.clone(),
            base: containers.base.clone(),
            store: containers.store.clone(),
        };
        let published = publish(&template, &image_options, Some(&registry)).await?;
        self.say(format!(
            "images built in {:.1}s and pushed to {} in {:.1}s",
            published.build_time.as_secs_f64(),
            registry.at.host,
            published.push_time.as_secs_f64()
        ));
        let t = Instant::now();
        for pushed in published.pushed.values() {
            engine.pull(&pushed.reference, registry.at.is_loopback()).await?;
        }
        self.say(format!("images pulled by {} in {:.1}s", engine.program.display(), t.elapsed().as_secs_f64()));
        Ok(published.references())
    }

    /// The registry `up --containers` pushes to: the one given, or a private Docker
    /// Distribution registry on a free loopback port with its storage in the data folder.
    async fn start_registry(&mut self, options: &ContainerOptions) -> anyhow::Result<Registry> {
        if let Some(at) = &options.registry {
            self.say(format!("using the image registry {at}"));
            return explicit_registry(at);
        }
        let program = on_path("docker-registry").context(
            "no docker-registry on PATH for the private image registry: scripts/ensure-containers.sh installs it, \
             or pass --registry host:port/path",
        )?;
        let root = self.data_dir.join("registry");
        std::fs::create_dir_all(root.join("data"))?;
        let addr = format!("127.0.0.1:{}", free_port()?);
        let config = root.join("config.yml");
        std::fs::write(&config, containers::registry_config(&addr, &root.join("data")))?;
        let log = root.join("registry.log");
        let spec = ProcessSpec {
            // It logs every HEAD of a blob it lacks (how each push begins) as an error.
            log_file: Some(log.clone()),
            ..ProcessSpec::new("registry", program.clone(), vec!["serve".into(), config.display().to_string()], vec![])
        };
        self.supervise(spec, 5);
        wait_tcp(&addr, Duration::from_secs(10)).await.context("the image registry did not start")?;
        let pid = self.processes.last().and_then(Supervised::pid);
        self.say(format!(
            "image registry ready: {addr} (storage {}, log {})",
            root.join("data").display(),
            log.display()
        ));
        self.track("registry", ProcessState::process(pid, Some(addr.clone()), vec![], program));
        explicit_registry(&format!("{addr}/pulsetrack"))
    }
}
