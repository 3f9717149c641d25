//! One function per command ([`run`] dispatches), and what several share:
//! synthesizing with the context, applying a template through a change set, finding
//! the registry the images go to.

#[cfg(feature = "aws")]
mod bootstrap;
#[cfg(feature = "aws")]
mod cloud;
#[cfg(feature = "aws")]
mod deploy;
#[cfg(feature = "aws")]
mod destroy;
#[cfg(feature = "aws")]
mod diff;
mod images;
mod local;
#[cfg(feature = "aws")]
mod status;
mod synth;

#[cfg(feature = "aws")]
pub use cloud::{Applied, Apply, assets_bucket, note_policy, outputs_after, stacks_for, template_source};

use std::{collections::BTreeMap, time::Duration};

use pulsetrack_stacks::{Context, Stack, pulsetrack_stack};

use crate::{
    assembly::{self, Assembly},
    cli::{Command, ImagesCommand, StackArgs},
    error::{Error, Result},
    target::Target,
};

/// Runs one command.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Synth { stack, out, check } => synth::run(&stack, &out, check.as_deref()).await,
        Command::Images(ImagesCommand::Build { stack, images, push, output }) => {
            images::build(&stack, &images, push, output).await
        }
        Command::Status { local: true, data_dir, .. } => local::status(&data_dir).await,
        Command::Up(args) => local::up(*args).await,
        Command::Down { data_dir, timeout } => local::down(&data_dir, Duration::from_secs(timeout)).await,
        Command::Top { data_dir, interval, count } => local::top(&data_dir, interval, count).await,
        Command::Guard { data_dir, parent } => local::guard(data_dir, parent).await,
        Command::CanRun { args } => can_run(args),
        command => run_aws(command).await,
    }
}

/// `can-run -- <args>`: refuses (exit 6) what this build cannot run; arguments that
/// do not parse pass, so that running them shows clap's own message.
fn can_run(args: Vec<String>) -> Result<()> {
    use clap::Parser as _;
    match crate::cli::Cli::try_parse_from(std::iter::once("deployer".to_string()).chain(args)) {
        Ok(cli) if cli.command.calls_aws() && !cfg!(feature = "aws") => Err(Error::WithoutAws(cli.command.name())),
        _ => Ok(()),
    }
}

/// The commands that call AWS.
#[cfg(feature = "aws")]
async fn run_aws(command: Command) -> Result<()> {
    match command {
        Command::Deploy { stack, target, timeout, outputs_file, output, require_approval, images, no_images } => {
            let apply = Apply { timeout: Duration::from_secs(timeout), output, require_approval };
            deploy::run(&stack, &target.target(), &apply, &images, no_images, outputs_file.as_deref()).await
        }
        Command::Diff { stack, target, fail, images, no_images } => {
            diff::run(&stack, &target.target(), fail, &images, no_images).await
        }
        Command::Destroy { stack, target, timeout, moto_reset } => {
            destroy::run(&stack, &target.target(), Duration::from_secs(timeout), moto_reset).await
        }
        Command::Bootstrap { target } => bootstrap::run(&target.target()).await,
        Command::Status { stack, target, output, .. } => status::run(&stack, &target.target(), output).await,
        other => Err(Error::Usage(format!("`{}` does not call AWS", other.name()))),
    }
}

/// Without the AWS clients, the commands that call AWS are refused (exit 6).
#[cfg(not(feature = "aws"))]
async fn run_aws(command: Command) -> Result<()> {
    Err(Error::WithoutAws(command.name()))
}

/// A synthesized stack: the model and its assembly files.
pub struct Synthesized {
    pub model: Stack,
    pub files: Assembly,
}

impl Synthesized {
    /// The template's text.
    pub fn template(&self) -> Result<&str> {
        self.files
            .get(&assembly::template_file(&self.model.name))
            .map(String::as_str)
            .ok_or_else(|| Error::Failed(anyhow::anyhow!("the assembly of {} has no template", self.model.name)))
    }

    /// The template as JSON.
    pub fn template_json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(self.template()?).map_err(|e| Error::Failed(anyhow::anyhow!("template: {e}")))
    }
}

/// Synthesizes the stack model with the user's context and `images` (service → pushed
/// reference). With a `target` that is moto (whose CloudFormation has no Cloud Map) it
/// turns service discovery off unless the user set it, and says so.
pub async fn synthesize(
    stack: &StackArgs,
    target: Option<&Target>,
    images: BTreeMap<String, String>,
) -> Result<Synthesized> {
    let mut pairs: Vec<(String, String)> = stack.context.clone();
    if let Some(target) = target
        && stack.context_value("service-discovery").is_none()
        && target.is_moto().await
    {
        eprintln!(
            "note: {} is moto, whose CloudFormation has no Cloud Map: deploying with service-discovery=false",
            target.describe()
        );
        pairs.push(("service-discovery".into(), "false".into()));
    }
    let ctx = Context::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let model = pulsetrack_stack(&stack.stack, &Context { images, ..ctx });
    let files = assembly::synthesize(&model)?;
    Ok(Synthesized { model, files })
}

/// Renders `value` as pretty JSON on stdout.
fn print_json(value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Io(format!("cannot render JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(args: &[&str]) -> bool {
        matches!(can_run(args.iter().map(|a| a.to_string()).collect()), Err(Error::WithoutAws(_)))
    }

    /// `scripts/deployer` asks before each command; CI runs this test both with the
    /// AWS clients and without them (`--no-default-features`).
    #[test]
    fn only_commands_that_call_aws_need_the_aws_clients() {
        let without_aws = !cfg!(feature = "aws");
        assert_eq!(refused(&["deploy", "--localstack"]), without_aws);
        assert_eq!(refused(&["diff", "--endpoint", "http://127.0.0.1:5000"]), without_aws);
        assert_eq!(refused(&["destroy"]), without_aws);
        assert_eq!(refused(&["bootstrap"]), without_aws);
        assert_eq!(refused(&["status"]), without_aws);
        assert!(!refused(&["status", "--local"]));
        assert!(!refused(&["up", "--port", "4100"]));
        assert!(!refused(&["down"]));
        assert!(!refused(&["synth", "--out", "cdk.out"]));
        assert!(!refused(&["images", "build"]));
        // Arguments that do not parse pass: running them shows clap's own message.
        assert!(!refused(&["deploy", "--no-such-flag"]));
        assert!(!refused(&[]));
    }

    #[cfg(not(feature = "aws"))]
    #[tokio::test]
    async fn without_the_aws_clients_a_command_that_calls_aws_exits_6() {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["deployer", "deploy", "--localstack"]).expect("parses");
        let error = run(cli.command).await.expect_err("refused");
        assert_eq!(error.exit_code(), 6);
        assert!(error.to_string().contains("`deploy` calls AWS"), "{error}");
    }
}
