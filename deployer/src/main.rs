//! `deployer`: PulseTrack's infrastructure tool. The command line is in
//! [`deployer::cli`], each command in [`deployer::commands`], exit codes in
//! [`deployer::error`].

use std::process::ExitCode;

use clap::Parser;
use deployer::{cli::Cli, commands};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
