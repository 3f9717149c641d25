//! `AWS::Logs::LogGroup`.

use serde::{Deserialize, Serialize};

use crate::expr::Expr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogGroup {
    pub log_group_name: String,
    pub retention_in_days: u32,
    /// A customer-managed key's ARN (the production profile); AWS-owned otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<Expr>,
}
