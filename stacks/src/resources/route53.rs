//! `AWS::Route53::HealthCheck`.

use serde::{Deserialize, Serialize};

use crate::expr::Expr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheck {
    pub health_check_config: HealthCheckConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheckConfig {
    /// `HTTP`, `HTTPS`, `TCP`, …
    #[serde(rename = "Type")]
    pub kind: String,
    pub fully_qualified_domain_name: Expr,
    pub port: u16,
    pub resource_path: String,
    pub request_interval: u32,
    pub failure_threshold: u32,
}
