//! PulseTrack's AWS infrastructure as typed Rust values, synthesized to CloudFormation.
//!
//! Layers as in AWS CDK: [`core`] holds resources, typed references and synthesis
//! (the L1 level: any resource type with its CloudFormation properties); [`ec2`],
//! [`ecr`], [`ecs`], [`elb`], [`rds`] and [`msk`] are L2 constructs with safe defaults that
//! build their own parts; [`pulsetrack`] is the L3 pattern for the whole system.

pub mod core;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod elb;
pub mod msk;
pub mod pulsetrack;
pub mod rds;

pub use crate::core::{Expr, LogicalId, Scope, Stack, ValidationErrors};
pub use crate::pulsetrack::{Context, image_repositories_stack, pulsetrack_stack};
