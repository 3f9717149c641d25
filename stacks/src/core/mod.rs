//! The construct tree, resources, typed references and synthesis (CDK's "core").
//!
//! A [`Stack`] owns resources; constructs add them through a [`Scope`], which carries
//! the construct path. A resource's logical id is its readable path plus a short hash
//! of the full path (as CDK does), so ids are stable and unique. References between
//! resources are [`Expr`] values that render `Ref` / `Fn::GetAtt` / `Fn::Sub`; the
//! validator checks that every reference resolves.

mod ids;
mod stack;
mod synth;
mod warning;

pub use self::ids::{Handle, LogicalId, logical_id};
pub use self::stack::{DeletionPolicy, Output, Parameter, Resource, Scope, Stack};
pub use self::synth::{MAX_OUTPUTS, MAX_RESOURCES, MAX_TEMPLATE_BYTES, ValidationErrors, collect_refs};
pub use self::warning::{Warning, WarningKind};
/// Re-exported where the constructs have always found it.
pub use crate::expr::Expr;
