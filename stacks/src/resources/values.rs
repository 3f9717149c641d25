//! Property values several resource types share (tags, key/value settings, IAM's
//! one-or-many lists), on their own so that the types' modules need not import the
//! module that lists the types.

use serde::{Deserialize, Serialize};

use crate::expr::Expr;

/// A property that CloudFormation takes as one value or a list (IAM's `Action`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    /// `[{Key: Name, Value: value}]`: the name the console shows.
    pub fn name(value: &str) -> Vec<Tag> {
        vec![Tag { key: "Name".into(), value: value.into() }]
    }
}

/// A `Key`/`Value` setting (load balancer and target group attributes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyValue {
    pub key: String,
    pub value: Expr,
}

impl KeyValue {
    pub fn new(key: &str, value: impl Into<Expr>) -> Self {
        Self { key: key.into(), value: value.into() }
    }
}
