//! `AWS::SecretsManager::*`: secrets and their attachment to a database.

use serde::{Deserialize, Serialize};

use crate::expr::Expr;

/// A secret: generated, or with a given value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Secret {
    /// The secret's name; CloudFormation makes one up when unset. Some services require
    /// a prefix (MSK's SCRAM logins: `AmazonMSK_`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Expr>,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_secret_string: Option<GenerateSecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<String>,
    /// A customer-managed key's ARN (the production profile); `aws/secretsmanager` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateSecretString {
    /// A JSON object the generated value is added to, under `generate_string_key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_string_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_string_key: Option<String>,
    pub password_length: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_characters: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_punctuation: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretTargetAttachment {
    pub secret_id: Expr,
    pub target_id: Expr,
    /// The target's resource type (`AWS::RDS::DBInstance`).
    pub target_type: String,
}
