//! `AWS::IAM::*`: roles and their inline policies.

use serde::{Deserialize, Serialize};

use super::OneOrMany;
use crate::core::Expr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IamRole {
    pub assume_role_policy_document: PolicyDocument,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IamPolicy {
    pub policy_name: String,
    pub roles: Vec<Expr>,
    pub policy_document: PolicyDocument,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: String,
    pub statement: Vec<Statement>,
}

impl PolicyDocument {
    /// The current policy language version.
    pub fn new(statement: Vec<Statement>) -> Self {
        Self { version: "2012-10-17".into(), statement }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub effect: Effect,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    pub action: OneOrMany<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<OneOrMany<Expr>>,
}

impl Statement {
    /// Allows `actions` on `resource`.
    pub fn allow(actions: &[&str], resource: OneOrMany<Expr>) -> Self {
        Self {
            effect: Effect::Allow,
            principal: None,
            action: OneOrMany::Many(actions.iter().map(|a| a.to_string()).collect()),
            resource: Some(resource),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Principal {
    /// An AWS service (`ecs-tasks.amazonaws.com`).
    pub service: String,
}
