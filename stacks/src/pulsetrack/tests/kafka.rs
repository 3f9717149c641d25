//! Kafka: MSK's listener and client authentication, each client's own login, and
//! brokers given instead.

use std::ops::Not as _;

use super::*;

/// The login secret `service`'s task reads `var` from (a key of it): its logical id.
fn login_secret(t: &serde_json::Value, service: &str, var: Var, key: &str) -> String {
    let secrets = container(t, service)["Secrets"].as_array().cloned().unwrap_or_default();
    let value_from = secrets
        .into_iter()
        .find(|s| s["Name"] == var.name())
        .map(|s| s["ValueFrom"].clone())
        .unwrap_or_else(|| panic!("{service} reads {var} as a secret"));
    let parts = value_from["Fn::Join"][1].as_array().cloned().unwrap_or_default();
    assert_eq!(parts.get(1).and_then(|p| p.as_str()), Some(format!("{key}::").as_str()), "{service} {var}");
    parts[0]["Ref"].as_str().expect("a secret of the stack").to_string()
}

#[test]
fn each_kafka_client_logs_in_to_msk_as_itself_and_to_given_brokers_as_they_are() {
    let msk = synth(&[]);
    let given = synth(&[("msk", "false"), ("kafka-brokers", "10.0.9.9:9092")]);
    let key = of_type(&msk, "AWS::KMS::Key");
    assert_eq!(key.len(), 1, "the default profile's one key: the logins'");
    let mut logins = BTreeSet::new();
    for service in ["patient-service", "analytics-service"] {
        assert_eq!(env(&msk, service, settings::KAFKA_SECURITY_PROTOCOL), Some("sasl_ssl"), "{service}");
        assert_eq!(env(&given, service, settings::KAFKA_SECURITY_PROTOCOL), Some("plaintext"), "{service}");
        // MSK's certificates chain to Amazon's public CA: the system trust store.
        assert_eq!(env(&msk, service, settings::KAFKA_SSL_CA_FILE), None);
        let id = login_secret(&msk, service, settings::KAFKA_SASL_USERNAME, "username");
        assert_eq!(login_secret(&msk, service, settings::KAFKA_SASL_PASSWORD, "password"), id);
        let secret = &msk["Resources"][&id]["Properties"];
        assert_eq!(secret["Name"]["Fn::Sub"], format!("AmazonMSK_${{AWS::StackName}}_{service}"));
        let generated = &secret["GenerateSecretString"];
        assert_eq!(generated["SecretStringTemplate"], format!("{{\"username\":\"{service}\"}}"));
        assert_eq!(
            (generated["GenerateStringKey"].as_str(), generated["PasswordLength"].as_u64()),
            (Some("password"), Some(32))
        );
        assert!(secret["SecretString"].is_null(), "generated, not written in the template");
        assert_eq!(secret["KmsKeyId"]["Fn::GetAtt"][1], "Arn", "{service}: under a customer-managed key");
        assert!(execution_reads(&msk, service, &id), "{service} reads its login");
        let decrypt =
            execution_statements(&msk, service).into_iter().find(|s| s["Action"].to_string().contains("kms:Decrypt"));
        assert_eq!(decrypt.map(|s| s["Resource"].clone()), Some(secret["KmsKeyId"].clone()), "{service}");
        logins.insert(id);
        for var in [settings::KAFKA_SASL_USERNAME, settings::KAFKA_SASL_PASSWORD] {
            assert_eq!(env(&msk, service, var), None, "{service}: {var} in plain");
            assert!(container(&given, service)["Secrets"].to_string().contains(var.name()).not(), "{service}: {var}");
        }
    }
    assert_eq!(logins.len(), 2, "a login each");
    for service in SERVICES.map(|d| d.name) {
        let others: Vec<_> = logins.iter().filter(|id| execution_reads(&msk, service, id)).collect();
        assert!(others.len() <= 1, "{service} reads one login at most: {others:?}");
        if !["patient-service", "analytics-service"].contains(&service) {
            assert!(others.is_empty() && env(&msk, service, settings::KAFKA_SECURITY_PROTOCOL).is_none(), "{service}");
        }
    }
    for ty in ["AWS::KMS::Key", "AWS::MSK::BatchScramSecret"] {
        assert!(of_type(&given, ty).is_empty(), "{ty} without MSK");
    }
}

#[test]
fn production_encrypts_the_logins_with_its_secrets_key() {
    let t = production().synth().expect("valid");
    assert_eq!(of_type(&t, "AWS::KMS::Key").len(), 4, "no key of their own");
    let secrets_key = t["Resources"]
        .as_object()
        .expect("resources")
        .iter()
        .find(|(_, r)| r["Type"] == "AWS::KMS::Key" && r["Properties"]["Description"] == "PulseTrack secrets");
    let (secrets_key, _) = secrets_key.expect("the secrets key");
    for service in ["patient-service", "analytics-service"] {
        let id = login_secret(&t, service, settings::KAFKA_SASL_PASSWORD, "password");
        assert_eq!(t["Resources"][&id]["Properties"]["KmsKeyId"]["Fn::GetAtt"][0], secrets_key.as_str(), "{service}");
    }
}

#[test]
fn without_msk_the_brokers_come_from_context() {
    let t = synth(&[("msk", "false"), ("kafka-brokers", "10.0.9.9:9092")]);
    assert!(of_type(&t, "AWS::MSK::Cluster").is_empty());
    assert!(t.to_string().contains("10.0.9.9:9092"));
    let err = Context::from_pairs([("msk", "false")]).expect_err("brokers required");
    assert_eq!(err.key, "kafka-brokers");
}

#[test]
fn msk_takes_only_the_services_scram_logins_over_tls_on_9096() {
    let stack = stack(&[]);
    let (cluster_id, cluster) = stack.resources_of::<res::MskCluster>().next().expect("msk");
    let transit = &cluster.encryption_info.encryption_in_transit;
    assert_eq!((transit.client_broker.as_str(), transit.in_cluster), ("TLS", true));
    let auth = cluster.client_authentication.as_ref().expect("client authentication");
    assert!(auth.sasl.scram.enabled && !auth.unauthenticated.enabled);
    let (_, batch) = stack.resources_of::<res::MskBatchScramSecret>().next().expect("the cluster's logins");
    assert_eq!(batch.cluster_arn, Expr::Ref(cluster_id.to_string()));
    let names: BTreeSet<String> = batch
        .secret_arn_list
        .iter()
        .map(|arn| {
            let Expr::Ref(id) = arn else { panic!("{arn:?}") };
            let (_, secret) = stack.resources_of::<res::Secret>().find(|(s, _)| s == id).expect("a secret");
            format!("{:?}", secret.name)
        })
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.iter().any(|n| n.contains("AmazonMSK_${AWS::StackName}_patient-service")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("AmazonMSK_${AWS::StackName}_analytics-service")), "{names:?}");
    assert!(cluster.encryption_info.encryption_at_rest.is_none() && cluster.logging_info.is_none(), "default is cheap");
    let kafka_ports: BTreeSet<u16> = stack
        .resources_of::<res::SecurityGroupIngress>()
        .filter(|(_, r)| r.description.ends_with("to Kafka"))
        .map(|(_, r)| r.from_port)
        .collect();
    assert_eq!(kafka_ports, BTreeSet::from([crate::msk::BROKER_PORT]));
    assert_eq!(crate::msk::BROKER_PORT, 9096);
}
