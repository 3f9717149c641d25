//! PulseTrack's AWS infrastructure as typed Rust values, synthesized to CloudFormation.
//!
//! Layers as in AWS CDK: [`resources`] is the L1 level (each CloudFormation resource
//! type the stack uses, as a struct of its typed properties with its attributes);
//! [`expr`] is a template value (a literal or an intrinsic), held by resources and constructs alike;
//! [`core`] holds the construct tree, typed references and synthesis; [`ec2`],
//! [`ecr`], [`ecs`], [`elb`], [`kms`], [`s3`], [`rds`] and [`msk`] are L2 constructs
//! with safe defaults that build their own parts; [`pulsetrack`] is the L3 pattern for
//! the whole system (with [`production`], what its production profile adds), whose
//! task definitions are rendered from the services' typed [`settings`].

pub mod audit_anchors;
pub mod core;
pub mod dockerfile;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod elb;
pub mod expr;
pub mod kms;
pub mod monitoring;
pub mod msk;
pub mod production;
pub mod pulsetrack;
pub mod rds;
pub mod resources;
pub mod s3;

pub use crate::core::{DeletionPolicy, Expr, LogicalId, Scope, Stack, ValidationErrors, Warning, WarningKind};
pub use crate::pulsetrack::{Context, Profile, image_repositories_stack, pulsetrack_stack};
/// The services' settings, which the task definitions are rendered from.
pub use pulsetrack_settings as settings;
