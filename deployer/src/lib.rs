//! The deployer: synthesizes PulseTrack's stack model to a CloudFormation cloud
//! assembly (`synth`), applies it through change sets (`deploy`, `diff`, `destroy`)
//! and reports what runs (`status`) with the typed AWS SDK clients; `up` runs the
//! same model on one machine ([`local`]).

pub mod assembly;
pub mod assets;
pub mod cli;
pub mod cloudformation;
pub mod commands;
pub mod error;
pub mod images;
pub mod kafka;
pub mod local;
pub mod publish;
pub mod status;
pub mod target;
