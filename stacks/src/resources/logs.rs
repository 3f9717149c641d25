//! `AWS::Logs::LogGroup`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogGroup {
    pub log_group_name: String,
    pub retention_in_days: u32,
}
