//! Compute constructs: an ECS cluster with a Cloud Map namespace, and Fargate services
//! that build their task definition, roles, log group and discovery entry.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::resources::{self as res, ResourceType};
use crate::{
    core::{DeletionPolicy, Expr, Handle, Scope},
    ec2::{SecurityGroup, Vpc},
};

pub struct Cluster {
    pub id: Handle<res::EcsCluster>,
    /// The Cloud Map namespace, when service discovery is on.
    pub namespace: Option<Handle<res::PrivateDnsNamespace>>,
    pub namespace_name: String,
}

impl Cluster {
    /// `namespace_name`: the private DNS namespace services register in; `None` builds
    /// no Cloud Map resources (for endpoints without Cloud Map, such as moto).
    pub fn new(scope: &mut Scope<'_>, id: &str, vpc: &Vpc, namespace_name: Option<&str>) -> Self {
        let mut scope = scope.child(id);
        let cluster = scope.add::<res::EcsCluster>(
            "Resource",
            json!({ "ClusterSettings": [{ "Name": "containerInsights", "Value": "enabled" }] }),
        );
        let namespace = namespace_name.map(|name| {
            scope.add::<res::PrivateDnsNamespace>(
                "Namespace",
                json!({ "Name": name, "Vpc": vpc.id.r#ref(), "Description": "PulseTrack service discovery" }),
            )
        });
        Self { id: cluster, namespace, namespace_name: namespace_name.unwrap_or_default().to_string() }
    }
}

/// Where a service's binary is in its image (`/usr/local/bin/<service>`): the image
/// builder puts it there, the task definition's health check and entry point run it.
pub const BINARY_DIR: &str = "/usr/local/bin";

/// The uid:gid the service images run as (never root).
pub const IMAGE_USER: &str = "10001:10001";

pub fn binary_path(service: &str) -> String {
    format!("{BINARY_DIR}/{service}")
}

/// A container health check, as ECS's `HealthCheck` (seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheck {
    /// `["CMD", program, args…]`.
    pub command: Vec<String>,
    pub interval: u32,
    pub timeout: u32,
    pub retries: u32,
    pub start_period: u32,
}

impl HealthCheck {
    /// Each binary answers `healthcheck` by probing its own /health.
    pub fn of_service(service: &str) -> Self {
        Self {
            command: vec!["CMD".into(), binary_path(service), "healthcheck".into()],
            interval: 15,
            timeout: 5,
            retries: 3,
            start_period: 30,
        }
    }

    /// The program and its arguments (without the `CMD` marker).
    pub fn argv(&self) -> &[String] {
        match self.command.first().map(String::as_str) {
            Some("CMD") => &self.command[1..],
            _ => &self.command,
        }
    }
}

/// What a Fargate service runs.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Service name: ECS service, container, log group, Cloud Map name.
    pub name: String,
    pub image: String,
    pub cpu: u32,
    pub memory_mib: u32,
    pub ports: Vec<u16>,
    pub environment: Vec<(String, Expr)>,
    /// Environment variables read from Secrets Manager: (name, `valueFrom` ARN expr).
    pub secrets: Vec<(String, Expr)>,
    /// Secrets the execution role may read (their ARNs).
    pub secret_arns: Vec<Expr>,
    /// The one ECR repository the execution role may pull from (`<stack>/<service>`).
    pub ecr_repository: String,
    pub desired_count: u32,
    pub log_retention_days: u32,
}

pub struct FargateService {
    pub service: Handle<res::EcsService>,
    pub task_definition: Handle<res::TaskDefinition>,
    pub log_group: Handle<res::LogGroup>,
    pub execution_role: Handle<res::IamRole>,
    pub task_role: Handle<res::IamRole>,
    pub security_group: SecurityGroup,
    pub spec: ContainerSpec,
}

fn assume_role(service: &str) -> Value {
    json!({ "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Principal": { "Service": service }, "Action": "sts:AssumeRole" }] })
}

/// A load balancer target for a service: the target group and the container port.
pub struct LoadBalancerTarget {
    pub target_group: Handle<res::TargetGroup>,
    pub listener: Handle<res::Listener>,
    pub port: u16,
}

impl FargateService {
    pub fn new(
        scope: &mut Scope<'_>,
        id: &str,
        cluster: &Cluster,
        vpc: &Vpc,
        spec: ContainerSpec,
        target: Option<LoadBalancerTarget>,
    ) -> Self {
        let mut scope = scope.child(id);
        let security_group = SecurityGroup::new(
            &mut scope,
            &format!("{id}Sg"),
            vpc,
            &format!("{} tasks", spec.name),
            crate::ec2::Egress::AwsApis,
        );
        let log_group = scope.add::<res::LogGroup>(
            "LogGroup",
            json!({ "LogGroupName": format!("/pulsetrack/{}", spec.name), "RetentionInDays": spec.log_retention_days }),
        );
        scope.set_deletion_policy(&log_group, DeletionPolicy::Delete);

        let (execution_role, task_role) = roles(&mut scope, &spec, &log_group);
        let container = ContainerDefinition::of(&spec, &log_group);
        let task_definition = scope.add::<res::TaskDefinition>(
            "TaskDefinition",
            json!({
                "Family": format!("pulsetrack-{}", spec.name),
                "Cpu": spec.cpu.to_string(),
                "Memory": spec.memory_mib.to_string(),
                "NetworkMode": "awsvpc",
                "RequiresCompatibilities": ["FARGATE"],
                "RuntimePlatform": { "CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX" },
                "ExecutionRoleArn": execution_role.attr(res::IamRoleAttr::Arn),
                "TaskRoleArn": task_role.attr(res::IamRoleAttr::Arn),
                "ContainerDefinitions": [container],
            }),
        );
        let discovery = cluster.namespace.as_ref().map(|namespace| {
            scope.add::<res::DiscoveryService>(
                "Discovery",
                json!({ "Name": spec.name, "NamespaceId": namespace.attr(res::PrivateDnsNamespaceAttr::Id),
                        "DnsConfig": { "DnsRecords": [{ "Type": "A", "TTL": 10 }], "RoutingPolicy": "MULTIVALUE" },
                        "HealthCheckCustomConfig": { "FailureThreshold": 1 } }),
            )
        });
        let mut service = json!({
            "ServiceName": spec.name,
            "Cluster": cluster.id.r#ref(),
            "TaskDefinition": task_definition.r#ref(),
            "DesiredCount": spec.desired_count,
            "LaunchType": "FARGATE",
            "DeploymentConfiguration": { "DeploymentCircuitBreaker": { "Enable": true, "Rollback": true },
                                         "MaximumPercent": 200, "MinimumHealthyPercent": 100 },
            "NetworkConfiguration": { "AwsvpcConfiguration": { "AssignPublicIp": "DISABLED",
                "SecurityGroups": [security_group.group_id()], "Subnets": vpc.private_subnet_refs() } },
        });
        if let Some(discovery) = &discovery {
            service["ServiceRegistries"] = json!([{ "RegistryArn": discovery.attr(res::DiscoveryServiceAttr::Arn) }]);
        }
        if let Some(target) = &target {
            service["LoadBalancers"] = json!([{ "ContainerName": spec.name, "ContainerPort": target.port,
                                                 "TargetGroupArn": target.target_group.r#ref() }]);
            service["HealthCheckGracePeriodSeconds"] = json!(60);
        }
        let service_id = scope.add::<res::EcsService>("Service", service);
        if let Some(target) = &target {
            // The target group must be attached to a listener before the service registers.
            scope.depend(&service_id, &target.listener);
        }
        Self { service: service_id, task_definition, log_group, execution_role, task_role, security_group, spec }
    }
}

/// The execution role (pull the image, write this log group, read these secrets) and
/// the task role (the application calls no AWS API, so it is granted nothing).
fn roles(
    scope: &mut Scope<'_>,
    spec: &ContainerSpec,
    log_group: &Handle<res::LogGroup>,
) -> (Handle<res::IamRole>, Handle<res::IamRole>) {
    let execution_role = scope.add::<res::IamRole>(
        "ExecutionRole",
        json!({ "AssumeRolePolicyDocument": assume_role("ecs-tasks.amazonaws.com") }),
    );
    let mut statements = vec![
        json!({ "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*" }),
        json!({ "Effect": "Allow", "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                "Resource": Expr::Sub(format!("arn:${{AWS::Partition}}:ecr:${{AWS::Region}}:${{AWS::AccountId}}:repository/{}", spec.ecr_repository)) }),
        json!({ "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": log_group.attr(res::LogGroupAttr::Arn) }),
    ];
    if !spec.secret_arns.is_empty() {
        statements.push(
            json!({ "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                                "Resource": spec.secret_arns }),
        );
    }
    scope.add::<res::IamPolicy>(
        "ExecutionPolicy",
        json!({ "PolicyName": format!("{}-execution", spec.name), "Roles": [execution_role.r#ref()],
                "PolicyDocument": { "Version": "2012-10-17", "Statement": statements } }),
    );
    let task_role = scope
        .add::<res::IamRole>("TaskRole", json!({ "AssumeRolePolicyDocument": assume_role("ecs-tasks.amazonaws.com") }));
    (execution_role, task_role)
}

impl ContainerDefinition {
    /// The container `spec` describes, logging to `log_group`, with its health check.
    fn of(spec: &ContainerSpec, log_group: &Handle<res::LogGroup>) -> Self {
        Self {
            name: spec.name.clone(),
            image: spec.image.clone(),
            essential: true,
            port_mappings: spec.ports.iter().map(|p| PortMapping { container_port: *p, protocol: tcp() }).collect(),
            environment: spec
                .environment
                .iter()
                .map(|(name, value)| EnvironmentVariable { name: name.clone(), value: value.clone() })
                .collect(),
            secrets: spec
                .secrets
                .iter()
                .map(|(name, from)| SecretVariable { name: name.clone(), value_from: from.clone() })
                .collect(),
            log_configuration: Some(LogConfiguration::awslogs(log_group, &spec.name)),
            health_check: Some(HealthCheck::of_service(&spec.name)),
        }
    }
}

/// The container of each ECS task definition in `stack` (`ContainerDefinitions[0]`),
/// by container name: what the Dockerfiles and the compose file must match.
pub fn containers(
    stack: &crate::Stack,
) -> Result<std::collections::BTreeMap<String, ContainerDefinition>, serde_json::Error> {
    first_containers(
        stack
            .resources
            .values()
            .filter(|r| r.resource_type == res::TaskDefinition::NAME)
            .map(|r| r.properties.get("ContainerDefinitions")),
    )
}

/// The first container of each task definition's `ContainerDefinitions`, by name.
fn first_containers<'a>(
    definitions: impl Iterator<Item = Option<&'a Value>>,
) -> Result<std::collections::BTreeMap<String, ContainerDefinition>, serde_json::Error> {
    let mut out = std::collections::BTreeMap::new();
    for definitions in definitions {
        let first = definitions.and_then(|d| d.get(0)).cloned().unwrap_or_default();
        let container = ContainerDefinition::deserialize(first)?;
        out.insert(container.name.clone(), container);
    }
    Ok(out)
}

/// A rendered template, read back with types: the resources' types, and the task
/// definitions' containers. What `deployer up` runs and what the images are built for.
#[derive(Debug, Clone, Deserialize)]
pub struct Template {
    #[serde(rename = "Resources")]
    resources: std::collections::BTreeMap<String, TemplateResource>,
}

#[derive(Debug, Clone, Deserialize)]
struct TemplateResource {
    #[serde(rename = "Type")]
    resource_type: String,
    #[serde(rename = "Properties", default)]
    properties: Value,
}

/// One container of a task definition: what [`FargateService`] renders into the
/// template and what [`Template::containers`] reads back, one type for both.
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
    pub health_check: Option<HealthCheck>,
}

fn essential() -> bool {
    true
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
    pub options: std::collections::BTreeMap<String, Expr>,
}

impl LogConfiguration {
    /// CloudWatch Logs: `log_group`, this region, streams prefixed with `prefix`.
    pub fn awslogs(log_group: &Handle<res::LogGroup>, prefix: &str) -> Self {
        let options = [
            ("awslogs-group", log_group.r#ref()),
            ("awslogs-region", Expr::region()),
            ("awslogs-stream-prefix", Expr::lit(prefix)),
        ];
        Self { log_driver: "awslogs".into(), options: options.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }
    }
}

impl ContainerDefinition {
    /// The container ports, in order (the first is the one health checks probe).
    pub fn ports(&self) -> Vec<u16> {
        self.port_mappings.iter().map(|m| m.container_port).collect()
    }
}

impl Template {
    pub fn read(template: &Value) -> Result<Self, serde_json::Error> {
        Self::deserialize(template)
    }

    /// Whether resource `id` is of type `T`.
    pub fn is<T: ResourceType>(&self, id: &str) -> bool {
        self.resources.get(id).is_some_and(|r| r.resource_type == T::NAME)
    }

    /// A property of resource `id`, if set.
    pub fn property(&self, id: &str, key: &str) -> Option<&Value> {
        self.resources.get(id)?.properties.get(key)
    }

    /// The first container of every task definition, by container name.
    pub fn containers(&self) -> Result<std::collections::BTreeMap<String, ContainerDefinition>, serde_json::Error> {
        first_containers(
            self.resources
                .values()
                .filter(|r| r.resource_type == res::TaskDefinition::NAME)
                .map(|r| r.properties.get("ContainerDefinitions")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, pulsetrack_stack};

    #[test]
    fn every_service_has_one_container_with_its_ports() {
        let stack = pulsetrack_stack("PulseTrack", &Context::default());
        let containers = containers(&stack).expect("typed containers");
        assert_eq!(containers.len(), crate::pulsetrack::SERVICES.len());
        assert_eq!(containers["billing-service"].ports(), [4001, 9001]);
        assert_eq!(containers["api-gateway"].ports(), [4004]);
        // Read back from the rendered template: the same containers.
        let template = Template::read(&stack.synth().expect("valid")).expect("template");
        assert_eq!(template.containers().expect("read back"), containers);
    }
}
