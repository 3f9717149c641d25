//! `deployer status`: what is running, read from each service's own API.

use aws_config::SdkConfig;
use aws_sdk_ec2::{error::ProvideErrorMetadata, types::Filter};
use pulsetrack_stacks::resources::{self as res, ResourceType};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    cloudformation::StackResource,
    kafka::{self, Wiring},
    target::Target,
};

/// A section of the report; `unavailable` when the stack or the endpoint lacks what
/// it reports on, `errors` for calls that failed (their items are incomplete).
#[derive(Debug, Serialize)]
pub struct Section {
    pub name: &'static str,
    pub items: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl Section {
    fn new(name: &'static str) -> Self {
        Self { name, items: Vec::new(), unavailable: None, errors: Vec::new() }
    }

    /// Records a failed call; its part of the report is `null`.
    fn failed(&mut self, call: &str, e: &dyn ProvideErrorMetadata) -> Value {
        self.errors.push(format!("{call} failed: {}", message(e)));
        Value::Null
    }
}

fn message(e: &dyn ProvideErrorMetadata) -> String {
    e.message().or(e.code()).unwrap_or("no message").to_string()
}

/// Every failed call of the report, to make `status` fail after printing it.
pub fn errors(sections: &[Section]) -> Vec<String> {
    sections.iter().flat_map(|s| s.errors.iter().map(move |e| format!("{}: {e}", s.name))).collect()
}

/// Physical ids of the stack's resources of `resource_type`.
fn of_type<'a>(resources: &'a [StackResource], resource_type: &str) -> Vec<&'a str> {
    resources
        .iter()
        .filter(|r| r.resource_type == resource_type)
        .map(|r| r.physical_id.as_str())
        .filter(|id| !id.is_empty())
        .collect()
}

/// What runs of the stack's `resources`, one section per service API; `wiring` is
/// what the Kafka section checks on `endpoint`.
pub async fn report(
    config: &SdkConfig,
    resources: &[StackResource],
    wiring: &Wiring,
    endpoint: &Target,
) -> Vec<Section> {
    vec![
        network(config, resources).await,
        compute(config, resources).await,
        load_balancers(config, resources).await,
        databases(config, resources).await,
        kafka(config, wiring, endpoint).await,
    ]
}

/// VPCs and their subnets.
async fn network(config: &SdkConfig, resources: &[StackResource]) -> Section {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let mut network = Section::new("network");
    for vpc in of_type(resources, res::Vpc::NAME) {
        match ec2.describe_vpcs().vpc_ids(vpc).send().await {
            Ok(out) => {
                for v in out.vpcs() {
                    let subnets = match ec2
                        .describe_subnets()
                        .filters(Filter::builder().name("vpc-id").values(vpc).build())
                        .send()
                        .await
                    {
                        Ok(s) => Value::Array(
                            s.subnets()
                                .iter()
                                .map(|s| json!({ "id": s.subnet_id(), "cidr": s.cidr_block(), "az": s.availability_zone() }))
                                .collect(),
                        ),
                        Err(e) => network.failed(&format!("DescribeSubnets of {vpc}"), &e),
                    };
                    network.items.push(json!({ "vpc": v.vpc_id(), "cidr": v.cidr_block(),
                        "state": v.state().map(|s| s.as_str()), "subnets": subnets }));
                }
            }
            Err(e) => {
                network.failed(&format!("DescribeVpcs of {vpc}"), &e);
            }
        }
    }
    network
}

/// ECS services: desired, running, pending.
async fn compute(config: &SdkConfig, resources: &[StackResource]) -> Section {
    let ecs = aws_sdk_ecs::Client::new(config);
    let mut compute = Section::new("ecs");
    for cluster in of_type(resources, res::EcsCluster::NAME) {
        let services = of_type(resources, res::EcsService::NAME);
        match ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(services.iter().map(|s| s.to_string()).collect()))
            .send()
            .await
        {
            Ok(out) => {
                for s in out.services() {
                    compute.items.push(json!({ "cluster": cluster, "service": s.service_name(), "status": s.status(),
                        "desired": s.desired_count(), "running": s.running_count(), "pending": s.pending_count() }));
                }
            }
            Err(e) => {
                compute.failed(&format!("DescribeServices in {cluster}"), &e);
            }
        }
    }
    compute
}

/// Load balancers, their listeners, and their targets' health.
async fn load_balancers(config: &SdkConfig, resources: &[StackResource]) -> Section {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(config);
    let mut balancers = Section::new("load balancer");
    for lb in of_type(resources, res::LoadBalancer::NAME) {
        match elb.describe_load_balancers().load_balancer_arns(lb).send().await {
            Ok(out) => {
                for b in out.load_balancers() {
                    let listeners = match elb.describe_listeners().load_balancer_arn(lb).send().await {
                        Ok(l) => Value::Array(
                            l.listeners()
                                .iter()
                                .map(|l| json!({ "port": l.port(), "protocol": l.protocol().map(|p| p.as_str()) }))
                                .collect(),
                        ),
                        Err(e) => balancers.failed(&format!("DescribeListeners of {lb}"), &e),
                    };
                    balancers.items.push(
                        json!({ "dns": b.dns_name(), "state": b.state().and_then(|s| s.code()).map(|c| c.as_str()),
                        "listeners": listeners }),
                    );
                }
            }
            Err(e) => {
                balancers.failed(&format!("DescribeLoadBalancers of {lb}"), &e);
            }
        }
    }
    for tg in of_type(resources, res::TargetGroup::NAME) {
        match elb.describe_target_health().target_group_arn(tg).send().await {
            Ok(out) => {
                let targets: Vec<Value> = out
                    .target_health_descriptions()
                    .iter()
                    .map(|t| {
                        json!({ "target": t.target().and_then(|t| t.id()),
                        "health": t.target_health().and_then(|h| h.state()).map(|s| s.as_str()) })
                    })
                    .collect();
                balancers.items.push(json!({ "targetGroup": tg, "targets": targets }));
            }
            Err(e) => {
                balancers.failed(&format!("DescribeTargetHealth of {tg}"), &e);
            }
        }
    }
    balancers
}

/// RDS instances.
async fn databases(config: &SdkConfig, resources: &[StackResource]) -> Section {
    let rds = aws_sdk_rds::Client::new(config);
    let mut databases = Section::new("databases");
    for db in of_type(resources, res::DbInstance::NAME) {
        match rds.describe_db_instances().db_instance_identifier(db).send().await {
            Ok(out) => {
                for i in out.db_instances() {
                    databases.items.push(json!({ "id": i.db_instance_identifier(), "status": i.db_instance_status(),
                        "engine": i.engine_version(), "endpoint": i.endpoint().and_then(|e| e.address()),
                        "port": i.endpoint().and_then(|e| e.port()) }));
                }
            }
            Err(e) => {
                databases.failed(&format!("DescribeDBInstances of {db}"), &e);
            }
        }
    }
    databases
}

/// The MSK cluster, its TLS bootstrap brokers and whether the secret holds them.
async fn kafka(config: &SdkConfig, wiring: &Wiring, endpoint: &Target) -> Section {
    let mut msk = Section::new("kafka");
    let wiring = match wiring {
        Wiring::NotDeclared => {
            msk.unavailable = Some("no MSK cluster in this stack (msk=false: brokers from kafka-brokers)".into());
            return msk;
        }
        Wiring::Gap(gap) => {
            msk.unavailable = Some(kafka::gap_advice(gap, &endpoint.describe(), endpoint.is_moto().await));
            return msk;
        }
        Wiring::Ready(wiring) => wiring,
    };
    let state =
        match aws_sdk_kafka::Client::new(config).describe_cluster_v2().cluster_arn(&wiring.cluster_arn).send().await {
            Ok(out) => json!(out.cluster_info().and_then(|c| c.state()).map(|s| s.as_str())),
            Err(e) => msk.failed("DescribeClusterV2", &e),
        };
    let (brokers, matches) = match kafka::inspect(config, wiring).await {
        Ok(i) => (json!(i.brokers), json!(i.secret_matches)),
        Err(e) => {
            msk.errors.push(format!("{e:#}"));
            (Value::Null, Value::Null)
        }
    };
    msk.items.push(json!({ "cluster": wiring.cluster_arn, "state": state, "bootstrapBrokersTls": brokers,
        "secretMatches": matches }));
    msk
}

/// The report as a table-like text.
pub fn render(sections: &[Section]) -> String {
    let mut out = String::new();
    for section in sections {
        out.push_str(&format!("{}\n", section.name.to_uppercase()));
        for item in &section.items {
            let fields: Vec<String> = item
                .as_object()
                .map(|o| o.iter().map(|(k, v)| format!("{k}={}", compact(v))).collect())
                .unwrap_or_default();
            out.push_str(&format!("  {}\n", fields.join("  ")));
        }
        for error in &section.errors {
            out.push_str(&format!("  error: {error}\n"));
        }
        if let Some(reason) = &section.unavailable {
            out.push_str(&format!("  {reason}\n"));
        } else if section.items.is_empty() && section.errors.is_empty() {
            out.push_str("  (none)\n");
        }
    }
    out
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(items) => format!("[{}]", items.len()),
        other => other.to_string(),
    }
}

/// What the check after a delete found.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// Resources the endpoint still has (moto keeps them; AWS keeps retained ones).
    pub present: Vec<String>,
    /// Resources whose check failed: whether they are gone is unknown.
    pub unknown: Vec<String>,
}

impl Leftovers {
    /// Files one check: `Ok(true)` present, `Ok(false)` gone, `Err` unknown.
    fn record(&mut self, what: String, found: Result<bool, String>) {
        match found {
            Ok(true) => self.present.push(what),
            Ok(false) => {}
            Err(e) => self.unknown.push(format!("{what}: {e}")),
        }
    }
}

/// Which of a deleted stack's resources the endpoint still has, for the types whose
/// APIs we query. "Not found" answers mean gone; any other error means unknown.
pub async fn left_behind(config: &SdkConfig, resources: &[StackResource]) -> Leftovers {
    let mut left = Leftovers::default();
    let ec2 = aws_sdk_ec2::Client::new(config);
    for vpc in of_type(resources, res::Vpc::NAME) {
        let found = match ec2.describe_vpcs().vpc_ids(vpc).send().await {
            Ok(o) => Ok(!o.vpcs().is_empty()),
            Err(e) if e.code() == Some("InvalidVpcID.NotFound") => Ok(false),
            Err(e) => Err(message(&e)),
        };
        left.record(format!("{} {vpc}", res::Vpc::NAME), found);
    }
    let ecs = aws_sdk_ecs::Client::new(config);
    for cluster in of_type(resources, res::EcsCluster::NAME) {
        let found = match ecs.describe_clusters().clusters(cluster).send().await {
            Ok(o) => Ok(o.clusters().iter().any(|c| c.status() == Some("ACTIVE"))),
            Err(e) => Err(message(&e)),
        };
        left.record(format!("{} {cluster}", res::EcsCluster::NAME), found);
    }
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(config);
    for lb in of_type(resources, res::LoadBalancer::NAME) {
        let found = match elb.describe_load_balancers().load_balancer_arns(lb).send().await {
            Ok(o) => Ok(!o.load_balancers().is_empty()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_load_balancer_not_found_exception()) => Ok(false),
            Err(e) => Err(message(&e)),
        };
        left.record(format!("{} {lb}", res::LoadBalancer::NAME), found);
    }
    let rds = aws_sdk_rds::Client::new(config);
    for db in of_type(resources, res::DbInstance::NAME) {
        let found = match rds.describe_db_instances().db_instance_identifier(db).send().await {
            Ok(o) => Ok(!o.db_instances().is_empty()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_db_instance_not_found_fault()) => Ok(false),
            Err(e) => Err(message(&e)),
        };
        left.record(format!("{} {db}", res::DbInstance::NAME), found);
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_call_is_an_error_in_the_report_not_an_empty_list() {
        let mut network = Section::new("network");
        let error =
            aws_sdk_ec2::error::ErrorMetadata::builder().code("UnauthorizedOperation").message("denied").build();
        let subnets = network.failed("DescribeSubnets of vpc-1", &error);
        network.items.push(json!({ "vpc": "vpc-1", "subnets": subnets }));
        assert_eq!(network.items[0]["subnets"], Value::Null, "unknown, not []");
        let text = render(std::slice::from_ref(&network));
        assert!(text.contains("error: DescribeSubnets of vpc-1 failed: denied"), "{text}");
        assert_eq!(errors(&[network]), ["network: DescribeSubnets of vpc-1 failed: denied"]);
        assert!(!render(&[Section::new("ecs")]).contains("error"), "an empty section is (none)");
    }

    #[test]
    fn a_failed_leftover_check_is_unknown_not_deleted() {
        let mut left = Leftovers::default();
        left.record("AWS::EC2::VPC vpc-1".into(), Ok(true));
        left.record("AWS::EC2::VPC vpc-2".into(), Ok(false));
        left.record("AWS::RDS::DBInstance db-1".into(), Err("throttled".into()));
        assert_eq!(left.present, ["AWS::EC2::VPC vpc-1"]);
        assert_eq!(left.unknown, ["AWS::RDS::DBInstance db-1: throttled"]);
    }
}
