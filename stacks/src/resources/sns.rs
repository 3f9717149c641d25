//! `AWS::SNS::Topic`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Topic {
    pub display_name: String,
    /// Messages encrypted at rest (`alias/aws/sns`, or a customer-managed key).
    pub kms_master_key_id: String,
}
