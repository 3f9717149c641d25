//! `AWS::IAM::*`: roles and their inline policies.

use serde::{Deserialize, Serialize};

use super::values::OneOrMany;
use crate::expr::Expr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IamRole {
    pub assume_role_policy_document: PolicyDocument,
    /// AWS managed policies (`arn:aws:iam::aws:policy/...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_policy_arns: Vec<Expr>,
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
    /// `{operator: {key: value}}`, as IAM writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<serde_json::Value>,
}

impl Statement {
    /// Allows `actions` on `resource`.
    pub fn allow(actions: &[&str], resource: OneOrMany<Expr>) -> Self {
        Self {
            effect: Effect::Allow,
            principal: None,
            action: OneOrMany::Many(actions.iter().map(|a| a.to_string()).collect()),
            resource: Some(resource),
            condition: None,
        }
    }

    /// Allows `principal` `actions` on `resource` (a resource policy: key or bucket policy).
    pub fn grant(principal: Principal, actions: &[&str], resource: Expr) -> Self {
        Self { principal: Some(principal), ..Self::allow(actions, OneOrMany::One(resource)) }
    }

    pub fn when(self, condition: serde_json::Value) -> Self {
        Self { condition: Some(condition), ..self }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// Who a statement of a trust or resource policy applies to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Principal {
    /// An AWS service (`ecs-tasks.amazonaws.com`).
    Service(Expr),
    /// An account or IAM principal ARN.
    #[serde(rename = "AWS")]
    Aws(Expr),
}

impl Principal {
    pub fn service(name: &str) -> Self {
        Self::Service(Expr::lit(name))
    }

    /// This stack's account: delegates access to the account's IAM policies.
    pub fn this_account() -> Self {
        Self::Aws(Expr::Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root".into()))
    }
}
