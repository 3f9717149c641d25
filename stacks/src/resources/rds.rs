//! `AWS::RDS::*`: a PostgreSQL instance and its subnet group.

use serde::{Deserialize, Serialize};

use crate::expr::Expr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DbInstance {
    pub engine: String,
    pub engine_version: String,
    #[serde(rename = "DBInstanceClass")]
    pub db_instance_class: String,
    /// GiB, as CloudFormation's string.
    pub allocated_storage: String,
    pub storage_type: String,
    pub storage_encrypted: bool,
    #[serde(rename = "DBName")]
    pub db_name: String,
    pub master_username: Expr,
    pub master_user_password: Expr,
    #[serde(rename = "DBSubnetGroupName")]
    pub db_subnet_group_name: Expr,
    #[serde(rename = "VPCSecurityGroups")]
    pub vpc_security_groups: Vec<Expr>,
    pub publicly_accessible: bool,
    #[serde(rename = "MultiAZ")]
    pub multi_az: bool,
    pub backup_retention_period: u32,
    pub copy_tags_to_snapshot: bool,
    pub deletion_protection: bool,
    pub auto_minor_version_upgrade: bool,
    /// What the production profile adds (empty, and not rendered, by default).
    #[serde(flatten)]
    pub hardening: Box<DbHardening>,
}

/// The production profile's additions to an instance: a customer-managed storage key,
/// enhanced monitoring and IAM authentication.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DbHardening {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<Expr>,
    /// Seconds between enhanced-monitoring samples (0 = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring_interval: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring_role_arn: Option<Expr>,
    #[serde(rename = "EnableIAMDatabaseAuthentication", default, skip_serializing_if = "Option::is_none")]
    pub enable_iam_database_authentication: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DbSubnetGroup {
    #[serde(rename = "DBSubnetGroupDescription")]
    pub db_subnet_group_description: String,
    pub subnet_ids: Vec<Expr>,
}
