//! `deployer`: PulseTrack's infrastructure tool.

use std::{
    collections::BTreeMap,
    io::{BufRead, IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::{Args, Parser, Subcommand, ValueEnum};
use deployer::{
    assembly,
    cloudformation::{Progress, Stacks},
    images::{
        self,
        registry::{Registry, RegistryRef},
    },
    local,
    publish::{self, ImageOptions},
    status,
    target::{Target, localstack_endpoint},
};
use pulsetrack_stacks::{
    Context, image_repositories_stack,
    pulsetrack::{SERVICES, repository_output},
    pulsetrack_stack,
};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(version, about = "Synthesize, deploy and inspect PulseTrack's AWS stack")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct StackArgs {
    /// Stack name.
    #[arg(long, default_value = "PulseTrack")]
    stack: String,
    /// Context values, `key=value` (repeatable): environment, image-registry,
    /// image-tag, desired-count, msk, kafka-brokers, db-instance-class, admin-email,
    /// service-discovery.
    #[arg(short = 'c', long = "context", value_name = "KEY=VALUE", value_parser = parse_pair)]
    context: Vec<(String, String)>,
}

#[derive(Args, Debug, Clone)]
struct TargetArgs {
    /// Use LocalStack: AWS_ENDPOINT_URL, else LOCALSTACK_HOST, else
    /// http://localhost.localstack.cloud:4566, else http://127.0.0.1:4566.
    #[arg(long, conflicts_with = "endpoint")]
    localstack: bool,
    /// An AWS-compatible endpoint URL (credentials test/test unless set).
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
}

/// Where the service images are built from.
#[derive(Args, Debug, Clone)]
struct ImageArgs {
    /// Folder of the service binaries (default: the deployer's own folder).
    #[arg(long, env = "PULSETRACK_BIN_DIR")]
    bin_dir: Option<PathBuf>,
    /// Base root filesystem tar (default: PULSETRACK_BASE_ROOTFS, else
    /// ~/.cache/pulsetrack/tools/base/bookworm-minbase.tar from scripts/ensure-containers.sh).
    #[arg(long, value_name = "ROOTFS_TAR")]
    base: Option<PathBuf>,
    /// The OCI image layout images are written to (default ~/.cache/pulsetrack/images).
    #[arg(long, value_name = "DIR")]
    image_store: Option<PathBuf>,
}

impl ImageArgs {
    fn options(&self) -> Result<ImageOptions, Failure> {
        let bin_dir = match &self.bin_dir {
            Some(dir) => dir.clone(),
            None => std::env::current_exe()?.parent().map(PathBuf::from).unwrap_or_default(),
        };
        Ok(ImageOptions {
            bin_dir,
            base: self.base.clone().unwrap_or_else(images::default_base),
            store: self.image_store.clone().unwrap_or_else(images::default_store),
        })
    }
}

#[derive(Subcommand, Debug)]
enum ImagesCommand {
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
enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Approval {
    /// Deploy without asking.
    Never,
    /// Ask before new security-group rules or IAM statements (fail in CI).
    Broadening,
}

#[derive(Subcommand, Debug)]
enum Command {
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
    /// Stop the system `deployer up` runs (or what a killed `up` left behind).
    Down {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

const DEFAULT_DATA_DIR: &str = ".pulsetrack/up";

#[derive(Args, Debug)]
struct UpArgs {
    /// Data folder: the private Postgres cluster, generated passwords, the state file.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    #[command(flatten)]
    images: ImageArgs,
    /// Run the deployed task definitions as containers from their pushed images
    /// (podman or docker), instead of the binaries as processes.
    #[arg(long)]
    containers: bool,
    /// The container engine's client (default: podman, else docker, from PATH).
    #[arg(long, requires = "containers")]
    engine: Option<PathBuf>,
    /// With --containers: push to this registry (host:port/path) instead of a private
    /// one in the data folder.
    #[arg(long, requires = "containers", value_name = "HOST:PORT/PATH")]
    registry: Option<String>,
    /// Use this Postgres server instead of a private cluster (each service gets its own database on it).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Use these Kafka-protocol brokers instead of a private tansu.
    #[arg(long, env = "KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
    /// The tansu binary (default: TANSU_BIN, PATH, ~/.cache/pulsetrack/tools/bin/tansu).
    #[arg(long)]
    tansu: Option<PathBuf>,
    /// Folder of initdb and pg_ctl (default: PATH, pg_config, /usr/lib/postgresql/<newest>/bin).
    #[arg(long)]
    postgres_bin: Option<PathBuf>,
    /// The gateway's port (the ALB listener's, 4004).
    #[arg(long)]
    port: Option<u16>,
    /// Added to every service port, to run a second system beside the first.
    #[arg(long, default_value_t = 0)]
    port_offset: u16,
    /// Seconds each service may take to become ready.
    #[arg(long, default_value_t = 60)]
    ready_timeout: u64,
    /// Service log format: text for a terminal, json as in the cloud.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    log_format: String,
    /// Services' log filter (the task definitions say info).
    #[arg(long, env = "RUST_LOG")]
    rust_log: Option<String>,
    /// The seeded ADMIN's password (default: generated once into the data folder).
    #[arg(long, env = "PULSETRACK_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
}

fn parse_pair(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {raw:?}")),
    }
}

/// Exit codes: 0 ok, 1 failure or drift/differences, 2 bad arguments or context,
/// 3 invalid stack, 4 I/O or AWS error, 5 approval refused.
#[derive(Debug)]
struct Failure(u8, String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(4, e.to_string())
    }
}

fn target_of(args: &TargetArgs) -> Target {
    if args.localstack {
        Target::Endpoint(localstack_endpoint(|k| std::env::var(k).ok()))
    } else if let Some(url) = &args.endpoint {
        Target::Endpoint(url.clone())
    } else {
        Target::Aws
    }
}

/// Synthesizes the stack model and its assembly. With a `target` that is moto (whose
/// CloudFormation has no Cloud Map) it turns service discovery off unless the user
/// set it, and says so.
async fn synthesize(
    stack: &StackArgs,
    target: Option<&Target>,
    images: BTreeMap<String, String>,
) -> Result<(pulsetrack_stacks::Stack, assembly::Assembly), Failure> {
    let mut pairs: Vec<(String, String)> = stack.context.clone();
    if let Some(target) = target
        && !pairs.iter().any(|(k, _)| k == "service-discovery")
        && target.is_moto().await
    {
        eprintln!(
            "note: {} is moto, whose CloudFormation has no Cloud Map: deploying with service-discovery=false",
            target.describe()
        );
        pairs.push(("service-discovery".into(), "false".into()));
    }
    let ctx = Context::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| Failure(2, e.to_string()))?;
    let ctx = Context { images, ..ctx };
    let model = pulsetrack_stack(&stack.stack, &ctx);
    let files = assembly::synthesize(&model).map_err(|e| Failure(3, e.to_string()))?;
    Ok((model, files))
}

fn template_of(stack: &StackArgs, files: &assembly::Assembly) -> String {
    files.get(&assembly::template_file(&stack.stack)).cloned().unwrap_or_default()
}

async fn stacks_for(name: &str, target: &Target) -> Stacks {
    let config = target.sdk_config().await;
    Stacks::new(aws_sdk_cloudformation::Client::new(&config), name)
}

fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() || std::env::var_os("CI").is_some() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

/// The value of `-c key=value`, when given.
fn context_value<'a>(stack: &'a StackArgs, key: &str) -> Option<&'a str> {
    stack.context.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// How a template is applied: through a change set, asking before broadening changes.
struct Apply {
    timeout: Duration,
    output: Output,
    require_approval: Approval,
}

/// What applying a template did: `status` is `None` when nothing changed.
struct Applied {
    status: Option<String>,
    changes: Vec<deployer::cloudformation::ResourceChange>,
}

impl Apply {
    async fn run(&self, stacks: &Stacks, template: &str) -> Result<Applied, Failure> {
        // Read before the change set exists: it is what the change is measured against.
        let old = stacks.deployed_template().await;
        let Some(prepared) = stacks.prepare(template).await.map_err(|e| Failure(1, format!("{e:#}")))? else {
            return Ok(Applied { status: None, changes: Vec::new() });
        };
        for change in &prepared.changes {
            if self.output == Output::Text {
                eprintln!("  {}", change.line());
            }
        }
        let new: serde_json::Value = serde_json::from_str(template).unwrap_or_default();
        let broadening: Vec<_> = prepared.changes.iter().filter(|c| c.broadening(&old, &new)).collect();
        if self.require_approval == Approval::Broadening
            && !broadening.is_empty()
            && !confirm(&format!("{} security-relevant change(s) widen access. Deploy?", broadening.len()))
        {
            stacks.discard(&prepared.change_set).await;
            let list: Vec<String> = broadening.iter().map(|c| format!("  {}", c.line())).collect();
            return Err(Failure(
                5,
                format!(
                    "{} broadening change(s) need approval: confirm on a terminal, or pass --require-approval never\n{}",
                    broadening.len(),
                    list.join("\n")
                ),
            ));
        }
        stacks.execute(&prepared.change_set).await.map_err(|e| Failure(1, format!("{e:#}")))?;
        let mut progress = Progress::new(self.output == Output::Json);
        let (status, failures) =
            stacks.wait(self.timeout, &mut progress).await.map_err(|e| Failure(1, format!("{e:#}")))?;
        if !matches!(status.as_str(), "CREATE_COMPLETE" | "UPDATE_COMPLETE") {
            let reasons =
                if failures.is_empty() { "no resource reported a reason".into() } else { failures.join("\n  ") };
            return Err(Failure(1, format!("deploy of {} ended {status}:\n  {reasons}", stacks.name)));
        }
        Ok(Applied { status: Some(status), changes: prepared.changes })
    }
}

/// The stack's outputs after `applied`. moto computes outputs only on UpdateStack, so
/// when a stack that declares outputs reports none, they are refreshed (and it is said).
async fn outputs_after(
    stacks: &Stacks,
    applied: &Applied,
    template: &str,
    declares_outputs: bool,
    target: &Target,
) -> Result<Vec<(String, String)>, Failure> {
    let outputs = stacks.outputs().await?;
    if applied.status.is_none() || !outputs.is_empty() || !declares_outputs {
        return Ok(outputs);
    }
    eprintln!(
        "note: {} reported no outputs of {} after the change set (moto computes them only on UpdateStack); refreshing them",
        target.describe(),
        stacks.name
    );
    stacks.refresh_outputs(template).await.map_err(|e| Failure(1, format!("{e:#}")))?;
    Ok(stacks.outputs().await?)
}

/// Where `deploy` pushes the images: `-c image-registry`, else the ECR repositories of
/// the images stack (`<Stack>Images`), which is deployed first.
async fn deploy_registry(stack: &StackArgs, target: &Target, apply: &Apply) -> Result<Registry, Failure> {
    if let Some(at) = context_value(stack, "image-registry") {
        return publish::explicit_registry(at).map_err(|e| Failure(2, format!("{e:#}")));
    }
    let repositories = image_repositories_stack(&stack.stack);
    let files = assembly::synthesize(&repositories).map_err(|e| Failure(3, e.to_string()))?;
    let template = files.get(&assembly::template_file(&repositories.name)).cloned().unwrap_or_default();
    let stacks = stacks_for(&repositories.name, target).await;
    eprintln!("image repositories: stack {} on {}", repositories.name, target.describe());
    let applied = apply.run(&stacks, &template).await?;
    let outputs = outputs_after(&stacks, &applied, &template, true, target).await?;
    let uris: Vec<String> = SERVICES
        .iter()
        .filter_map(|def| outputs.iter().find(|(k, _)| *k == repository_output(def)).map(|(_, v)| v.clone()))
        .collect();
    if uris.len() != SERVICES.len() {
        return Err(Failure(
            1,
            format!("stack {} reports {} of {} repository URIs", repositories.name, uris.len(), SERVICES.len()),
        ));
    }
    let config = target.sdk_config().await;
    let registry = publish::ecr_registry(&config, &uris).await.map_err(|e| Failure(1, format!("{e:#}")))?;
    if target.is_moto().await {
        return Err(Failure(
            1,
            format!(
                "{} is moto, which has ECR's API but no image registry to push to ({}): \
                 pass -c image-registry=host:port/path (a local registry), or --no-images",
                target.describe(),
                registry.at.host
            ),
        ));
    }
    Ok(registry)
}

/// The image references a deploy would write, without pushing: the images are built
/// (deterministic, so the digests are the ones `deploy` pushes) and named in the
/// registry `deploy` would use. Before the images stack exists there is no ECR
/// registry yet: the task definitions then keep their tags, and `diff` says so.
async fn diff_references(
    stack: &StackArgs,
    target: &Target,
    images: &ImageArgs,
) -> Result<BTreeMap<String, String>, Failure> {
    let at = match context_value(stack, "image-registry") {
        Some(at) => RegistryRef::parse(at).map_err(|e| Failure(2, format!("{e:#}")))?,
        None => {
            let repositories = image_repositories_stack(&stack.stack);
            let stacks = stacks_for(&repositories.name, target).await;
            if stacks.status().await?.is_none() {
                eprintln!("note: stack {} does not exist yet: images are compared by tag", repositories.name);
                return Ok(BTreeMap::new());
            }
            let outputs = stacks.outputs().await?;
            let uri = outputs
                .iter()
                .find(|(k, _)| *k == repository_output(&SERVICES[0]))
                .and_then(|(_, uri)| uri.rsplit_once('/').map(|(prefix, _)| prefix.to_string()))
                .ok_or_else(|| Failure(1, format!("stack {} has no repository outputs", repositories.name)))?;
            RegistryRef::parse(&uri).map_err(|e| Failure(1, format!("{e:#}")))?
        }
    };
    let (_, files) = synthesize(stack, Some(target), BTreeMap::new()).await?;
    let template: serde_json::Value = serde_json::from_str(&template_of(stack, &files))?;
    let built =
        publish::publish(&template, &images.options()?, None).await.map_err(|e| Failure(1, format!("{e:#}")))?;
    Ok(built
        .images
        .iter()
        .map(|(service, image)| (service.clone(), at.by_digest(service, &image.manifest.digest)))
        .collect())
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Synth { stack, out, check } => {
            let started = Instant::now();
            let (model, files) = synthesize(&stack, None, BTreeMap::new()).await?;
            if let Some(dir) = check {
                let drifted = assembly::drift(&dir, &files);
                if drifted.is_empty() {
                    eprintln!("{}: up to date ({} resources)", dir.display(), model.resources.len());
                    return Ok(());
                }
                let list: Vec<String> = drifted.iter().map(|p| format!("drift: {}", p.display())).collect();
                return Err(Failure(
                    1,
                    format!("{}\nrun `deployer synth --out {}` and commit the result", list.join("\n"), dir.display()),
                ));
            }
            assembly::write(&out, &files).map_err(|e| Failure(4, format!("{e:#}")))?;
            eprintln!(
                "synthesized {}: {} resources, {} outputs -> {} in {:.1} ms",
                stack.stack,
                model.resources.len(),
                model.outputs.len(),
                out.join(assembly::template_file(&stack.stack)).display(),
                started.elapsed().as_secs_f64() * 1000.0
            );
            Ok(())
        }
        Command::Deploy { stack, target, timeout, outputs_file, output, require_approval, images, no_images } => {
            let started = Instant::now();
            let target = target_of(&target);
            let apply = Apply { timeout: Duration::from_secs(timeout), output, require_approval };
            let references = if no_images {
                eprintln!(
                    "warning: --no-images: no image is built or pushed; the task definitions name {}/<service>:<tag>",
                    context_value(&stack, "image-registry").unwrap_or("pulsetrack")
                );
                BTreeMap::new()
            } else {
                let registry = deploy_registry(&stack, &target, &apply).await?;
                let (_, files) = synthesize(&stack, Some(&target), BTreeMap::new()).await?;
                let template: serde_json::Value = serde_json::from_str(&template_of(&stack, &files))?;
                let published = publish::publish(&template, &images.options()?, Some(&registry))
                    .await
                    .map_err(|e| Failure(1, format!("{e:#}")))?;
                if output == Output::Text {
                    eprint!("{}", published.render());
                }
                published.references()
            };
            let (model, files) = synthesize(&stack, Some(&target), references).await?;
            let template = template_of(&stack, &files);
            let stacks = stacks_for(&stack.stack, &target).await;
            eprintln!("deploying {} ({} resources) to {}", stack.stack, model.resources.len(), target.describe());
            let applied = apply.run(&stacks, &template).await?;
            let outputs = outputs_after(&stacks, &applied, &template, !model.outputs.is_empty(), &target).await?;
            let status = applied.status.as_deref().unwrap_or("NO_CHANGES");
            finish(&stack.stack, status, &outputs, &applied.changes, started, output, outputs_file.as_ref())
        }
        Command::Images(ImagesCommand::Build { stack, images, push, output }) => {
            let (_, files) = synthesize(&stack, None, BTreeMap::new()).await?;
            let template: serde_json::Value = serde_json::from_str(&template_of(&stack, &files))?;
            let registry = match (push, context_value(&stack, "image-registry")) {
                (false, _) => None,
                (true, Some(at)) => Some(publish::explicit_registry(at).map_err(|e| Failure(2, format!("{e:#}")))?),
                (true, None) => {
                    return Err(Failure(2, "--push needs -c image-registry=host[:port]/path".into()));
                }
            };
            let published = publish::publish(&template, &images.options()?, registry.as_ref())
                .await
                .map_err(|e| Failure(1, format!("{e:#}")))?;
            match output {
                Output::Text => print!("{}", published.render()),
                Output::Json => {
                    let images: serde_json::Map<String, serde_json::Value> = published
                        .images
                        .iter()
                        .map(|(service, image)| {
                            (
                                service.clone(),
                                json!({ "digest": image.manifest.digest, "size": image.size(),
                                "reference": published.pushed.get(service).map(|p| p.reference.clone()) }),
                            )
                        })
                        .collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&json!({ "images": images,
                            "buildMs": published.build_time.as_millis() as u64, "pushMs": published.push_time.as_millis() as u64 }))?
                    );
                }
            }
            Ok(())
        }
        Command::Diff { stack, target, fail, images, no_images } => {
            let target = target_of(&target);
            let references =
                if no_images { BTreeMap::new() } else { diff_references(&stack, &target, &images).await? };
            let (_, files) = synthesize(&stack, Some(&target), references).await?;
            let template = template_of(&stack, &files);
            let stacks = stacks_for(&stack.stack, &target).await;
            let prepared = stacks.prepare(&template).await.map_err(|e| Failure(1, format!("{e:#}")))?;
            let Some(prepared) = prepared else {
                println!("There were no differences");
                return Ok(());
            };
            stacks.discard(&prepared.change_set).await;
            for change in &prepared.changes {
                println!("{}", change.line());
            }
            let security = prepared.changes.iter().filter(|c| c.security_relevant()).count();
            println!("\n{} change(s), {security} security-relevant", prepared.changes.len());
            if fail { Err(Failure(1, "differences found".into())) } else { Ok(()) }
        }
        Command::Destroy { stack, target, timeout, moto_reset } => {
            let target = target_of(&target);
            let stacks = stacks_for(&stack, &target).await;
            let moto = target.is_moto().await;
            if moto_reset && !moto {
                return Err(Failure(2, format!("--moto-reset: {} is not moto", target.describe())));
            }
            if stacks.status().await?.is_none() {
                println!("stack {stack} does not exist on {}", target.describe());
                if moto_reset {
                    target.moto_reset().await.map_err(|e| Failure(1, format!("{e:#}")))?;
                    println!("reset the moto emulator (POST /moto-api/reset)");
                }
                return Ok(());
            }
            let before = stacks.resources().await.unwrap_or_default();
            match stacks.delete().await {
                // moto may fail part-way (it does not order dependencies) yet drop the stack.
                Err(e) if !moto || stacks.status().await?.is_some() => return Err(Failure(1, format!("{e:#}"))),
                Err(e) => eprintln!("note: moto's delete-stack failed part-way: {e:#}"),
                Ok(()) => {
                    let mut progress = Progress::new(false);
                    let (status, failures) = stacks.wait(Duration::from_secs(timeout), &mut progress).await?;
                    if status != "DELETE_COMPLETE" {
                        return Err(Failure(1, format!("destroy ended {status}:\n  {}", failures.join("\n  "))));
                    }
                }
            }
            let config = target.sdk_config().await;
            let left = status::left_behind(&config, &before).await;
            println!("destroyed {stack}");
            if !left.is_empty() {
                println!("{} of its resources are still on {}:", left.len(), target.describe());
                for item in &left {
                    println!("  {item}");
                }
            }
            if moto_reset {
                target.moto_reset().await.map_err(|e| Failure(1, format!("{e:#}")))?;
                println!("reset the moto emulator (POST /moto-api/reset)");
            } else if moto && !left.is_empty() {
                println!("moto keeps resources after delete-stack; `deployer destroy --moto-reset` wipes the emulator");
            }
            Ok(())
        }
        Command::Up(args) => {
            let args = *args;
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
                kafka_brokers: args.kafka_brokers,
                tansu: args.tansu,
                postgres_bin: args.postgres_bin,
                gateway_port: args.port,
                port_offset: args.port_offset,
                ready_timeout: Duration::from_secs(args.ready_timeout),
                log_format: args.log_format,
                rust_log: args.rust_log,
                admin_password: args.admin_password,
            };
            local::up(options).await.map_err(|e| Failure(1, format!("{e:#}")))
        }
        Command::Down { data_dir, timeout } => {
            let report =
                local::down(&data_dir, Duration::from_secs(timeout)).await.map_err(|e| Failure(1, format!("{e:#}")))?;
            println!("{report}");
            Ok(())
        }
        Command::Status { local: true, data_dir, .. } => {
            let report = local::status(&data_dir).await.map_err(|e| Failure(1, format!("{e:#}")))?;
            print!("{report}");
            Ok(())
        }
        Command::Status { stack, target, output, .. } => {
            let target = target_of(&target);
            let stacks = stacks_for(&stack, &target).await;
            let Some(stack_status) = stacks.status().await? else {
                return Err(Failure(1, format!("stack {stack} does not exist on {}", target.describe())));
            };
            let resources = stacks.resources().await?;
            let config = target.sdk_config().await;
            let sections = status::report(&config, &resources).await;
            let outputs = stacks.outputs().await.unwrap_or_default();
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "stack": stack, "status": stack_status,
                        "outputs": outputs.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                        "sections": sections }))?
                ),
                Output::Text => {
                    println!("STACK {stack}  {stack_status}");
                    for (k, v) in &outputs {
                        println!("  {k} = {v}");
                    }
                    print!("{}", status::render(&sections));
                }
            }
            Ok(())
        }
    }
}

fn finish(
    stack: &str,
    status: &str,
    outputs: &[(String, String)],
    changes: &[deployer::cloudformation::ResourceChange],
    started: Instant,
    output: Output,
    outputs_file: Option<&PathBuf>,
) -> Result<(), Failure> {
    let outputs_json: serde_json::Map<String, serde_json::Value> =
        outputs.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    if let Some(path) = outputs_file {
        std::fs::write(path, serde_json::to_string_pretty(&outputs_json)? + "\n")
            .map_err(|e| Failure(4, format!("cannot write {}: {e}", path.display())))?;
    }
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "stack": stack, "status": status, "changes": changes,
                "outputs": outputs_json, "elapsedMs": started.elapsed().as_millis() as u64 }))?
        ),
        Output::Text => {
            if status == "NO_CHANGES" {
                println!("{stack}: no changes");
            } else {
                println!("{stack}: {status} in {:.1}s", started.elapsed().as_secs_f64());
            }
            for (k, v) in outputs {
                println!("  {k} = {v}");
            }
            if let Some((_, url)) = outputs.iter().find(|(k, _)| k == "GatewayUrl") {
                println!("\nPulseTrack: {url}");
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}
