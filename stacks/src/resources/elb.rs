//! `AWS::ElasticLoadBalancingV2::*`: the public load balancer, its listener and
//! target group.

use serde::{Deserialize, Serialize};

use super::values::KeyValue;
use crate::expr::Expr;

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
    /// For `HTTP` health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_path: Option<String>,
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
    /// For `HTTPS`: the ACM certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<Certificate>,
    /// For `HTTPS`: the TLS negotiation policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Certificate {
    pub certificate_arn: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListenerAction {
    /// `forward`, `redirect`, …
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_config: Option<RedirectConfig>,
}

impl ListenerAction {
    pub fn forward(target_group: Expr) -> Self {
        Self { kind: "forward".into(), target_group_arn: Some(target_group), redirect_config: None }
    }

    /// A permanent redirect to HTTPS on `port`, keeping host, path and query.
    pub fn redirect_to_https(port: u16) -> Self {
        let redirect =
            RedirectConfig { protocol: "HTTPS".into(), port: port.to_string(), status_code: "HTTP_301".into() };
        Self { kind: "redirect".into(), target_group_arn: None, redirect_config: Some(redirect) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RedirectConfig {
    pub protocol: String,
    pub port: String,
    /// `HTTP_301` or `HTTP_302`.
    pub status_code: String,
}
