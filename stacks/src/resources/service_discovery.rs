//! `AWS::ServiceDiscovery::*`: Cloud Map's private DNS namespace and services.

use serde::{Deserialize, Serialize};

use crate::expr::Expr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PrivateDnsNamespace {
    pub name: String,
    pub vpc: Expr,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiscoveryService {
    pub name: String,
    pub namespace_id: Expr,
    pub dns_config: DnsConfig,
    pub health_check_custom_config: HealthCheckCustomConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnsConfig {
    pub dns_records: Vec<DnsRecord>,
    /// `MULTIVALUE` or `WEIGHTED`.
    pub routing_policy: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnsRecord {
    /// `A`, `AAAA`, `SRV`, `CNAME`.
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "TTL")]
    pub ttl: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheckCustomConfig {
    pub failure_threshold: u32,
}
