//! `deployer status`: what is running, read from each service's own API.

use aws_config::SdkConfig;
use aws_sdk_ec2::types::Filter;
use pulsetrack_stacks::resources::{self as res, ResourceType};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cloudformation::StackResource;

/// A section of the report; `unavailable` when the endpoint lacks the API.
#[derive(Debug, Serialize)]
pub struct Section {
    pub name: &'static str,
    pub items: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

fn unavailable<E: aws_sdk_ecs::error::ProvideErrorMetadata + std::fmt::Display>(e: &E) -> String {
    format!("unavailable from this endpoint ({})", e.message().map(str::to_string).unwrap_or_else(|| e.to_string()))
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

/// What runs of the stack's `resources`, one section per service API.
pub async fn report(config: &SdkConfig, resources: &[StackResource]) -> Vec<Section> {
    vec![
        network(config, resources).await,
        compute(config, resources).await,
        load_balancers(config, resources).await,
        databases(config, resources).await,
        kafka(config, resources).await,
    ]
}

/// VPCs and their subnets.
async fn network(config: &SdkConfig, resources: &[StackResource]) -> Section {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let mut network = Section { name: "network", items: Vec::new(), unavailable: None };
    for vpc in of_type(resources, res::Vpc::NAME) {
        match ec2.describe_vpcs().vpc_ids(vpc).send().await {
            Ok(out) => {
                for v in out.vpcs() {
                    let subnets = ec2
                        .describe_subnets()
                        .filters(Filter::builder().name("vpc-id").values(vpc).build())
                        .send()
                        .await
                        .map(|s| {
                            s.subnets()
                                .iter()
                                .map(|s| json!({ "id": s.subnet_id(), "cidr": s.cidr_block(), "az": s.availability_zone() }))
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default();
                    network.items.push(json!({ "vpc": v.vpc_id(), "cidr": v.cidr_block(),
                        "state": v.state().map(|s| s.as_str()), "subnets": subnets }));
                }
            }
            Err(e) => network.unavailable = Some(unavailable(&e)),
        }
    }
    network
}

/// ECS services: desired, running, pending.
async fn compute(config: &SdkConfig, resources: &[StackResource]) -> Section {
    let ecs = aws_sdk_ecs::Client::new(config);
    let mut compute = Section { name: "ecs", items: Vec::new(), unavailable: None };
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
            Err(e) => compute.unavailable = Some(unavailable(&e)),
        }
    }
    compute
}

/// Load balancers, their listeners, and their targets' health.
async fn load_balancers(config: &SdkConfig, resources: &[StackResource]) -> Section {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(config);
    let mut balancers = Section { name: "load balancer", items: Vec::new(), unavailable: None };
    for lb in of_type(resources, res::LoadBalancer::NAME) {
        match elb.describe_load_balancers().load_balancer_arns(lb).send().await {
            Ok(out) => {
                for b in out.load_balancers() {
                    let listeners = elb
                        .describe_listeners()
                        .load_balancer_arn(lb)
                        .send()
                        .await
                        .map(|l| {
                            l.listeners()
                                .iter()
                                .map(|l| json!({ "port": l.port(), "protocol": l.protocol().map(|p| p.as_str()) }))
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default();
                    balancers.items.push(
                        json!({ "dns": b.dns_name(), "state": b.state().and_then(|s| s.code()).map(|c| c.as_str()),
                        "listeners": listeners }),
                    );
                }
            }
            Err(e) => balancers.unavailable = Some(unavailable(&e)),
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
            Err(e) => balancers.unavailable = Some(unavailable(&e)),
        }
    }
    balancers
}

/// RDS instances.
async fn databases(config: &SdkConfig, resources: &[StackResource]) -> Section {
    let rds = aws_sdk_rds::Client::new(config);
    let mut databases = Section { name: "databases", items: Vec::new(), unavailable: None };
    for db in of_type(resources, res::DbInstance::NAME) {
        match rds.describe_db_instances().db_instance_identifier(db).send().await {
            Ok(out) => {
                for i in out.db_instances() {
                    databases.items.push(json!({ "id": i.db_instance_identifier(), "status": i.db_instance_status(),
                        "engine": i.engine_version(), "endpoint": i.endpoint().and_then(|e| e.address()),
                        "port": i.endpoint().and_then(|e| e.port()) }));
                }
            }
            Err(e) => databases.unavailable = Some(unavailable(&e)),
        }
    }
    databases
}

/// MSK clusters and their bootstrap brokers.
async fn kafka(config: &SdkConfig, resources: &[StackResource]) -> Section {
    let kafka = aws_sdk_kafka::Client::new(config);
    let mut msk = Section { name: "kafka", items: Vec::new(), unavailable: None };
    let clusters = of_type(resources, res::MskCluster::NAME);
    if clusters.is_empty() {
        msk.unavailable = Some("no MSK cluster in this stack (msk=false, or the endpoint skipped it)".into());
    }
    for arn in clusters {
        let state = match kafka.describe_cluster_v2().cluster_arn(arn).send().await {
            Ok(out) => out.cluster_info().and_then(|c| c.state()).map(|s| s.as_str().to_string()),
            Err(e) => Some(unavailable(&e)),
        };
        let brokers = match kafka.get_bootstrap_brokers().cluster_arn(arn).send().await {
            Ok(out) => out.bootstrap_broker_string().map(str::to_string),
            Err(e) => Some(unavailable(&e)),
        };
        msk.items.push(json!({ "cluster": arn, "state": state, "bootstrapBrokers": brokers }));
    }
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
        if let Some(reason) = &section.unavailable {
            out.push_str(&format!("  {reason}\n"));
        } else if section.items.is_empty() {
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

/// Resources of a deleted stack that the endpoint still has (moto keeps them; AWS
/// keeps retained snapshots). Checked for the types whose APIs we query.
pub async fn left_behind(config: &SdkConfig, resources: &[StackResource]) -> Vec<String> {
    let mut left = Vec::new();
    let ec2 = aws_sdk_ec2::Client::new(config);
    for vpc in of_type(resources, res::Vpc::NAME) {
        if ec2.describe_vpcs().vpc_ids(vpc).send().await.is_ok_and(|o| !o.vpcs().is_empty()) {
            left.push(format!("{} {vpc}", res::Vpc::NAME));
        }
    }
    let ecs = aws_sdk_ecs::Client::new(config);
    for cluster in of_type(resources, res::EcsCluster::NAME) {
        if ecs
            .describe_clusters()
            .clusters(cluster)
            .send()
            .await
            .is_ok_and(|o| o.clusters().iter().any(|c| c.status() == Some("ACTIVE")))
        {
            left.push(format!("{} {cluster}", res::EcsCluster::NAME));
        }
    }
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(config);
    for lb in of_type(resources, res::LoadBalancer::NAME) {
        if elb
            .describe_load_balancers()
            .load_balancer_arns(lb)
            .send()
            .await
            .is_ok_and(|o| !o.load_balancers().is_empty())
        {
            left.push(format!("{} {lb}", res::LoadBalancer::NAME));
        }
    }
    let rds = aws_sdk_rds::Client::new(config);
    for db in of_type(resources, res::DbInstance::NAME) {
        if rds
            .describe_db_instances()
            .db_instance_identifier(db)
            .send()
            .await
            .is_ok_and(|o| !o.db_instances().is_empty())
        {
            left.push(format!("{} {db}", res::DbInstance::NAME));
        }
    }
    left
}
