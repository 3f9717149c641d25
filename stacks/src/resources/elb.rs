//! `AWS::ElasticLoadBalancingV2::*`: the public load balancer, its listener and
//! target group.

use serde::{Deserialize, Serialize};

use super::KeyValue;
use crate::core::Expr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoadBalancer {
    /// `application` or `network`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// `internet-facing` or `internal`.
    pub scheme: String,
    pub subnets: Vec<Expr>,
    pub security_groups: Vec<Expr>,
    pub load_balancer_attributes: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetGroup {
    pub port: u16,
    pub protocol: String,
    /// `ip` for Fargate tasks.
    pub target_type: String,
    pub vpc_id: Expr,
    pub health_check_path: String,
    pub health_check_protocol: String,
    pub health_check_interval_seconds: u32,
    pub healthy_threshold_count: u32,
    pub unhealthy_threshold_count: u32,
    pub target_group_attributes: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Listener {
    pub load_balancer_arn: Expr,
    pub port: u16,
    pub protocol: String,
    pub default_actions: Vec<ListenerAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListenerAction {
    /// `forward`, `redirect`, …
    #[serde(rename = "Type")]
    pub kind: String,
    pub target_group_arn: Expr,
}
