//! The whole stack, synthesized with different contexts: what each part must hold
//! once they are assembled.

use std::collections::{BTreeMap, BTreeSet};

use pulsetrack_settings::{self as settings, Var};

use super::*;
use crate::core::{Expr, Stack};
use crate::rds;
use crate::resources as res;

mod kafka;
mod tls;

fn synth(pairs: &[(&str, &str)]) -> serde_json::Value {
    let ctx = Context::from_pairs(pairs.iter().copied()).expect("context");
    pulsetrack_stack("PulseTrack", &ctx).synth().expect("valid stack")
}

fn of_type<'a>(t: &'a serde_json::Value, ty: &str) -> Vec<&'a serde_json::Value> {
    t["Resources"].as_object().map(|m| m.values().filter(|r| r["Type"] == ty).collect()).unwrap_or_default()
}

#[test]
fn every_seed_resource_type_is_covered() {
    let t = synth(&[]);
    for ty in [
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::NatGateway",
        "AWS::EC2::EIP",
        "AWS::EC2::Route",
        "AWS::EC2::RouteTable",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::SecurityGroupIngress",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::ECS::Cluster",
        "AWS::ECS::Service",
        "AWS::ECS::TaskDefinition",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "AWS::ElasticLoadBalancingV2::Listener",
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::Logs::LogGroup",
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBSubnetGroup",
        "AWS::SecretsManager::Secret",
        "AWS::SecretsManager::SecretTargetAttachment",
        "AWS::ServiceDiscovery::PrivateDnsNamespace",
        "AWS::MSK::Cluster",
    ] {
        assert!(!of_type(&t, ty).is_empty(), "{ty} missing");
    }
    assert_eq!(of_type(&t, "AWS::ECS::Service").len(), 5);
    assert_eq!(of_type(&t, "AWS::RDS::DBInstance").len(), 4);
}

#[test]
fn the_listener_is_on_4004_and_fronts_the_gateway() {
    let t = synth(&[]);
    let listener = of_type(&t, "AWS::ElasticLoadBalancingV2::Listener")[0];
    assert_eq!(listener["Properties"]["Port"], 4004);
    let gateway = of_type(&t, "AWS::ECS::Service")
        .into_iter()
        .find(|s| s["Properties"]["ServiceName"] == "api-gateway")
        .expect("gateway");
    assert_eq!(gateway["Properties"]["LoadBalancers"][0]["ContainerPort"], 4004);
    assert_eq!(t["Outputs"]["GatewayUrl"]["Value"]["Fn::Sub"].as_str().map(|s| s.ends_with(":4004")), Some(true));
}

/// Variables whose names sound secret but are not: a password policy is its name.
const NOT_SECRETS: [Var; 1] = [settings::PASSWORD_POLICY];

#[test]
fn no_plain_text_secret_and_no_host_docker_internal() {
    let text = synth(&[]).to_string();
    assert!(!text.contains("host.docker.internal"));
    assert!(!text.contains("JWT_SECRET"));
    for task in of_type(&synth(&[]), "AWS::ECS::TaskDefinition") {
        let env = &task["Properties"]["ContainerDefinitions"][0]["Environment"];
        for var in env.as_array().into_iter().flatten() {
            let name = var["Name"].as_str().unwrap_or_default();
            let looks_secret = ["PASSWORD", "SECRET", "KEY"].iter().any(|word| name.contains(word));
            assert!(!looks_secret || NOT_SECRETS.map(Var::name).contains(&name), "{name} in plain environment");
        }
    }
}

#[test]
fn services_reach_rds_over_verified_tls_as_their_own_role() {
    let t = synth(&[]);
    let secrets: BTreeMap<String, &serde_json::Value> = t["Resources"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, r)| r["Type"] == "AWS::SecretsManager::Secret")
        .map(|(id, r)| (id.clone(), r))
        .collect();
    let with_database = of_type(&t, "AWS::ECS::TaskDefinition")
        .into_iter()
        .map(|task| &task["Properties"]["ContainerDefinitions"][0])
        .filter(|c| c["Environment"].to_string().contains("DATABASE_NAME"));
    let mut checked = 0;
    for container in with_database {
        let env = |name: &str| {
            container["Environment"].as_array().into_iter().flatten().find(|v| v["Name"] == name).map(|v| &v["Value"])
        };
        assert_eq!(env("DATABASE_SSL_MODE"), Some(&serde_json::json!("verify-full")));
        assert_eq!(env("DATABASE_SSL_ROOT_CERT"), Some(&serde_json::json!(rds::RDS_CA_BUNDLE_PATH)));
        let database = env("DATABASE_NAME").and_then(|v| v.as_str()).expect("name");
        // The secret a variable reads, and the username that secret is generated with.
        let username = |name: &str| {
            let secret = container["Secrets"].as_array().into_iter().flatten().find(|v| v["Name"] == name)?;
            let id = secret["ValueFrom"]["Fn::Join"][1][0]["Ref"].as_str()?;
            let template = secrets.get(id)?["Properties"]["GenerateSecretString"]["SecretStringTemplate"].as_str()?;
            Some((id.to_string(), template.to_string()))
        };
        let (app, app_template) = username("DATABASE_USER").expect("DATABASE_USER from a secret");
        let (master, master_template) = username("DATABASE_ADMIN_USER").expect("DATABASE_ADMIN_USER from a secret");
        assert_ne!(app, master);
        assert_eq!(username("DATABASE_PASSWORD").map(|u| u.0), Some(app));
        assert_eq!(username("DATABASE_ADMIN_PASSWORD").map(|u| u.0), Some(master));
        assert_eq!(app_template, format!("{{\"username\":\"{database}_app\"}}"));
        assert_eq!(master_template, "{\"username\":\"pulsetrack\"}");
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn ingress_rules_are_exactly_the_needed_ones() {
    let t = synth(&[]);
    let mut ports: Vec<u64> = of_type(&t, "AWS::EC2::SecurityGroupIngress")
        .iter()
        .filter_map(|r| r["Properties"]["FromPort"].as_u64())
        .collect();
    ports.sort_unstable();
    // ALB 4004 from anywhere, ALB->gw 4004, gw->4 services, the 3 other services ->
    // auth-service 4005 (keys and revocation feed), patient->billing 9001, 4 databases,
    // 2 Kafka clients.
    assert_eq!(ports, [4000, 4001, 4002, 4004, 4004, 4005, 4005, 4005, 4005, 5432, 5432, 5432, 5432, 9001, 9096, 9096]);
    let open: Vec<_> = of_type(&t, "AWS::EC2::SecurityGroupIngress")
        .into_iter()
        .filter(|r| r["Properties"]["CidrIp"] == "0.0.0.0/0")
        .collect();
    assert_eq!(open.len(), 1, "only the ALB listener is open to the internet");
}

#[test]
fn each_execution_role_pulls_only_its_own_ecr_repository() {
    let t = synth(&[]);
    let repositories = image_repositories_stack("PulseTrack").synth().expect("images stack");
    let names: Vec<String> = of_type(&repositories, "AWS::ECR::Repository")
        .iter()
        .filter_map(|r| r["Properties"]["RepositoryName"].as_str().map(str::to_string))
        .collect();
    let policies: Vec<_> = of_type(&t, "AWS::IAM::Policy")
        .into_iter()
        .filter(|p| p["Properties"]["PolicyName"].as_str().is_some_and(|n| n.ends_with("-execution")))
        .collect();
    assert_eq!(policies.len(), SERVICES.len());
    for policy in policies {
        let statements = policy["Properties"]["PolicyDocument"]["Statement"].as_array().expect("statements");
        let pull = statements
            .iter()
            .find(|s| s["Action"].to_string().contains("ecr:BatchGetImage"))
            .expect("a pull statement");
        let arn = pull["Resource"]["Fn::Sub"].as_str().expect("an ARN");
        let repository = arn.rsplit_once(":repository/").map(|(_, r)| r).expect("a repository ARN");
        assert!(names.iter().any(|n| n == repository), "{repository} is one of {names:?}");
        assert!(!repository.contains('*'), "no wildcard: {arn}");
    }
}

/// The container of `service`'s task definition.
fn container<'a>(t: &'a serde_json::Value, service: &str) -> &'a serde_json::Value {
    of_type(t, "AWS::ECS::TaskDefinition")
        .into_iter()
        .map(|task| &task["Properties"]["ContainerDefinitions"][0])
        .find(|c| c["Name"] == service)
        .unwrap_or_else(|| panic!("no task for {service}"))
}

/// A plain variable of `service`'s task.
fn env<'a>(t: &'a serde_json::Value, service: &str, var: Var) -> Option<&'a str> {
    let vars = container(t, service)["Environment"].as_array()?;
    vars.iter().find(|v| v["Name"] == var.name()).and_then(|v| v["Value"].as_str())
}

/// The generated secret `var` reads in auth-service's task, and no other task reads
/// it (as a secret or in plain): its logical id.
fn auth_service_alone_reads(t: &serde_json::Value, var: Var) -> String {
    only_these_read(t, var, &["auth-service"])
}

/// The generated secret (64 alphanumerics) `var` reads in the tasks of `readers`, all
/// the same one, and no other task reads it (as a secret or in plain): its logical id.
fn only_these_read(t: &serde_json::Value, var: Var, readers: &[&str]) -> String {
    let secret_of = |service: &str| {
        let secrets = container(t, service)["Secrets"].as_array().cloned().unwrap_or_default();
        secrets.into_iter().find(|s| s["Name"] == var.name()).map(|s| s["ValueFrom"].clone())
    };
    let value_from = secret_of(readers[0]).unwrap_or_else(|| panic!("{} reads {var} as a secret", readers[0]));
    for reader in readers {
        assert_eq!(secret_of(reader).as_ref(), Some(&value_from), "{reader} reads the same secret as {var}");
    }
    let id = value_from["Ref"].as_str().expect("the whole secret").to_string();
    let generated = &t["Resources"][&id]["Properties"]["GenerateSecretString"];
    assert_eq!(generated["PasswordLength"], 64, "{var}");
    assert_eq!(generated["ExcludePunctuation"], true, "{var}");
    assert!(
        t["Resources"][&id]["Properties"]["SecretString"].is_null(),
        "{var}: generated, not written in the template"
    );
    for service in SERVICES.map(|d| d.name) {
        assert_eq!(env(t, service, var), None, "{service}: {var} in plain environment");
        if !readers.contains(&service) {
            assert_eq!(secret_of(service), None, "{service}");
        }
    }
    id
}

/// Whether `service`'s execution role may read secret `id`.
fn execution_reads(t: &serde_json::Value, service: &str, id: &str) -> bool {
    execution_statements(t, service).iter().any(|s| {
        s["Action"].to_string().contains("secretsmanager:GetSecretValue") && s["Resource"].to_string().contains(id)
    })
}

/// The statements of `service`'s execution policy.
fn execution_statements(t: &serde_json::Value, service: &str) -> Vec<serde_json::Value> {
    let policy = of_type(t, "AWS::IAM::Policy")
        .into_iter()
        .find(|p| p["Properties"]["PolicyName"] == format!("{service}-execution"))
        .unwrap_or_else(|| panic!("no execution policy for {service}"));
    policy["Properties"]["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default()
}

#[test]
fn auth_service_alone_gets_the_generated_jwt_signing_secret() {
    let t = synth(&[]);
    auth_service_alone_reads(&t, settings::JWT_SIGNING_SECRET);
    assert_eq!(env(&t, "auth-service", settings::JWT_PRIVATE_KEY), None);
}

#[test]
fn auth_service_alone_gets_the_generated_mfa_encryption_key() {
    for t in [synth(&[]), production().synth().expect("valid")] {
        let id = auth_service_alone_reads(&t, settings::MFA_ENCRYPTION_KEY);
        assert_ne!(id, auth_service_alone_reads(&t, settings::JWT_SIGNING_SECRET), "a secret of its own");
        // Only auth-service's execution role may read it (and decrypt it, in production).
        for service in SERVICES.map(|d| d.name) {
            assert_eq!(execution_reads(&t, service, &id), service == "auth-service", "{service} reads {id}");
        }
    }
    // Under the key the JWT secret is under: the customer-managed one in production.
    let production = production();
    let key_of = |prefix: &str| {
        let mut secrets = production.resources_of::<res::Secret>();
        secrets.find(|(id, _)| id.starts_with(prefix)).map(|(_, s)| s.kms_key_id.clone()).expect(prefix)
    };
    assert!(key_of("MfaEncryptionKeySecret").is_some());
    assert_eq!(key_of("MfaEncryptionKeySecret"), key_of("JwtSigningSecret"));
    let statements = execution_statements(&production.synth().expect("valid"), "auth-service");
    assert!(statements.iter().any(|s| s["Action"].to_string().contains("kms:Decrypt")), "{statements:?}");
}

#[test]
fn patient_and_billing_services_alone_get_the_generated_billing_grpc_secret() {
    let readers = ["patient-service", "billing-service"];
    for t in [synth(&[]), production().synth().expect("valid")] {
        let id = only_these_read(&t, settings::BILLING_GRPC_SECRET, &readers);
        for other in [settings::JWT_SIGNING_SECRET, settings::MFA_ENCRYPTION_KEY] {
            assert_ne!(id, auth_service_alone_reads(&t, other), "a secret of its own");
        }
        // Only the two execution roles may read it.
        for service in SERVICES.map(|d| d.name) {
            assert_eq!(execution_reads(&t, service, &id), readers.contains(&service), "{service} reads {id}");
        }
        // Reflection stays off: the stack leaves GRPC_REFLECTION unset.
        assert_eq!(env(&t, "billing-service", settings::GRPC_REFLECTION), None);
    }
    let production = production();
    let mut secrets = production.resources_of::<res::Secret>();
    let key = secrets.find(|(id, _)| id.starts_with("BillingGrpcSecret")).map(|(_, s)| s.kms_key_id.clone());
    assert!(key.expect("the secret").is_some(), "under the secrets key in production");
}

#[test]
fn require_mfa_roles_follow_the_profile_unless_given() {
    let roles = |t: &serde_json::Value| env(t, "auth-service", settings::REQUIRE_MFA_ROLES).map(str::to_string);
    let production = |more: &[(&'static str, &'static str)]| {
        synth(&[[("profile", "production"), ("certificate-arn", CERTIFICATE)].as_slice(), more].concat())
    };
    assert_eq!(roles(&synth(&[])), None, "none by default: unset");
    assert_eq!(roles(&production(&[])).as_deref(), Some("ADMIN,AUDITOR"));
    assert_eq!(roles(&production(&[("require-mfa", "none")])), None);
    assert_eq!(roles(&production(&[("require-mfa", "ADMIN")])).as_deref(), Some("ADMIN"));
    let given = synth(&[("require-mfa", "CLINICIAN,BILLING")]);
    assert_eq!(roles(&given).as_deref(), Some("CLINICIAN,BILLING"));
    for service in SERVICES.map(|d| d.name).into_iter().filter(|s| *s != "auth-service") {
        assert_eq!(env(&given, service, settings::REQUIRE_MFA_ROLES), None, "{service}");
    }
}

#[test]
fn service_discovery_can_be_left_out_for_emulators() {
    let t = synth(&[("service-discovery", "false")]);
    assert!(of_type(&t, "AWS::ServiceDiscovery::Service").is_empty());
    assert!(of_type(&t, "AWS::ServiceDiscovery::PrivateDnsNamespace").is_empty());
    assert!(of_type(&t, "AWS::ECS::Service").iter().all(|s| s["Properties"]["ServiceRegistries"].is_null()));
    assert_eq!(of_type(&synth(&[]), "AWS::ServiceDiscovery::Service").len(), 5);
}

#[test]
fn synthesis_is_deterministic() {
    let a = serde_json::to_string(&synth(&[])).expect("json");
    let b = serde_json::to_string(&synth(&[])).expect("json");
    assert_eq!(a, b);
}

const CERTIFICATE: &str = "arn:aws:acm:eu-west-1:123456789012:certificate/3b1f6c1e-6f7a-4c55-9f0e-2b8d6f1c2a10";

fn stack(pairs: &[(&str, &str)]) -> Stack {
    pulsetrack_stack("PulseTrack", &Context::from_pairs(pairs.iter().copied()).expect("context"))
}

fn production() -> Stack {
    stack(&[("profile", "production"), ("certificate-arn", CERTIFICATE)])
}

/// The security group a GroupId expression names.
fn group(expr: &Expr) -> String {
    match expr {
        Expr::GetAtt(id, attr) if attr == "GroupId" => id.clone(),
        other => panic!("not a GroupId: {other:?}"),
    }
}

fn ingress(stack: &Stack) -> BTreeSet<(String, String, u16)> {
    stack
        .resources_of::<res::SecurityGroupIngress>()
        .filter_map(|(_, r)| Some((group(&r.group_id), group(r.source_security_group_id.as_ref()?), r.from_port)))
        .collect()
}

/// The security group of each ECS service, by service name.
fn service_groups(stack: &Stack) -> BTreeMap<String, String> {
    stack
        .resources_of::<res::EcsService>()
        .map(|(_, s)| (s.service_name.clone(), group(&s.network_configuration.awsvpc_configuration.security_groups[0])))
        .collect()
}

/// Walks the typed model from each URL setting to the service that answers it:
/// URL → NLB listener on the URL's port → its target group → the ECS service
/// registered there (container and port). Returns (caller, callee, port).
fn resolve_urls(stack: &Stack, nlb: &str) -> BTreeSet<(String, String, u16)> {
    let prefix = format!("https://${{{nlb}.DNSName}}:");
    let mut calls = BTreeSet::new();
    for (caller, container) in crate::ecs::containers(stack) {
        for var in &container.environment {
            let Expr::Sub(url) = &var.value else { continue };
            let Some(port) = url.strip_prefix(&prefix).and_then(|p| p.parse::<u16>().ok()) else { continue };
            let (listener_id, listener) = stack
                .resources_of::<res::Listener>()
                .find(|(_, l)| l.load_balancer_arn == Expr::Ref(nlb.into()) && l.port == port)
                .unwrap_or_else(|| panic!("{caller} {}: no listener on {port}", var.name));
            assert_eq!(listener.protocol, "TCP", "{listener_id}");
            let Some(Expr::Ref(group_id)) = &listener.default_actions[0].target_group_arn else {
                panic!("{listener_id} forwards nowhere")
            };
            let target_group = stack.resources_of::<res::TargetGroup>().find(|(id, _)| id == group_id).expect("tg").1;
            assert_eq!(target_group.port, port);
            let (service, registration) = stack
                .resources_of::<res::EcsService>()
                .find_map(|(_, s)| {
                    let lb = s.load_balancers.iter().find(|lb| lb.target_group_arn == Expr::Ref(group_id.clone()))?;
                    Some((s.service_name.clone(), lb.clone()))
                })
                .unwrap_or_else(|| panic!("no service registers in {group_id}"));
            assert_eq!((registration.container_name.as_str(), registration.container_port), (service.as_str(), port));
            calls.insert((caller.clone(), service, port));
        }
    }
    calls
}

#[test]
fn without_cloud_map_every_url_setting_reaches_its_callee_through_the_internal_nlb() {
    let stack = stack(&[("service-discovery", "false")]);
    let nlbs: Vec<_> = stack.resources_of::<res::LoadBalancer>().filter(|(_, lb)| lb.kind == "network").collect();
    assert_eq!(nlbs.len(), 1);
    let (nlb, balancer) = nlbs[0];
    assert_eq!(balancer.scheme, "internal");
    let expected: BTreeSet<_> = CALLS.iter().map(|&(f, t, p)| (f.to_string(), t.to_string(), p)).collect();
    assert_eq!(resolve_urls(&stack, nlb), expected);
    let text = stack.synth().expect("valid").to_string();
    assert!(!text.contains(&format!(".{NAMESPACE}:")), "no Cloud Map name without Cloud Map");
    // Least privilege: callers reach only the NLB, only the NLB reaches the callees.
    let nlb_group = group(&balancer.security_groups[0]);
    let groups = service_groups(&stack);
    let rules = ingress(&stack);
    for (from, to, port) in CALLS {
        assert!(rules.contains(&(nlb_group.clone(), groups[from].clone(), port)), "{from} -> NLB:{port}");
        assert!(rules.contains(&(groups[to].clone(), nlb_group.clone(), port)), "NLB -> {to}:{port}");
        assert!(!rules.contains(&(groups[to].clone(), groups[from].clone(), port)), "{from} -> {to} direct");
    }
    let to_nlb: Vec<_> = rules.iter().filter(|(to, _, _)| *to == nlb_group).collect();
    assert_eq!(to_nlb.len(), CALLS.len(), "the NLB admits exactly the calls: {to_nlb:?}");
}

#[test]
fn with_cloud_map_urls_and_rules_are_unchanged() {
    let stack = stack(&[]);
    assert!(stack.resources_of::<res::LoadBalancer>().all(|(_, lb)| lb.kind == "application"));
    assert_eq!(stack.resources_of::<res::TargetGroup>().count(), 1);
    let containers = crate::ecs::containers(&stack);
    for (from, to, port) in CALLS {
        let url = Expr::lit(format!("https://{to}.{NAMESPACE}:{port}"));
        assert!(containers[from].environment.iter().any(|v| v.value == url), "{from}: {url:?}");
    }
    let (groups, rules) = (service_groups(&stack), ingress(&stack));
    for (from, to, port) in CALLS {
        assert!(rules.contains(&(groups[to].clone(), groups[from].clone(), port)), "{from} -> {to}:{port}");
    }
}

#[test]
fn a_certificate_makes_the_entry_https_and_port_80_redirect() {
    let stack = stack(&[("certificate-arn", CERTIFICATE)]);
    assert!(stack.warnings().is_empty(), "{:?}", stack.warnings());
    let listeners: BTreeMap<u16, &res::Listener> =
        stack.resources_of::<res::Listener>().map(|(_, l)| (l.port, l)).collect();
    let entry = listeners[&GATEWAY_PORT];
    assert_eq!(entry.protocol, "HTTPS");
    assert_eq!(entry.ssl_policy.as_deref(), Some(crate::elb::TLS_POLICY));
    assert_eq!(entry.certificates[0].certificate_arn, Expr::lit(CERTIFICATE));
    let redirect = listeners[&80];
    assert_eq!(redirect.protocol, "HTTP");
    let config = redirect.default_actions[0].redirect_config.as_ref().expect("a redirect");
    assert_eq!(
        (config.protocol.as_str(), config.port.as_str(), config.status_code.as_str()),
        ("HTTPS", "4004", "HTTP_301")
    );
    let open: BTreeSet<u16> = stack
        .resources_of::<res::SecurityGroupIngress>()
        .filter(|(_, r)| r.cidr_ip.as_deref() == Some("0.0.0.0/0"))
        .map(|(_, r)| r.from_port)
        .collect();
    assert_eq!(open, BTreeSet::from([80, GATEWAY_PORT]));
    let url = stack.synth().expect("valid")["Outputs"]["GatewayUrl"]["Value"]["Fn::Sub"].clone();
    assert!(url.as_str().is_some_and(|u| u.starts_with("https://")), "{url}");
}

#[test]
fn without_a_certificate_the_plain_http_entry_is_a_warning() {
    let stack = stack(&[]);
    let kinds: Vec<_> = stack.warnings().iter().map(|w| w.kind.clone()).collect();
    assert_eq!(kinds, [crate::core::WarningKind::PlainHttpEntry { port: GATEWAY_PORT }]);
    assert!(stack.warnings()[0].to_string().contains("certificate-arn"));
    assert!(stack.resources_of::<res::Listener>().all(|(_, l)| l.protocol == "HTTP" && l.port == GATEWAY_PORT));
}

#[test]
fn production_requires_https_and_hardens_every_database_secret_and_log_group() {
    let err = Context::from_pairs([("profile", "production")]).expect_err("HTTPS required");
    assert_eq!(err.key, "certificate-arn");
    assert!(Context::from_pairs([("profile", "prod")]).is_err());
    assert!(Context::from_pairs([("certificate-arn", "arn:aws:iam::123456789012:role/x")]).is_err());
    let stack = production();
    assert!(stack.warnings().is_empty());
    assert_eq!(stack.resources_of::<res::KmsKey>().count(), 4);
    assert!(stack.resources_of::<res::KmsKey>().all(|(_, k)| k.enable_key_rotation));
    for (id, db) in stack.resources_of::<res::DbInstance>() {
        assert!(db.multi_az && db.deletion_protection && db.storage_encrypted, "{id}");
        assert!(db.hardening.kms_key_id.is_some() && db.hardening.monitoring_role_arn.is_some(), "{id}");
        assert_eq!(db.hardening.monitoring_interval, Some(crate::production::MONITORING_INTERVAL), "{id}");
    }
    assert!(stack.resources_of::<res::Secret>().all(|(_, s)| s.kms_key_id.is_some()));
    assert!(stack.resources_of::<res::LogGroup>().all(|(_, l)| l.kms_key_id.is_some()));
    let (_, cluster) = stack.resources_of::<res::MskCluster>().next().expect("msk");
    assert!(cluster.encryption_info.encryption_at_rest.is_some() && cluster.logging_info.is_some());
    // Every execution role that reads secrets may decrypt them, through Secrets Manager only.
    for (id, policy) in stack.resources_of::<res::IamPolicy>() {
        let text = serde_json::to_string(&policy.policy_document).expect("json");
        assert_eq!(text.contains("secretsmanager:GetSecretValue"), text.contains("kms:Decrypt"), "{id}");
    }
    let template = stack.synth().expect("valid");
    let (alb_id, alb) = stack.resources_of::<res::LoadBalancer>().next().expect("alb");
    let attribute = |key: &str| alb.load_balancer_attributes.iter().find(|a| a.key == key).map(|a| a.value.clone());
    assert_eq!(attribute("deletion_protection.enabled"), Some(Expr::lit("true")));
    assert_eq!(attribute("access_logs.s3.enabled"), Some(Expr::lit("true")));
    let (policy_id, _) =
        stack.resources_of::<res::BucketPolicy>().find(|(id, _)| id.contains("AccessLogs")).expect("bucket policy");
    assert_eq!(template["Resources"][alb_id]["DependsOn"], serde_json::json!([policy_id]));
    // The audit anchors are locked for six years, in compliance mode.
    let (_, anchors) =
        stack.resources_of::<res::Bucket>().find(|(_, b)| b.object_lock_enabled == Some(true)).expect("anchors");
    let retention = &anchors.object_lock_configuration.as_ref().expect("a default retention").rule.default_retention;
    assert_eq!((retention.mode.as_str(), retention.days), ("COMPLIANCE", 2190));
}

#[test]
fn the_default_profile_stays_cheap() {
    let stack = stack(&[]);
    // One customer-managed key: MSK accepts no login secret under the AWS-managed one.
    let keys: Vec<_> = stack.resources_of::<res::KmsKey>().map(|(_, k)| k.description.as_str()).collect();
    assert_eq!(keys, ["PulseTrack MSK logins"]);
    // One bucket: the audit trails' anchors (governance mode, 30 days).
    let buckets: Vec<_> =
        stack.resources_of::<res::Bucket>().map(|(_, b)| b.object_lock_configuration.clone()).collect();
    let retention =
        buckets.first().cloned().flatten().map(|c| (c.rule.default_retention.mode, c.rule.default_retention.days));
    assert_eq!((buckets.len(), retention), (1, Some(("GOVERNANCE".to_string(), 30))));
    assert!(stack.resources_of::<res::DbInstance>().all(|(_, db)| !db.multi_az && db.hardening == Default::default()));
    let logins = |s: &res::Secret| format!("{:?}", s.name).contains("AmazonMSK_");
    assert!(stack.resources_of::<res::Secret>().all(|(_, s)| s.kms_key_id.is_none() != logins(s)));
}

#[test]
fn every_service_has_one_container_with_its_ports() {
    let stack = pulsetrack_stack("PulseTrack", &Context::default());
    let containers = crate::ecs::containers(&stack);
    assert_eq!(containers.len(), SERVICES.len());
    assert_eq!(containers["billing-service"].ports(), [4001, 9001]);
    assert_eq!(containers["api-gateway"].ports(), [4004]);
    // Read back from the rendered template: the same containers.
    let template = crate::ecs::Template::read(&stack.synth().expect("valid")).expect("template");
    assert_eq!(template.containers(), containers);
}

/// The one AWS API a service calls is S3, to anchor its audit trail: each audited
/// service's task role may put and read objects in its own folder of the anchors bucket
/// and list that folder, nothing else (no delete, no other folder, no other bucket);
/// the gateway's holds no permission. Metrics go out as log lines. Whatever a service
/// comes to need is added here, with its reason.
#[test]
fn task_roles_hold_exactly_their_anchor_permissions() {
    let t = synth(&[]);
    let bucket = of_type(&t, "AWS::S3::Bucket");
    assert_eq!(bucket.len(), 1, "the anchors bucket");
    for task in of_type(&t, "AWS::ECS::TaskDefinition") {
        let role = task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0].as_str().expect("a role of the stack");
        let service = task["Properties"]["ContainerDefinitions"][0]["Name"].as_str().expect("a name");
        let properties = &t["Resources"][role]["Properties"];
        assert!(properties["ManagedPolicyArns"].is_null() && properties["Policies"].is_null(), "{role}");
        let policies: Vec<_> = of_type(&t, "AWS::IAM::Policy")
            .into_iter()
            .filter(|p| p["Properties"]["Roles"].to_string().contains(&format!("\"{role}\"")))
            .collect();
        if service == "api-gateway" {
            assert!(policies.is_empty(), "the gateway keeps no trail: {policies:?}");
            continue;
        }
        assert_eq!(policies.len(), 1, "{service}");
        let statements = policies[0]["Properties"]["PolicyDocument"]["Statement"].clone();
        let folder = format!("trails/{service}/*");
        let expected = serde_json::json!([
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
             "Resource": {"Fn::Sub": format!("${{AuditAnchorsBucket{}.Arn}}/{folder}", bucket_suffix(&t))}},
            {"Effect": "Allow", "Action": ["s3:ListBucket"],
             "Resource": {"Fn::Sub": format!("${{AuditAnchorsBucket{}.Arn}}", bucket_suffix(&t))},
             "Condition": {"StringLike": {"s3:prefix": [folder]}}},
        ]);
        assert_eq!(statements, expected, "{service}");
    }
}

/// The hash suffix of the anchors bucket's logical id.
fn bucket_suffix(t: &serde_json::Value) -> String {
    let resources = t["Resources"].as_object().expect("resources");
    let id = resources.keys().find(|id| id.starts_with("AuditAnchorsBucket")).expect("the anchors bucket");
    id.trim_start_matches("AuditAnchorsBucket").to_string()
}
