//! The deployer: synthesizes PulseTrack's stack model to a CloudFormation cloud
//! assembly (`deployer synth`).

pub mod assembly;
