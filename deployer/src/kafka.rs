//! MSK bootstrap brokers. They are no CloudFormation attribute, so the stack declares
//! `KafkaBootstrapSecret` with a placeholder; after every deploy this step reads the
//! cluster's SASL/SCRAM bootstrap brokers (GetBootstrapBrokers, TLS on port 9096), writes them to
//! the secret when they differ, and forces a new deployment of the ECS services whose
//! task definitions read that secret (ECS reads secrets only when a task starts).
//! Idempotent: when the secret is right and every reader started after its last
//! change, nothing is written or rolled.

use crate::error::aws_call_failed;
use anyhow::{Context as _, bail};
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::primitives::DateTime;
use pulsetrack_stacks::{
    core::logical_id,
    msk::BROKER_PORT,
    pulsetrack::KAFKA_BOOTSTRAP_SECRET,
    resources::{self as res, ResourceType},
};
use serde::Serialize;
use serde_json::Value;

use crate::cloudformation::StackResource;

/// What the step works on, all read from the deployed stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerWiring {
    pub cluster_arn: String,
    /// The secret's ARN (its physical id).
    pub secret_id: String,
    /// The ECS cluster and the stack's services in it (names or ARNs).
    pub ecs_cluster: String,
    pub services: Vec<String>,
}

/// Whether a deployed stack needs the step, and what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wiring {
    /// No MSK in the template (`msk=false`: the brokers come from `kafka-brokers`).
    NotDeclared,
    /// The template declares MSK but the endpoint lacks what the step needs.
    Gap(String),
    Ready(BrokerWiring),
}

fn physical<'a>(resources: &'a [StackResource], resource_type: &str) -> Vec<&'a str> {
    resources
        .iter()
        .filter(|r| r.resource_type == resource_type && !r.physical_id.is_empty())
        .map(|r| r.physical_id.as_str())
        .collect()
}

/// What the step needs, from the stack's deployed `template` and its `resources`.
pub fn wiring(stack: &str, template: &Value, resources: &[StackResource]) -> Wiring {
    let declared =
        template["Resources"].as_object().is_some_and(|r| r.values().any(|r| r["Type"] == res::MskCluster::NAME));
    if !declared {
        return Wiring::NotDeclared;
    }
    let secret_id = logical_id(&[stack.to_string(), KAFKA_BOOTSTRAP_SECRET.to_string()]);
    let secret = resources.iter().find(|r| r.logical_id == secret_id && !r.physical_id.is_empty());
    let cluster = physical(resources, res::MskCluster::NAME);
    let ecs_cluster = physical(resources, res::EcsCluster::NAME);
    let mut missing = Vec::new();
    if cluster.is_empty() {
        missing.push(format!("the MSK cluster ({})", res::MskCluster::NAME));
    }
    if secret.is_none() {
        missing.push(format!("the secret {KAFKA_BOOTSTRAP_SECRET} ({})", res::Secret::NAME));
    }
    if ecs_cluster.is_empty() {
        missing.push(format!("the ECS cluster ({})", res::EcsCluster::NAME));
    }
    match (cluster.first(), secret, ecs_cluster.first()) {
        (Some(cluster), Some(secret), Some(ecs_cluster)) => Wiring::Ready(BrokerWiring {
            cluster_arn: cluster.to_string(),
            secret_id: secret.physical_id.clone(),
            ecs_cluster: ecs_cluster.to_string(),
            services: physical(resources, res::EcsService::NAME).into_iter().map(str::to_string).collect(),
        }),
        _ => Wiring::Gap(format!("the stack declares MSK but the endpoint did not create {}", missing.join(", "))),
    }
}

/// The SASL/SCRAM bootstrap brokers of a cluster (TLS), checked to be on the port the
/// stack opens ([`BROKER_PORT`]).
pub async fn scram_brokers(config: &SdkConfig, cluster_arn: &str) -> anyhow::Result<String> {
    let out = aws_sdk_kafka::Client::new(config)
        .get_bootstrap_brokers()
        .cluster_arn(cluster_arn)
        .send()
        .await
        .map_err(|e| aws_call_failed("MSK GetBootstrapBrokers", &e))?;
    let Some(brokers) = out.bootstrap_broker_string_sasl_scram().filter(|b| !b.is_empty()) else {
        bail!(
            "MSK cluster {cluster_arn} has no SASL/SCRAM bootstrap brokers \
             (is SCRAM client authentication on, with TLS between clients and brokers?)"
        )
    };
    let suffix = format!(":{BROKER_PORT}");
    if let Some(other) = brokers.split(',').find(|b| !b.trim().ends_with(&suffix)) {
        bail!("MSK reported SASL/SCRAM broker {other}, not on port {BROKER_PORT}");
    }
    Ok(brokers.to_string())
}

/// The secret's value and when it last changed.
struct SecretState {
    arn: String,
    value: Option<String>,
    changed: Option<DateTime>,
}

async fn secret_state(config: &SdkConfig, secret_id: &str) -> anyhow::Result<SecretState> {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let described = client
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| aws_call_failed("Secrets Manager DescribeSecret", &e))?;
    let value = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| aws_call_failed("Secrets Manager GetSecretValue", &e))?;
    Ok(SecretState {
        arn: described.arn().unwrap_or(secret_id).to_string(),
        value: value.secret_string().map(str::to_string),
        changed: described.last_changed_date().copied(),
    })
}

/// Whether `value_from` (of a task definition's secret) names the secret `arn`,
/// whole or one JSON key of it (`arn:...:key::`).
fn reads(value_from: &str, arn: &str) -> bool {
    value_from == arn || value_from.strip_prefix(arn).is_some_and(|rest| rest.starts_with(':'))
}

/// A service of the stack whose task definition reads the secret.
struct Reader {
    name: String,
    /// When its newest deployment was created.
    deployed: Option<DateTime>,
}

/// The stack's services whose current task definition reads the secret `arn`.
async fn readers(config: &SdkConfig, wiring: &BrokerWiring, arn: &str) -> anyhow::Result<Vec<Reader>> {
    let ecs = aws_sdk_ecs::Client::new(config);
    let mut found = Vec::new();
    for chunk in wiring.services.chunks(10) {
        let out = ecs
            .describe_services()
            .cluster(&wiring.ecs_cluster)
            .set_services(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| aws_call_failed("ECS DescribeServices", &e))?;
        if let Some(failure) = out.failures().first() {
            bail!(
                "ECS DescribeServices: {} {}",
                failure.arn().unwrap_or_default(),
                failure.reason().unwrap_or("failed")
            );
        }
        for service in out.services() {
            let task_definition = service.task_definition().context("an ECS service without a task definition")?;
            let described = ecs
                .describe_task_definition()
                .task_definition(task_definition)
                .send()
                .await
                .map_err(|e| aws_call_failed("ECS DescribeTaskDefinition", &e))?;
            let reads_secret = described.task_definition().is_some_and(|t| {
                t.container_definitions().iter().flat_map(|c| c.secrets()).any(|s| reads(s.value_from(), arn))
            });
            if reads_secret {
                found.push(Reader {
                    name: service.service_name().unwrap_or_default().to_string(),
                    deployed: service.deployments().iter().filter_map(|d| d.created_at()).max().copied(),
                });
            }
        }
    }
    Ok(found)
}

/// What the step found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Synced {
    pub brokers: String,
    /// Whether the secret was written (it held something else).
    pub written: bool,
    /// The services given a new deployment.
    pub rolled: Vec<String>,
}

/// Brings the secret to the cluster's SASL/SCRAM brokers and the services that read it to
/// the secret's value.
pub async fn sync(config: &SdkConfig, wiring: &BrokerWiring) -> anyhow::Result<Synced> {
    let brokers = scram_brokers(config, &wiring.cluster_arn).await?;
    let mut secret = secret_state(config, &wiring.secret_id).await?;
    let written = secret.value.as_deref() != Some(brokers.as_str());
    if written {
        aws_sdk_secretsmanager::Client::new(config)
            .put_secret_value()
            .secret_id(&wiring.secret_id)
            .secret_string(&brokers)
            .send()
            .await
            .map_err(|e| aws_call_failed("Secrets Manager PutSecretValue", &e))?;
        secret = secret_state(config, &wiring.secret_id).await?;
    }
    let ecs = aws_sdk_ecs::Client::new(config);
    let mut rolled = Vec::new();
    for reader in readers(config, wiring, &secret.arn).await? {
        // A reader started before the secret's last change holds an older value (also
        // when an earlier run wrote the secret and stopped before rolling).
        let stale = match (reader.deployed, secret.changed) {
            (Some(deployed), Some(changed)) => deployed < changed,
            _ => false,
        };
        if written || stale {
            ecs.update_service()
                .cluster(&wiring.ecs_cluster)
                .service(&reader.name)
                .force_new_deployment(true)
                .send()
                .await
                .map_err(|e| aws_call_failed("ECS UpdateService", &e))?;
            rolled.push(reader.name);
        }
    }
    rolled.sort();
    Ok(Synced { brokers, written, rolled })
}

/// For `status`: the cluster's SASL/SCRAM brokers and whether the secret holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    pub brokers: String,
    pub secret_matches: bool,
}

pub async fn inspect(config: &SdkConfig, wiring: &BrokerWiring) -> anyhow::Result<Inspection> {
    let brokers = scram_brokers(config, &wiring.cluster_arn).await?;
    let secret = secret_state(config, &wiring.secret_id).await?;
    Ok(Inspection { secret_matches: secret.value.as_deref() == Some(brokers.as_str()), brokers })
}

/// What the user must do when the endpoint cannot run the step (`moto`: why moto
/// cannot).
pub fn gap_advice(gap: &str, endpoint: &str, moto: bool) -> String {
    let why = if moto {
        " (moto's CloudFormation implements neither AWS::MSK::Cluster nor AWS::SecretsManager::Secret, \
         and moto has no GetBootstrapBrokers)"
    } else {
        ""
    };
    format!(
        "Kafka bootstrap brokers NOT wired on {endpoint}: {gap}{why}. {KAFKA_BOOTSTRAP_SECRET} keeps its \
         placeholder, so the Kafka clients find no broker. Deploy with -c msk=false -c kafka-brokers=HOST:PORT, \
         or to AWS (or LocalStack Pro) where the step runs."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resource(logical_id: &str, resource_type: &str, physical_id: &str) -> StackResource {
        StackResource {
            logical_id: logical_id.into(),
            resource_type: resource_type.into(),
            physical_id: physical_id.into(),
        }
    }

    #[test]
    fn a_secret_is_read_whole_or_by_key() {
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:Kafka-AbC123";
        assert!(reads(arn, arn));
        assert!(reads(&format!("{arn}:brokers::"), arn));
        assert!(!reads("arn:aws:secretsmanager:us-east-1:1:secret:Kafka-AbC1234", arn));
        assert!(!reads("arn:aws:secretsmanager:us-east-1:1:secret:Admin-x", arn));
    }

    #[test]
    fn wiring_needs_the_cluster_the_secret_and_the_ecs_cluster() {
        let msk = json!({ "Resources": { "KafkaCluster1": { "Type": res::MskCluster::NAME } } });
        assert_eq!(wiring("S", &json!({ "Resources": {} }), &[]), Wiring::NotDeclared);
        let secret_id = logical_id(&["S".to_string(), KAFKA_BOOTSTRAP_SECRET.to_string()]);
        let mut resources = vec![
            resource(&secret_id, res::Secret::NAME, "arn:secret"),
            resource("Cluster1", res::EcsCluster::NAME, "pulsetrack"),
            resource("Svc1", res::EcsService::NAME, "arn:svc1"),
        ];
        match wiring("S", &msk, &resources) {
            Wiring::Gap(gap) => assert!(gap.contains("AWS::MSK::Cluster") && !gap.contains("secret"), "{gap}"),
            other => panic!("{other:?}"),
        }
        resources.push(resource("KafkaCluster1", res::MskCluster::NAME, "arn:msk"));
        assert_eq!(
            wiring("S", &msk, &resources),
            Wiring::Ready(BrokerWiring {
                cluster_arn: "arn:msk".into(),
                secret_id: "arn:secret".into(),
                ecs_cluster: "pulsetrack".into(),
                services: vec!["arn:svc1".into()],
            })
        );
    }
}
