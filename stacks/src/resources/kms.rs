//! `AWS::KMS::Key`: customer-managed keys (the production profile's encryption at rest).

use serde::{Deserialize, Serialize};

use super::iam::PolicyDocument;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KmsKey {
    pub description: String,
    pub enable_key_rotation: bool,
    pub key_policy: PolicyDocument,
    /// Days a scheduled deletion waits (7–30).
    pub pending_window_in_days: u32,
}
