//! The command line: the clap schema of every command and its arguments. What each
//! command does is in [`crate::commands`]; exit codes are decided by [`crate::error`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{
    error::Error,
    images,
    publish::ImageOptions,
    target::{Target, localstack_endpoint},
};

#[derive(Parser, Debug)]
#[command(version, about = "Synthesize, deploy and inspect PulseTrack's AWS stack")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct StackArgs {
    /// Stack name.
    #[arg(long, default_value = "PulseTrack")]
    pub stack: String,
    /// Context values, `key=value` (repeatable): environment, image-registry,
    /// image-tag, desired-count, msk, kafka-brokers, db-instance-class, admin-email,
    /// service-discovery, profile (default | production), certificate-arn.
    #[arg(short = 'c', long = "context", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub context: Vec<(String, String)>,
}

#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// Use LocalStack: AWS_ENDPOINT_URL, else LOCALSTACK_HOST, else
    /// http://localhost.localstack.cloud:4566, else http://127.0.0.1:4566.
    #[arg(long, conflicts_with = "endpoint")]
    pub localstack: bool,
    /// An AWS-compatible endpoint URL (credentials test/test unless set).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
}

/// Where the service images are built from.
#[derive(Args, Debug, Clone)]
pub struct ImageArgs {
    /// Folder of the service binaries (default: the deployer's own folder).
    #[arg(long, env = "PULSETRACK_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Base root filesystem tar (default: PULSETRACK_BASE_ROOTFS, else
    /// ~/.cache/pulsetrack/tools/base/bookworm-minbase-ca.tar from scripts/ensure-containers.sh).
    #[arg(long, value_name = "ROOTFS_TAR")]
    pub base: Option<PathBuf>,
    /// The OCI image layout images are written to (default ~/.cache/pulsetrack/images).
    #[arg(long, value_name = "DIR")]
    pub image_store: Option<PathBuf>,
}

impl ImageArgs {
    pub fn options(&self) -> Result<ImageOptions, Error> {
        let bin_dir = match &self.bin_dir {
            Some(dir) => dir.clone(),
            None => std::env::current_exe()
                .map_err(|e| Error::Io(format!("cannot find the deployer's own folder: {e}")))?
                .parent()
                .map(PathBuf::from)
                .unwrap_or_default(),
        };
        Ok(ImageOptions {
            bin_dir,
            base: self.base.clone().unwrap_or_else(images::default_base),
            store: self.image_store.clone().unwrap_or_else(images::default_store),
        })
    }
}

impl StackArgs {
    /// The value of `-c key=value`, when given (the last one wins).
    pub fn context_value(&self, key: &str) -> Option<&str> {
        self.context.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl TargetArgs {
    pub fn target(&self) -> Target {
        if self.localstack {
            Target::Endpoint(localstack_endpoint(|k| std::env::var(k).ok()))
        } else if let Some(url) = &self.endpoint {
            Target::Endpoint(url.clone())
        } else {
            Target::Aws
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ImagesCommand {
    /// Build the five service images from the workspace's binaries (no container
    /// engine needed), and with --push publish them, tagged by content.
    Build {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        images: ImageArgs,
        /// Push to `-c image-registry=host[:port]/path` (credentials from
        /// REGISTRY_USERNAME/REGISTRY_PASSWORD when the registry asks).
        #[arg(long)]
        push: bool,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Approval {
    /// Deploy without asking.
    Never,
    /// Ask before new security-group rules or IAM statements (fail in CI).
    Broadening,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write the cloud assembly (`<Stack>.template.json`, `manifest.json`, `tree.json`).
    Synth {
        #[command(flatten)]
        stack: StackArgs,
        /// Output folder.
        #[arg(long, default_value = "cdk.out")]
        out: PathBuf,
        /// Write nothing; exit 1 if the assembly in this folder differs (a CI drift gate).
        #[arg(long, value_name = "DIR", conflicts_with = "out")]
        check: Option<PathBuf>,
    },
    /// Synthesize, then create or update the stack through a change set.
    Deploy {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        target: TargetArgs,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
        /// Write the stack outputs to this file as JSON.
        #[arg(long, value_name = "FILE")]
        outputs_file: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        #[arg(long, value_enum, default_value_t = Approval::Broadening)]
        require_approval: Approval,
        #[command(flatten)]
        images: ImageArgs,
        /// Deploy without building or pushing images: the task definitions then name
        /// `<image-registry>/<service>:<image-tag>`, which must already exist.
        #[arg(long)]
        no_images: bool,
    },
    /// Prepare the account's and region's assets bucket (as `cdk bootstrap`): where
    /// templates over CloudFormation's inline limit go. `deploy` does it when needed.
    Bootstrap {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Build and publish the service images (see `deploy`, which does it on its own).
    #[command(subcommand)]
    Images(ImagesCommand),
    /// Show what a deploy would change, CDK-style: [+] added, [-] removed, [~] modified.
    Diff {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        target: TargetArgs,
        /// Exit 1 when there are differences.
        #[arg(long)]
        fail: bool,
        #[command(flatten)]
        images: ImageArgs,
        /// Compare without building images (task definitions name tags, as with
        /// `deploy --no-images`).
        #[arg(long)]
        no_images: bool,
    },
    /// Delete the stack, wait, and report resources left behind.
    Destroy {
        #[arg(long, default_value = "PulseTrack")]
        stack: String,
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
        /// On moto only: when its delete-stack cannot remove the stack (it does not
        /// order dependencies), wipe the emulator with POST /moto-api/reset.
        #[arg(long)]
        moto_reset: bool,
    },
    /// What is running: ECS services, load balancer, databases, Kafka, network; with
    /// --local, the processes of `deployer up`.
    Status {
        #[arg(long, default_value = "PulseTrack")]
        stack: String,
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Report the system `deployer up` runs on this machine.
        #[arg(long, conflicts_with_all = ["localstack", "endpoint"])]
        local: bool,
        #[arg(long, default_value = DEFAULT_DATA_DIR, requires = "local")]
        data_dir: PathBuf,
    },
    /// Run the stack model on this machine: each Fargate service as a process, the RDS
    /// databases on a local Postgres, MSK as a local tansu, the ALB listener as the
    /// gateway on 127.0.0.1:4004. Ctrl-C or SIGTERM stops everything.
    Up(Box<UpArgs>),
    /// `up`'s guard (started by `up`): stops what `up` started if `up` is killed.
    #[command(hide = true)]
    Guard {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        parent: u32,
    },
    /// A live view of the system `deployer up` runs, from each service's /metrics:
    /// requests/s, p50, p99, server errors/s, outbox backlog and consumer lag; redrawn
    /// in place on a terminal, plain lines otherwise.
    Top {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Seconds between two views.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Stop after this many views (default: until Ctrl-C).
        #[arg(long)]
        count: Option<u32>,
    },
    /// Stop the system `deployer up` runs (or what a killed `up` left behind).
    Down {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// `scripts/deployer`'s question before it runs a command: can this build run
    /// the command given after `--`? Exit 0 when it can (or the arguments do not
    /// parse: running them says why), 6 when it lacks the AWS clients the command needs.
    #[command(hide = true)]
    CanRun {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

impl Command {
    /// The command's name on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Synth { .. } => "synth",
            Command::Deploy { .. } => "deploy",
            Command::Bootstrap { .. } => "bootstrap",
            Command::Images(_) => "images",
            Command::Diff { .. } => "diff",
            Command::Destroy { .. } => "destroy",
            Command::Status { .. } => "status",
            Command::Up(_) => "up",
            Command::Guard { .. } => "guard",
            Command::Top { .. } => "top",
            Command::Down { .. } => "down",
            Command::CanRun { .. } => "can-run",
        }
    }

    /// Whether the command calls AWS (needs the `aws` feature's clients).
    pub fn calls_aws(&self) -> bool {
        match self {
            Command::Deploy { .. } | Command::Diff { .. } | Command::Destroy { .. } | Command::Bootstrap { .. } => true,
            Command::Status { local, .. } => !local,
            Command::Synth { .. }
            | Command::Images(_)
            | Command::Up(_)
            | Command::Guard { .. }
            | Command::Top { .. }
            | Command::Down { .. }
            | Command::CanRun { .. } => false,
        }
    }
}

pub const DEFAULT_DATA_DIR: &str = ".pulsetrack/up";

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Data folder: the private Postgres cluster, generated passwords, the state file.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub images: ImageArgs,
    /// Run the deployed task definitions as containers from their pushed images
    /// (podman or docker), instead of the binaries as processes.
    #[arg(long)]
    pub containers: bool,
    /// The container engine's client (default: podman, else docker, from PATH).
    #[arg(long, requires = "containers")]
    pub engine: Option<PathBuf>,
    /// With --containers: push to this registry (host:port/path) instead of a private
    /// one in the data folder.
    #[arg(long, requires = "containers", value_name = "HOST:PORT/PATH")]
    pub registry: Option<String>,
    /// Use this Postgres server instead of a private cluster (each service gets its own database on it).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Use these Kafka-protocol brokers instead of a private tansu.
    #[arg(long, env = "KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// With --kafka-brokers: the services log in to them as this SCRAM-SHA-512 user,
    /// with the password in KAFKA_SASL_PASSWORD (never on the command line). The
    /// private tansu gives each service a login of its own.
    #[arg(long, env = "KAFKA_SASL_USERNAME", requires = "kafka_brokers")]
    pub kafka_username: Option<String>,
    /// The tansu binary (default: TANSU_BIN, PATH, ~/.cache/pulsetrack/tools/bin/tansu).
    #[arg(long)]
    pub tansu: Option<PathBuf>,
    /// Folder of initdb and pg_ctl (default: PATH, pg_config, /usr/lib/postgresql/<newest>/bin).
    #[arg(long)]
    pub postgres_bin: Option<PathBuf>,
    /// The gateway's port (the ALB listener's, 4004).
    #[arg(long)]
    pub port: Option<u16>,
    /// Added to every service port, to run a second system beside the first.
    #[arg(long, default_value_t = 0)]
    pub port_offset: u16,
    /// Seconds each service may take to become ready.
    #[arg(long, default_value_t = 60)]
    pub ready_timeout: u64,
    /// Service log format: text for a terminal, json as in the cloud.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Services' log filter (the task definitions say info).
    #[arg(long, env = "RUST_LOG")]
    pub rust_log: Option<String>,
    /// The seeded ADMIN's password (default: generated once into the data folder).
    #[arg(long, env = "PULSETRACK_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Also run Prometheus (Debian's `prometheus` package) on 127.0.0.1:9090 (plus
    /// the port offset), scraping every service's /metrics.
    #[arg(long)]
    pub prometheus: bool,
    /// The prometheus binary (default: `prometheus` on PATH).
    #[arg(long, value_name = "PATH", requires = "prometheus")]
    pub prometheus_bin: Option<PathBuf>,
}

pub fn parse_pair(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {raw:?}")),
    }
}
