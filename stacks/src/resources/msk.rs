//! `AWS::MSK::Cluster`.

use serde::{Deserialize, Serialize};

use crate::expr::Expr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MskCluster {
    pub cluster_name: String,
    pub kafka_version: String,
    pub number_of_broker_nodes: u32,
    pub broker_node_group_info: BrokerNodeGroupInfo,
    pub encryption_info: EncryptionInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_authentication: Option<ClientAuthentication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging_info: Option<LoggingInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BrokerNodeGroupInfo {
    pub instance_type: String,
    pub client_subnets: Vec<Expr>,
    pub security_groups: Vec<Expr>,
    pub storage_info: StorageInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StorageInfo {
    #[serde(rename = "EBSStorageInfo")]
    pub ebs_storage_info: EbsStorageInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EbsStorageInfo {
    /// GiB per broker.
    pub volume_size: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionInfo {
    pub encryption_in_transit: EncryptionInTransit,
    /// A customer-managed key (the production profile); an AWS-managed key otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_at_rest: Option<EncryptionAtRest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionAtRest {
    #[serde(rename = "DataVolumeKMSKeyId")]
    pub data_volume_kms_key_id: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingInfo {
    pub broker_logs: BrokerLogs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BrokerLogs {
    pub cloud_watch_logs: CloudWatchLogs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CloudWatchLogs {
    pub enabled: bool,
    pub log_group: Expr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionInTransit {
    /// `TLS`, `TLS_PLAINTEXT` or `PLAINTEXT`.
    pub client_broker: String,
    pub in_cluster: bool,
}

/// How clients prove who they are. Only what the stack uses: SASL/SCRAM on, and
/// unauthenticated access explicitly off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClientAuthentication {
    pub sasl: Sasl,
    pub unauthenticated: Enabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Sasl {
    pub scram: Enabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Enabled {
    pub enabled: bool,
}

/// `AWS::MSK::BatchScramSecret`: the SCRAM logins (Secrets Manager secrets named
/// `AmazonMSK_*`, under a customer-managed key) a cluster accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MskBatchScramSecret {
    pub cluster_arn: Expr,
    pub secret_arn_list: Vec<Expr>,
}
