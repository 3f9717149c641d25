//! `deployer`: PulseTrack's infrastructure tool.

use std::{path::PathBuf, process::ExitCode, time::Instant};

use clap::{Parser, Subcommand};
use deployer::assembly;
use pulsetrack_stacks::{Context, pulsetrack_stack};

#[derive(Parser, Debug)]
#[command(version, about = "Synthesize PulseTrack's AWS stack to CloudFormation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the cloud assembly (`<Stack>.template.json`, `manifest.json`, `tree.json`).
    Synth {
        /// Output folder.
        #[arg(long, default_value = "cdk.out")]
        out: PathBuf,
        /// Stack name.
        #[arg(long, default_value = "PulseTrack")]
        stack: String,
        /// Context values, `key=value` (repeatable): environment, image-registry,
        /// image-tag, desired-count, msk, kafka-brokers, db-instance-class, admin-email.
        #[arg(short = 'c', long = "context", value_name = "KEY=VALUE", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        /// Write nothing; exit 1 if the assembly in this folder differs (a CI drift gate).
        #[arg(long, value_name = "DIR", conflicts_with = "out")]
        check: Option<PathBuf>,
    },
}

fn parse_pair(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {raw:?}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Synth { out, stack, context, check } => {
            let started = Instant::now();
            let ctx = match Context::from_pairs(context.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
                Ok(ctx) => ctx,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let model = pulsetrack_stack(&stack, &ctx);
            let files = match assembly::synthesize(&model) {
                Ok(files) => files,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(3);
                }
            };
            if let Some(dir) = check {
                let drifted = assembly::drift(&dir, &files);
                if drifted.is_empty() {
                    eprintln!("{}: up to date ({} resources)", dir.display(), model.resources.len());
                    return ExitCode::SUCCESS;
                }
                for path in drifted {
                    eprintln!("drift: {}", path.display());
                }
                eprintln!("run `deployer synth --out {}` and commit the result", dir.display());
                return ExitCode::from(1);
            }
            if let Err(e) = assembly::write(&out, &files) {
                eprintln!("error: {e:#}");
                return ExitCode::from(4);
            }
            eprintln!(
                "synthesized {stack}: {} resources, {} outputs -> {} in {:.1} ms",
                model.resources.len(),
                model.outputs.len(),
                out.join(assembly::template_file(&stack)).display(),
                started.elapsed().as_secs_f64() * 1000.0
            );
            ExitCode::SUCCESS
        }
    }
}
