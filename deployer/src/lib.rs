//! The deployer: synthesizes PulseTrack's stack model to a CloudFormation cloud
//! assembly (`synth`), applies it through change sets (`deploy`, `diff`, `destroy`)
//! and reports what runs (`status`) with the typed AWS SDK clients; `up` runs the
//! same model on one machine ([`local`]). The AWS clients are the `aws` feature (on by
//! default): without it the deployer synthesizes, builds images and runs `up`, and
//! refuses the commands that call AWS ([`error::Error::WithoutAws`]).

pub mod assembly;
#[cfg(feature = "aws")]
pub mod assets;
pub mod cli;
#[cfg(feature = "aws")]
pub mod cloudformation;
pub mod commands;
pub mod error;
pub mod images;
pub mod internal_tls;
#[cfg(feature = "aws")]
pub mod kafka;
pub mod local;
pub mod publish;
#[cfg(feature = "aws")]
pub mod status;
pub mod target;
