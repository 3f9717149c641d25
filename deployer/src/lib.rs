//! The deployer: synthesizes PulseTrack's stack model to a CloudFormation cloud
//! assembly (`synth`), applies it through change sets (`deploy`, `diff`, `destroy`)
//! and reports what runs (`status`) with the typed AWS SDK clients.

pub mod assembly;
pub mod cloudformation;
pub mod status;
pub mod target;
