//! The bootstrap-broker step (deployer/src/kafka.rs) against an AWS endpoint: MSK's
//! GetBootstrapBrokers from the emulator fixture (moto has no MSK API), Secrets
//! Manager and ECS from moto's real implementations behind it.

mod support;

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{ContainerDefinition, Secret};
use deployer::{
    kafka::{self, BrokerWiring},
    target::Target,
};
use support::{
    Moto,
    aws_emulator::{AwsEmulator, ClusterBrokers},
};

const CLUSTER_ARN: &str =
    "arn:aws:kafka:us-east-1:123456789012:cluster/pulsetrack-kafka/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0-2";
const ECS_CLUSTER: &str = "pulsetrack";

fn brokers(port: u16, zone: &str) -> String {
    format!(
        "b-1.pulsetrack{zone}.kafka.us-east-1.amazonaws.com:{port},b-2.pulsetrack{zone}.kafka.us-east-1.amazonaws.com:{port}"
    )
}

/// Each service's primary deployment id (a forced new deployment changes it).
async fn deployments(ecs: &aws_sdk_ecs::Client, services: &[&str]) -> BTreeMap<String, String> {
    let out = ecs
        .describe_services()
        .cluster(ECS_CLUSTER)
        .set_services(Some(services.iter().map(|s| s.to_string()).collect()))
        .send()
        .await
        .expect("DescribeServices");
    out.services()
        .iter()
        .map(|s| {
            let primary = s.deployments().iter().find(|d| d.status() == Some("PRIMARY")).expect("a primary deployment");
            (s.service_name().unwrap_or_default().to_string(), primary.id().unwrap_or_default().to_string())
        })
        .collect()
}

async fn secret_value(secrets: &aws_sdk_secretsmanager::Client, id: &str) -> String {
    let out = secrets.get_secret_value().secret_id(id).send().await.expect("GetSecretValue");
    out.secret_string().unwrap_or_default().to_string()
}

async fn versions(secrets: &aws_sdk_secretsmanager::Client, id: &str) -> usize {
    secrets.list_secret_version_ids().secret_id(id).send().await.expect("ListSecretVersionIds").versions().len()
}

/// A service whose task definition reads `secrets` (name → secret ARN).
async fn service(ecs: &aws_sdk_ecs::Client, name: &str, secrets: &[(&str, &str)]) {
    let container = ContainerDefinition::builder()
        .name(name)
        .image(format!("registry.example/pulsetrack/{name}:1"))
        .memory(512)
        .set_secrets(Some(
            secrets
                .iter()
                .map(|(var, arn)| Secret::builder().name(*var).value_from(*arn).build().expect("secret"))
                .collect(),
        ))
        .build();
    ecs.register_task_definition()
        .family(name)
        .container_definitions(container)
        .send()
        .await
        .expect("RegisterTaskDefinition");
    ecs.create_service()
        .cluster(ECS_CLUSTER)
        .service_name(name)
        .task_definition(name)
        .desired_count(1)
        .send()
        .await
        .expect("CreateService");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_step_writes_the_scram_brokers_and_rolls_exactly_the_services_that_read_them() {
    let moto = Moto::start();
    let aws = AwsEmulator::start(&moto.url);
    let config = Target::Endpoint(aws.url.clone()).sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let ecs = aws_sdk_ecs::Client::new(&config);

    // What the stack creates: the placeholder secret, another secret, an ECS cluster
    // with two services reading the brokers' secret, one reading another, one none.
    let create = |name: &'static str, value: &'static str| {
        let secrets = secrets.clone();
        async move {
            let out = secrets.create_secret().name(name).secret_string(value).send().await.expect("CreateSecret");
            out.arn().expect("arn").to_string()
        }
    };
    let kafka_secret = create("KafkaBootstrapSecret3D88C25A-Ab12Cd", "pending: set to the MSK bootstrap brokers").await;
    let admin_secret = create("AdminPasswordSecret-Ef34Gh", "correct horse").await;
    ecs.create_cluster().cluster_name(ECS_CLUSTER).send().await.expect("CreateCluster");
    service(&ecs, "patient-service", &[("KAFKA_BROKERS", &kafka_secret)]).await;
    service(&ecs, "analytics-service", &[("ADMIN_PASSWORD", &admin_secret), ("KAFKA_BROKERS", &kafka_secret)]).await;
    service(&ecs, "auth-service", &[("ADMIN_PASSWORD", &admin_secret)]).await;
    service(&ecs, "api-gateway", &[]).await;
    let all = ["patient-service", "analytics-service", "auth-service", "api-gateway"];
    let scram = brokers(9096, "a");
    aws.set_cluster(
        CLUSTER_ARN,
        ClusterBrokers {
            plaintext: Some(brokers(9092, "a")),
            tls: Some(brokers(9094, "a")),
            sasl_scram: Some(scram.clone()),
        },
    );
    let wiring = BrokerWiring {
        cluster_arn: CLUSTER_ARN.into(),
        secret_id: kafka_secret.clone(),
        ecs_cluster: ECS_CLUSTER.into(),
        services: all.iter().map(|s| s.to_string()).collect(),
    };

    let before = deployments(&ecs, &all).await;
    let first = kafka::sync(&config, &wiring).await.expect("first run");
    assert_eq!(first.brokers, scram, "the SASL/SCRAM (9096) string, not the plaintext or unauthenticated one");
    assert!(first.written);
    assert_eq!(first.rolled, ["analytics-service", "patient-service"]);
    assert_eq!(secret_value(&secrets, &kafka_secret).await, scram);
    assert_eq!(secret_value(&secrets, &admin_secret).await, "correct horse", "the other secret is untouched");
    let after_first = deployments(&ecs, &all).await;
    for name in all {
        let rolled = before[name] != after_first[name];
        assert_eq!(rolled, first.rolled.iter().any(|r| r == name), "{name}: {before:?} -> {after_first:?}");
    }
    assert_eq!(aws.bootstrap_broker_calls(), 1);
    let inspected = kafka::inspect(&config, &wiring).await.expect("inspect");
    assert!(inspected.secret_matches && inspected.brokers == scram);

    // Again: the value is right and every reader started after it changed.
    let secret_versions = versions(&secrets, &kafka_secret).await;
    let second = kafka::sync(&config, &wiring).await.expect("second run");
    assert!(!second.written && second.rolled.is_empty(), "{second:?}");
    assert_eq!(deployments(&ecs, &all).await, after_first, "nothing rolled");
    assert_eq!(versions(&secrets, &kafka_secret).await, secret_versions, "nothing written");

    // The cluster's brokers change (a broker replaced): written and rolled again.
    let moved = brokers(9096, "b");
    aws.set_cluster(CLUSTER_ARN, ClusterBrokers { plaintext: None, tls: None, sasl_scram: Some(moved.clone()) });
    let inspected = kafka::inspect(&config, &wiring).await.expect("inspect");
    assert!(!inspected.secret_matches, "status sees the stale secret");
    let third = kafka::sync(&config, &wiring).await.expect("third run");
    assert!(third.written);
    assert_eq!(third.rolled, ["analytics-service", "patient-service"]);
    assert_eq!(secret_value(&secrets, &kafka_secret).await, moved);
    let after_third = deployments(&ecs, &all).await;
    assert_ne!(after_third["patient-service"], after_first["patient-service"]);
    assert_eq!(after_third["auth-service"], after_first["auth-service"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_without_a_scram_listener_or_unknown_to_msk_is_an_error() {
    let moto = Moto::start();
    let aws = AwsEmulator::start(&moto.url);
    let config = Target::Endpoint(aws.url.clone()).sdk_config().await;
    let secret = aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name("KafkaBootstrapSecret-x")
        .secret_string("pending")
        .send()
        .await
        .expect("CreateSecret");
    let wiring = BrokerWiring {
        cluster_arn: CLUSTER_ARN.into(),
        secret_id: secret.arn().expect("arn").into(),
        ecs_cluster: ECS_CLUSTER.into(),
        services: Vec::new(),
    };
    let unknown = kafka::sync(&config, &wiring).await.expect_err("no such cluster");
    assert!(format!("{unknown:#}").contains("GetBootstrapBrokers"), "{unknown:#}");
    // A cluster without SCRAM (its unauthenticated TLS listener only) is refused.
    aws.set_cluster(CLUSTER_ARN, ClusterBrokers { plaintext: None, tls: Some(brokers(9094, "a")), sasl_scram: None });
    let open = kafka::sync(&config, &wiring).await.expect_err("no SCRAM listener");
    assert!(format!("{open:#}").contains("no SASL/SCRAM bootstrap brokers"), "{open:#}");
    // Another port where the SCRAM listener is expected is refused, and nothing is written.
    aws.set_cluster(CLUSTER_ARN, ClusterBrokers { plaintext: None, tls: None, sasl_scram: Some(brokers(9094, "a")) });
    let elsewhere = kafka::sync(&config, &wiring).await.expect_err("not 9096");
    assert!(format!("{elsewhere:#}").contains("not on port 9096"), "{elsewhere:#}");
    let value = aws_sdk_secretsmanager::Client::new(&config)
        .get_secret_value()
        .secret_id(secret.arn().expect("arn"))
        .send()
        .await
        .expect("GetSecretValue");
    assert_eq!(value.secret_string(), Some("pending"));
}
