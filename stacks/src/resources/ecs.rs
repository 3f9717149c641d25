//! `AWS::ECS::*`: the cluster, task definitions with their containers, and services.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::expr::Expr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EcsCluster {
    pub cluster_settings: Vec<ClusterSetting>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterSetting {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskDefinition {
    pub family: String,
    /// CPU units, as CloudFormation's string.
    pub cpu: String,
    /// MiB, as CloudFormation's string.
    pub memory: String,
    /// `awsvpc` for Fargate.
    pub network_mode: String,
    pub requires_compatibilities: Vec<String>,
    pub runtime_platform: RuntimePlatform,
    pub execution_role_arn: Expr,
    pub task_role_arn: Expr,
    pub container_definitions: Vec<ContainerDefinition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimePlatform {
    pub cpu_architecture: String,
    pub operating_system_family: String,
}

/// One container of a task definition: what the stack renders into the template and
/// what [`crate::ecs::Template::containers`] reads back, one type for both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerDefinition {
    pub name: String,
    pub image: String,
    #[serde(default = "essential")]
    pub essential: bool,
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default)]
    pub environment: Vec<EnvironmentVariable>,
    #[serde(default)]
    pub secrets: Vec<SecretVariable>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<ContainerHealthCheck>,
}

fn essential() -> bool {
    true
}

impl ContainerDefinition {
    /// The container ports, in order (the first is the one health checks probe).
    pub fn ports(&self) -> Vec<u16> {
        self.port_mappings.iter().map(|m| m.container_port).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortMapping {
    pub container_port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
}

fn tcp() -> String {
    "tcp".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentVariable {
    pub name: String,
    pub value: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretVariable {
    pub name: String,
    pub value_from: Expr,
}

/// Where a container's output goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfiguration {
    pub log_driver: String,
    pub options: BTreeMap<String, Expr>,
}

/// A container health check, as ECS's `HealthCheck` (seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerHealthCheck {
    /// `["CMD", program, args…]`.
    pub command: Vec<String>,
    pub interval: u32,
    pub timeout: u32,
    pub retries: u32,
    pub start_period: u32,
}

impl ContainerHealthCheck {
    /// The program and its arguments (without the `CMD` marker).
    pub fn argv(&self) -> &[String] {
        match self.command.first().map(String::as_str) {
            Some("CMD") => &self.command[1..],
            _ => &self.command,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EcsService {
    pub service_name: String,
    pub cluster: Expr,
    pub task_definition: Expr,
    pub desired_count: u32,
    pub launch_type: String,
    pub deployment_configuration: DeploymentConfiguration,
    pub network_configuration: NetworkConfiguration,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_registries: Vec<ServiceRegistry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<ServiceLoadBalancer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_grace_period_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentConfiguration {
    pub deployment_circuit_breaker: DeploymentCircuitBreaker,
    pub maximum_percent: u32,
    pub minimum_healthy_percent: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentCircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkConfiguration {
    pub awsvpc_configuration: AwsvpcConfiguration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AwsvpcConfiguration {
    /// `ENABLED` or `DISABLED`.
    pub assign_public_ip: String,
    pub security_groups: Vec<Expr>,
    pub subnets: Vec<Expr>,
}

/// The Cloud Map service a task registers in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceRegistry {
    pub registry_arn: Expr,
}

/// The target group a service's container port is registered in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceLoadBalancer {
    pub container_name: String,
    pub container_port: u16,
    pub target_group_arn: Expr,
}
