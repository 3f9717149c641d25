//! Compute constructs: an ECS cluster with a Cloud Map namespace, and Fargate services
//! that build their task definition, roles, log group and discovery entry.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::resources::{
    self as res, AwsvpcConfiguration, ClusterSetting, DeploymentCircuitBreaker, DeploymentConfiguration, DnsConfig,
    DnsRecord, HealthCheckCustomConfig, NetworkConfiguration, OneOrMany, PolicyDocument, Principal, Properties,
    ResourceType, RuntimePlatform, ServiceLoadBalancer, ServiceRegistry, Statement,
};
pub use crate::resources::{
    ContainerDefinition, ContainerHealthCheck as HealthCheck, EnvironmentVariable, LogConfiguration, PortMapping,
    SecretVariable,
};
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
        let cluster = scope.add(
            "Resource",
            res::EcsCluster {
                cluster_settings: vec![ClusterSetting { name: "containerInsights".into(), value: "enabled".into() }],
            },
        );
        let namespace = namespace_name.map(|name| {
            scope.add(
                "Namespace",
                res::PrivateDnsNamespace {
                    name: name.into(),
                    vpc: vpc.id.r#ref(),
                    description: "PulseTrack service discovery".into(),
                },
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
    /// The customer-managed keys those secrets are encrypted with, if any (the execution
    /// role may decrypt with them).
    pub secrets_keys: Vec<Expr>,
    /// The one ECR repository the execution role may pull from (`<stack>/<service>`).
    pub ecr_repository: String,
    pub desired_count: u32,
    pub log_retention_days: u32,
    /// What the application itself may do with AWS (the task role's one policy); none:
    /// the task role holds no permission.
    pub task_statements: Vec<Statement>,
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

/// A role that `service` (an AWS service principal) may assume.
pub fn assumable_by(service: &str) -> res::IamRole {
    res::IamRole {
        assume_role_policy_document: PolicyDocument::new(vec![Statement {
            effect: res::Effect::Allow,
            principal: Some(Principal::service(service)),
            action: OneOrMany::One("sts:AssumeRole".into()),
            resource: None,
            condition: None,
        }]),
        managed_policy_arns: Vec::new(),
    }
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
        targets: Vec<LoadBalancerTarget>,
    ) -> Self {
        let mut scope = scope.child(id);
        let security_group = SecurityGroup::new(
            &mut scope,
            &format!("{id}Sg"),
            vpc,
            &format!("{} tasks", spec.name),
            crate::ec2::Egress::AwsApis,
        );
        let log_group = scope.add(
            "LogGroup",
            res::LogGroup {
                log_group_name: format!("/pulsetrack/{}", spec.name),
                retention_in_days: spec.log_retention_days,
                kms_key_id: None,
            },
        );
        scope.set_deletion_policy(&log_group, DeletionPolicy::Delete);

        let (execution_role, task_role) = roles(&mut scope, &spec, &log_group);
        let task_definition =
            scope.add("TaskDefinition", task_definition(&spec, &log_group, &execution_role, &task_role));
        let discovery = cluster.namespace.as_ref().map(|namespace| scope.add("Discovery", discovery(&spec, namespace)));
        let service = res::EcsService {
            service_name: spec.name.clone(),
            cluster: cluster.id.r#ref(),
            task_definition: task_definition.r#ref(),
            desired_count: spec.desired_count,
            launch_type: "FARGATE".into(),
            deployment_configuration: DeploymentConfiguration {
                deployment_circuit_breaker: DeploymentCircuitBreaker { enable: true, rollback: true },
                maximum_percent: 200,
                minimum_healthy_percent: 100,
            },
            network_configuration: NetworkConfiguration {
                awsvpc_configuration: AwsvpcConfiguration {
                    assign_public_ip: "DISABLED".into(),
                    security_groups: vec![security_group.group_id()],
                    subnets: vpc.private_subnet_refs(),
                },
            },
            service_registries: discovery
                .iter()
                .map(|d| ServiceRegistry { registry_arn: d.attr(res::DiscoveryServiceAttr::Arn) })
                .collect(),
            load_balancers: targets
                .iter()
                .map(|t| ServiceLoadBalancer {
                    container_name: spec.name.clone(),
                    container_port: t.port,
                    target_group_arn: t.target_group.r#ref(),
                })
                .collect(),
            health_check_grace_period_seconds: (!targets.is_empty()).then_some(60),
        };
        let service_id = scope.add("Service", service);
        for target in &targets {
            // The target group must be attached to a listener before the service registers.
            scope.depend(&service_id, &target.listener);
        }
        Self { service: service_id, task_definition, log_group, execution_role, task_role, security_group, spec }
    }
}

/// A Fargate task of the one container `spec` describes.
fn task_definition(
    spec: &ContainerSpec,
    log_group: &Handle<res::LogGroup>,
    execution_role: &Handle<res::IamRole>,
    task_role: &Handle<res::IamRole>,
) -> res::TaskDefinition {
    res::TaskDefinition {
        family: format!("pulsetrack-{}", spec.name),
        cpu: spec.cpu.to_string(),
        memory: spec.memory_mib.to_string(),
        network_mode: "awsvpc".into(),
        requires_compatibilities: vec!["FARGATE".into()],
        runtime_platform: RuntimePlatform {
            cpu_architecture: "X86_64".into(),
            operating_system_family: "LINUX".into(),
        },
        execution_role_arn: execution_role.attr(res::IamRoleAttr::Arn),
        task_role_arn: task_role.attr(res::IamRoleAttr::Arn),
        container_definitions: vec![ContainerDefinition::of(spec, log_group)],
    }
}

/// The Cloud Map entry of the service: an A record per task, for the tasks ECS
/// reports healthy.
fn discovery(spec: &ContainerSpec, namespace: &Handle<res::PrivateDnsNamespace>) -> res::DiscoveryService {
    res::DiscoveryService {
        name: spec.name.clone(),
        namespace_id: namespace.attr(res::PrivateDnsNamespaceAttr::Id),
        dns_config: DnsConfig {
            dns_records: vec![DnsRecord { kind: "A".into(), ttl: 10 }],
            routing_policy: "MULTIVALUE".into(),
        },
        health_check_custom_config: HealthCheckCustomConfig { failure_threshold: 1 },
    }
}

/// The execution role (pull the image, write this log group, read these secrets) and
/// the task role (exactly the spec's task statements: the application's own AWS calls).
fn roles(
    scope: &mut Scope<'_>,
    spec: &ContainerSpec,
    log_group: &Handle<res::LogGroup>,
) -> (Handle<res::IamRole>, Handle<res::IamRole>) {
    let execution_role = scope.add("ExecutionRole", assumable_by("ecs-tasks.amazonaws.com"));
    let repository = Expr::Sub(format!(
        "arn:${{AWS::Partition}}:ecr:${{AWS::Region}}:${{AWS::AccountId}}:repository/{}",
        spec.ecr_repository
    ));
    let mut statements = vec![
        Statement::allow(&["ecr:GetAuthorizationToken"], OneOrMany::One(Expr::lit("*"))),
        Statement::allow(
            &["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            OneOrMany::One(repository),
        ),
        Statement::allow(
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            OneOrMany::One(log_group.attr(res::LogGroupAttr::Arn)),
        ),
    ];
    if !spec.secret_arns.is_empty() {
        statements.push(Statement::allow(
            &["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            OneOrMany::Many(spec.secret_arns.clone()),
        ));
        let keys = match &spec.secrets_keys[..] {
            [] => None,
            [key] => Some(OneOrMany::One(key.clone())),
            keys => Some(OneOrMany::Many(keys.to_vec())),
        };
        if let Some(keys) = keys {
            statements.push(Statement::allow(&["kms:Decrypt"], keys).when(serde_json::json!({
                "StringEquals": { "kms:ViaService": { "Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com" } }
            })));
        }
    }
    scope.add(
        "ExecutionPolicy",
        res::IamPolicy {
            policy_name: format!("{}-execution", spec.name),
            roles: vec![execution_role.r#ref()],
            policy_document: PolicyDocument::new(statements),
        },
    );
    let task_role = scope.add("TaskRole", assumable_by("ecs-tasks.amazonaws.com"));
    if !spec.task_statements.is_empty() {
        scope.add(
            "TaskPolicy",
            res::IamPolicy {
                policy_name: format!("{}-task", spec.name),
                roles: vec![task_role.r#ref()],
                policy_document: PolicyDocument::new(spec.task_statements.clone()),
            },
        );
    }
    (execution_role, task_role)
}

impl ContainerDefinition {
    /// The container `spec` describes, logging to `log_group`, with its health check.
    fn of(spec: &ContainerSpec, log_group: &Handle<res::LogGroup>) -> Self {
        Self {
            name: spec.name.clone(),
            image: spec.image.clone(),
            essential: true,
            port_mappings: spec
                .ports
                .iter()
                .map(|p| PortMapping { container_port: *p, protocol: "tcp".into() })
                .collect(),
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
pub fn containers(stack: &crate::Stack) -> BTreeMap<String, ContainerDefinition> {
    first_containers(stack.resources_of::<res::TaskDefinition>().map(|(_, task)| task))
}

/// The first container of each task definition, by name.
fn first_containers<'a>(tasks: impl Iterator<Item = &'a res::TaskDefinition>) -> BTreeMap<String, ContainerDefinition> {
    tasks
        .filter_map(|task| task.container_definitions.first())
        .map(|container| (container.name.clone(), container.clone()))
        .collect()
}

/// A rendered template read back into the typed properties the stack model renders:
/// what `deployer up` runs and what the images are built for.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    resources: BTreeMap<String, Properties>,
}

/// Why a template does not read back.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("not a CloudFormation template: {0}")]
    Shape(serde_json::Error),
    #[error("resource {0}: {1}")]
    Resource(String, res::ReadError),
}

#[derive(Deserialize)]
struct RawTemplate {
    #[serde(rename = "Resources")]
    resources: BTreeMap<String, RawResource>,
}

#[derive(Deserialize)]
struct RawResource {
    #[serde(rename = "Type")]
    resource_type: String,
    #[serde(rename = "Properties", default)]
    properties: Value,
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

impl Template {
    pub fn read(template: &Value) -> Result<Self, TemplateError> {
        let raw = RawTemplate::deserialize(template).map_err(TemplateError::Shape)?;
        let resources = raw
            .resources
            .into_iter()
            .map(|(id, r)| match Properties::read(&r.resource_type, r.properties) {
                Ok(properties) => Ok((id, properties)),
                Err(e) => Err(TemplateError::Resource(id, e)),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { resources })
    }

    /// The properties of resource `id`, if it is of type `T`.
    pub fn resource<T: ResourceType>(&self, id: &str) -> Option<&T> {
        T::of(self.resources.get(id)?)
    }

    /// Every resource of type `T`, with its logical id.
    pub fn resources_of<T: ResourceType>(&self) -> impl Iterator<Item = (&str, &T)> {
        self.resources.iter().filter_map(|(id, r)| Some((id.as_str(), T::of(r)?)))
    }

    /// The first container of every task definition, by container name.
    pub fn containers(&self) -> BTreeMap<String, ContainerDefinition> {
        first_containers(self.resources.values().filter_map(res::TaskDefinition::of))
    }
}
