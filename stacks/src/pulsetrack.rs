//! The PulseTrack stack (an L3 pattern): VPC, ECS cluster, five Fargate services with
//! the api-gateway behind an internet-facing ALB on :4004, one RDS database per
//! service, MSK (optional), and only the security-group rules the services need.

use std::collections::{BTreeMap, BTreeSet};

use pulsetrack_settings::{self as settings, Settings, Var};

use crate::resources as res;
use crate::{
    core::{Expr, LogicalId, Scope, Stack},
    ec2::Vpc,
    ecr::Repository,
    ecs::{Cluster, ContainerSpec, FargateService},
    elb::{EntrySpec, InternalLoadBalancer, PublicLoadBalancer, Route},
    monitoring::{self, Monitoring},
    msk::{BROKER_PORT, KafkaCluster, KafkaHardening},
    production::Production,
    rds::{self, Database},
};

pub const GATEWAY_PORT: u16 = 4004;
/// The gateway's header-read (and idle keep-alive) timeout behind the ALB: 5 s more
/// than the ALB's idle timeout, so that the ALB always closes an idle connection first.
pub const GATEWAY_IDLE_TIMEOUT_MS: u32 = (crate::elb::ALB_IDLE_TIMEOUT_SECONDS + 5) * 1000;
pub const NAMESPACE: &str = "pulsetrack.local";

/// One PulseTrack service: its binary/container name, ports and database.
#[derive(Debug, Clone, Copy)]
pub struct ServiceDef {
    pub name: &'static str,
    pub construct: &'static str,
    pub http_port: u16,
    pub grpc_port: Option<u16>,
    pub database: Option<&'static str>,
    pub kafka: bool,
    pub cpu: u32,
    pub memory_mib: u32,
}

/// The services, in dependency order (what a service calls comes before it).
pub const SERVICES: [ServiceDef; 5] = [
    ServiceDef {
        name: "billing-service",
        construct: "BillingService",
        http_port: 4001,
        grpc_port: Some(9001),
        database: Some("billing_service"),
        kafka: false,
        cpu: 256,
        memory_mib: 512,
    },
    ServiceDef {
        name: "analytics-service",
        construct: "AnalyticsService",
        http_port: 4002,
        grpc_port: None,
        database: Some("analytics_service"),
        kafka: true,
        cpu: 256,
        memory_mib: 512,
    },
    ServiceDef {
        name: "auth-service",
        construct: "AuthService",
        http_port: 4005,
        grpc_port: None,
        database: Some("auth_service"),
        kafka: false,
        cpu: 256,
        memory_mib: 512,
    },
    ServiceDef {
        name: "patient-service",
        construct: "PatientService",
        http_port: 4000,
        grpc_port: None,
        database: Some("patient_service"),
        kafka: true,
        cpu: 256,
        memory_mib: 512,
    },
    ServiceDef {
        name: "api-gateway",
        construct: "ApiGateway",
        http_port: GATEWAY_PORT,
        grpc_port: None,
        database: None,
        kafka: false,
        cpu: 256,
        memory_mib: 512,
    },
];

/// Who calls whom, on which port: each becomes one ingress/egress rule pair, and the
/// URL setting of the caller ([`Wiring::call`]) is derived from the same entry.
pub const CALLS: [(&str, &str, u16); 5] = [
    ("api-gateway", "auth-service", 4005),
    ("api-gateway", "patient-service", 4000),
    ("api-gateway", "billing-service", 4001),
    ("api-gateway", "analytics-service", 4002),
    ("patient-service", "billing-service", 9001),
];

pub fn service(name: &str) -> Option<&'static ServiceDef> {
    SERVICES.iter().find(|s| s.name == name)
}

impl ServiceDef {
    pub fn ports(&self) -> Vec<u16> {
        std::iter::once(self.http_port).chain(self.grpc_port).collect()
    }
}

/// Synthesis context (`--context key=value`).
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub environment: String,
    pub image_registry: String,
    pub image_tag: String,
    pub desired_count: u32,
    /// Create an MSK cluster (the seed's `USE_MSK`); otherwise `kafka_brokers` is used.
    pub msk: bool,
    pub kafka_brokers: Option<String>,
    pub db_instance_class: String,
    pub admin_email: String,
    /// Cloud Map service discovery; off only for endpoints without Cloud Map (moto).
    pub service_discovery: bool,
    /// Pushed images by service (`host/path/service@sha256:…`), set by the deployer
    /// after it published them; a service without one is `image_registry/service:image_tag`.
    pub images: BTreeMap<String, String>,
    /// How hardened (and how expensive) the stack is.
    pub profile: Profile,
    /// An ACM certificate for the public entry: HTTPS on 4004 (and port 80 redirecting
    /// to it); without one the entry is plain HTTP, and synthesis warns.
    pub certificate_arn: Option<String>,
    /// What a self-signed-up account may do (`approval` unless set: an ADMIN grants roles).
    pub signup_mode: settings::SignupMode,
    /// Requests per second one caller may make through the gateway.
    pub rate_limit_per_second: u32,
}

/// The deployment profile (`-c profile=default|production`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Cheap, for LocalStack and demos: single-AZ databases, AWS-managed keys, no
    /// access logs, no deletion protection.
    #[default]
    Default,
    /// Multi-AZ databases, deletion protection, customer-managed KMS keys for the
    /// databases, secrets, logs and MSK, ALB access logs, RDS enhanced monitoring.
    /// Requires `certificate-arn`: a production entry is never plain HTTP.
    Production,
}

impl Profile {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "default" => Some(Self::Default),
            "production" => Some(Self::Production),
            _ => None,
        }
    }

    pub fn is_production(self) -> bool {
        self == Self::Production
    }
}

impl Default for Context {
    fn default() -> Self {
        Self {
            environment: "dev".into(),
            image_registry: "pulsetrack".into(),
            image_tag: "latest".into(),
            desired_count: 1,
            msk: true,
            kafka_brokers: None,
            db_instance_class: "db.t4g.micro".into(),
            admin_email: "admin@pulsetrack.local".into(),
            service_discovery: true,
            images: BTreeMap::new(),
            profile: Profile::Default,
            certificate_arn: None,
            signup_mode: settings::SignupMode::Approval,
            rate_limit_per_second: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("context {key}: {reason}")]
pub struct ContextError {
    pub key: String,
    pub reason: String,
}

/// The context keys `--context` accepts.
pub const CONTEXT_KEYS: [&str; 13] = [
    "environment",
    "image-registry",
    "image-tag",
    "desired-count",
    "msk",
    "kafka-brokers",
    "db-instance-class",
    "admin-email",
    "service-discovery",
    "profile",
    "certificate-arn",
    "signup-mode",
    "rate-limit",
];

impl Context {
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, ContextError> {
        let mut ctx = Self::default();
        let err = |key: &str, reason: &str| ContextError { key: key.into(), reason: reason.into() };
        for (key, value) in pairs {
            let value = value.trim();
            match key {
                "environment" if !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
                    ctx.environment = value.into()
                }
                "environment" => return Err(err(key, "letters, digits and '-' only")),
                "image-registry" if !value.is_empty() => ctx.image_registry = value.trim_end_matches('/').into(),
                "image-tag" if !value.is_empty() => ctx.image_tag = value.into(),
                "desired-count" => {
                    ctx.desired_count =
                        value.parse().ok().filter(|n| *n <= 10).ok_or_else(|| err(key, "an integer from 0 to 10"))?
                }
                "msk" => ctx.msk = value.parse().map_err(|_| err(key, "true or false"))?,
                "service-discovery" => ctx.service_discovery = value.parse().map_err(|_| err(key, "true or false"))?,
                "kafka-brokers" if !value.is_empty() => ctx.kafka_brokers = Some(value.into()),
                "db-instance-class" if value.starts_with("db.") => ctx.db_instance_class = value.into(),
                "admin-email" if value.contains('@') => ctx.admin_email = value.into(),
                "profile" => ctx.profile = Profile::parse(value).ok_or_else(|| err(key, "default or production"))?,
                "certificate-arn" if is_acm_certificate_arn(value) => ctx.certificate_arn = Some(value.into()),
                "certificate-arn" => {
                    return Err(err(
                        key,
                        "an ACM certificate ARN (arn:<partition>:acm:<region>:<account>:certificate/<id>)",
                    ));
                }
                "signup-mode" => ctx.signup_mode = value.parse().map_err(|e: String| err(key, &e))?,
                "rate-limit" => {
                    ctx.rate_limit_per_second = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| err(key, "requests per second per caller, a positive integer"))?
                }
                k if CONTEXT_KEYS.contains(&k) => return Err(err(key, "invalid value")),
                _ => return Err(err(key, &format!("unknown key; expected one of {}", CONTEXT_KEYS.join(", ")))),
            }
        }
        if !ctx.msk && ctx.kafka_brokers.is_none() {
            return Err(err("kafka-brokers", "required when msk=false (where the services find Kafka)"));
        }
        if ctx.profile.is_production() && ctx.certificate_arn.is_none() {
            return Err(err("certificate-arn", "required with profile=production (the public entry must be HTTPS)"));
        }
        Ok(ctx)
    }

    pub fn image(&self, service: &str) -> String {
        match self.images.get(service) {
            Some(pushed) => pushed.clone(),
            None => format!("{}/{service}:{}", self.image_registry, self.image_tag),
        }
    }
}

/// `arn:<partition>:acm:<region>:<account>:certificate/<id>`.
fn is_acm_certificate_arn(value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    matches!(parts[..], ["arn", partition, "acm", region, account, resource]
        if !partition.is_empty() && !region.is_empty() && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource.strip_prefix("certificate/").is_some_and(|id| !id.is_empty()))
}

/// The stack of the images' ECR repositories (`<name>Images`), deployed before the
/// main stack so that its task definitions can name pushed images (as `cdk bootstrap`
/// provides CDK's asset repository). Outputs `<Construct>RepositoryUri`.
pub fn image_repositories_stack(name: &str) -> Stack {
    let mut stack = Stack::new(format!("{name}Images"), format!("PulseTrack service images of stack {name}"));
    let mut scope = stack.scope();
    for def in &SERVICES {
        let repository =
            Repository::new(&mut scope, &format!("{}Repository", def.construct), &ecr_repository_name(name, def));
        scope.add_output(&repository_output(def), &format!("ECR repository of {}", def.name), repository.uri());
    }
    stack
}

/// The ECR repository of `def`'s image in stack `stack`: `<stack>/<service>`, lower case.
pub fn ecr_repository_name(stack: &str, def: &ServiceDef) -> String {
    format!("{}/{}", stack.to_lowercase(), def.name)
}

/// The output of [`image_repositories_stack`] that holds `def`'s repository URI.
pub fn repository_output(def: &ServiceDef) -> String {
    format!("{}RepositoryUri", def.construct)
}

/// Builds the whole stack.
pub fn pulsetrack_stack(name: &str, ctx: &Context) -> Stack {
    let mut stack = Stack::new(name, format!("PulseTrack patient management ({})", ctx.environment));
    let mut root = stack.scope();
    let production = build(&mut root, ctx);
    if let Some(production) = production {
        production.encrypt(&mut stack);
    }
    stack
}

fn build(scope: &mut Scope<'_>, ctx: &Context) -> Option<Production> {
    let vpc = Vpc::new(scope, "Vpc", "10.0.0.0/16", 2);
    let production = ctx.profile.is_production().then(|| Production::new(scope, "Production"));
    let cluster = Cluster::new(scope, "Cluster", &vpc, ctx.service_discovery.then_some(NAMESPACE));
    let entry = EntrySpec {
        port: GATEWAY_PORT,
        target_port: GATEWAY_PORT,
        health_path: "/health".into(),
        certificate_arn: ctx.certificate_arn.clone(),
        deletion_protection: production.is_some(),
        access_logs: production.as_ref().map(Production::alb_access_logs),
    };
    let alb = PublicLoadBalancer::new(scope, "PublicAlb", &vpc, &entry);
    let kafka_hardening = production.as_ref().map(|p| KafkaHardening { storage_key: p.keys.msk.arn() });
    let kafka =
        ctx.msk.then(|| KafkaCluster::new(scope, "Kafka", &vpc, (2, "kafka.t3.small"), kafka_hardening.as_ref()));
    let addresses = if ctx.service_discovery {
        Addresses::CloudMap
    } else {
        Addresses::Internal(InternalLoadBalancer::new(scope, "InternalNlb", &vpc, &internal_routes()))
    };
    let shared = SharedSettings::new(scope, ctx, kafka.is_some(), production.as_ref());
    let mut system = Services::default();
    for def in &SERVICES {
        system.add(scope, ctx, def, &shared, (&vpc, &cluster, &alb, &addresses));
    }
    system.connect(scope, &alb, kafka.as_ref(), &addresses);
    system.outputs(scope, &alb, kafka.as_ref(), &cluster);
    let databases: Vec<(&str, &Database)> = system.databases.iter().map(|(name, db)| (*name, db)).collect();
    Monitoring::new(scope, &alb, &databases);
    if let Some(profile) = production.as_ref().map(Production::database_profile) {
        system.databases.values().for_each(|db| db.harden(scope, &profile));
    }
    production
}

/// How a service finds the services it calls ([`CALLS`]).
pub enum Addresses {
    /// `http://<callee>.pulsetrack.local:<port>`: Cloud Map A records of the callee's tasks.
    CloudMap,
    /// `http://<nlb-dns>:<port>`: an internal NLB listener forwarding to the callee
    /// (where there is no Cloud Map, such as moto).
    Internal(InternalLoadBalancer),
}

impl Addresses {
    fn url(&self, callee: &str, port: u16) -> Expr {
        match self {
            Addresses::CloudMap => Expr::lit(format!("http://{callee}.{NAMESPACE}:{port}")),
            Addresses::Internal(nlb) => nlb.url(port),
        }
    }
}

/// The internal load balancer's listeners: one per called port of [`CALLS`].
fn internal_routes() -> Vec<Route> {
    CALLS
        .iter()
        .map(|&(_, callee, port)| Route {
            callee,
            port,
            health_path: service(callee).filter(|d| d.http_port == port).map(|_| "/health"),
        })
        .collect()
}

/// Construct id of the secret that holds the MSK bootstrap brokers (the deployer
/// fills it after each deploy).
pub const KAFKA_BOOTSTRAP_SECRET: &str = "KafkaBootstrapSecret";

/// Settings several services share (or secrets the stack generates): where Kafka is,
/// the admin's password, the JWT signing secret.
struct SharedSettings {
    kafka_brokers: TaskValue,
    admin_password: TaskValue,
    /// The key every secret is encrypted with (the production profile).
    secrets_key: Option<Expr>,
    jwt_signing_secret: TaskValue,
}

impl SharedSettings {
    fn new(scope: &mut Scope<'_>, ctx: &Context, msk: bool, production: Option<&Production>) -> Self {
        // With MSK the bootstrap brokers are not a CloudFormation attribute: the deployer
        // writes them into this secret after each deploy (deployer/src/kafka.rs).
        let kafka_brokers = match (msk, &ctx.kafka_brokers) {
            (true, _) => {
                let secret = scope.add(
                    KAFKA_BOOTSTRAP_SECRET,
                    res::Secret {
                        description: "MSK bootstrap brokers (GetBootstrapBrokers), set after the cluster exists".into(),
                        generate_secret_string: None,
                        secret_string: Some(
                            "pending: set to the MSK bootstrap brokers after the cluster exists".into(),
                        ),
                        kms_key_id: None,
                    },
                );
                TaskValue::secret(&secret)
            }
            (false, Some(brokers)) => TaskValue::plain(brokers.as_str()),
            (false, None) => TaskValue::Unset,
        };
        let admin_secret = scope
            .add("AdminPasswordSecret", alphanumeric_secret("Password of the seeded PulseTrack ADMIN account", 24));
        // auth-service derives its token signing key from this (HKDF); 64 alphanumerics
        // are 380 bits. A PEM cannot be generated by Secrets Manager, a string can.
        let jwt_secret = scope.add(
            "JwtSigningSecret",
            alphanumeric_secret("Secret from which auth-service derives its JWT signing key", 64),
        );
        Self {
            kafka_brokers,
            admin_password: TaskValue::secret(&admin_secret),
            jwt_signing_secret: TaskValue::secret(&jwt_secret),
            secrets_key: production.map(|p| p.keys.secrets.arn()),
        }
    }
}

/// A secret Secrets Manager generates: `length` letters and digits.
fn alphanumeric_secret(description: &str, length: u32) -> res::Secret {
    res::Secret {
        description: description.into(),
        generate_secret_string: Some(res::GenerateSecretString {
            password_length: length,
            exclude_punctuation: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The five services, their databases, and the calls their settings make.
#[derive(Default)]
struct Services {
    databases: BTreeMap<&'static str, Database>,
    services: BTreeMap<&'static str, FargateService>,
    calls: BTreeSet<(&'static str, &'static str)>,
}

impl Services {
    /// One service: its database (if any), its task environment, its Fargate service.
    fn add(
        &mut self,
        scope: &mut Scope<'_>,
        ctx: &Context,
        def: &'static ServiceDef,
        shared: &SharedSettings,
        (vpc, cluster, alb, addresses): (&Vpc, &Cluster, &PublicLoadBalancer, &Addresses),
    ) {
        let database = def
            .database
            .map(|name| Database::new(scope, &format!("{}Db", def.construct), vpc, name, &ctx.db_instance_class));
        let mut wiring = Wiring {
            scope,
            ctx,
            def,
            database: database.as_ref(),
            kafka_brokers: &shared.kafka_brokers,
            admin_password: &shared.admin_password,
            addresses,
            jwt_signing_secret: &shared.jwt_signing_secret,
            public_cidrs: &vpc.public_cidrs,
            calls: &mut self.calls,
        };
        let task = task_environment(&mut wiring);
        if let Some(db) = database {
            self.databases.insert(def.name, db);
        }
        let spec = ContainerSpec {
            name: def.name.into(),
            image: ctx.image(def.name),
            cpu: def.cpu,
            memory_mib: def.memory_mib,
            ports: def.ports(),
            environment: task.environment,
            secrets: task.secrets,
            secret_arns: task.secret_arns,
            secrets_key: shared.secrets_key.clone(),
            ecr_repository: ecr_repository_name(scope.stack_name(), def),
            desired_count: ctx.desired_count,
            log_retention_days: 30,
        };
        let mut targets: Vec<_> =
            (def.http_port == GATEWAY_PORT).then(|| alb.target(GATEWAY_PORT)).into_iter().collect();
        if let Addresses::Internal(nlb) = addresses {
            targets.extend(nlb.targets(def.name));
        }
        let service = FargateService::new(scope, def.construct, cluster, vpc, spec, targets);
        self.services.insert(def.name, service);
    }

    /// Security-group rules: exactly the calls the settings make (through the internal
    /// NLB when there is one: callers to it, it to the callee), the ALB to the gateway,
    /// each service to its own database, Kafka clients to the brokers.
    fn connect(
        &self,
        scope: &mut Scope<'_>,
        alb: &PublicLoadBalancer,
        kafka: Option<&KafkaCluster>,
        addresses: &Addresses,
    ) {
        let mut rules = scope.child("Rules");
        let mut nlb_ports = BTreeSet::new();
        let gateway = SERVICES.iter().find(|d| d.http_port == GATEWAY_PORT);
        if let Some((name, service)) = gateway.and_then(|d| Some((d.name, self.services.get(d.name)?))) {
            let why = format!("ALB to {name}");
            service.security_group.allow_from(&mut rules, &alb.security_group, GATEWAY_PORT, &why);
        }
        for (from, to, port) in CALLS {
            if !self.calls.contains(&(from, to)) {
                rules.error(format!("call {from} -> {to}: no setting of {from} uses it"));
            }
            match (self.services.get(from), self.services.get(to)) {
                (Some(caller), Some(callee)) if callee.spec.ports.contains(&port) => {
                    let why = format!("{from} to {to}");
                    match addresses {
                        Addresses::CloudMap => {
                            callee.security_group.allow_from(&mut rules, &caller.security_group, port, &why)
                        }
                        Addresses::Internal(nlb) => {
                            nlb.security_group.allow_from(&mut rules, &caller.security_group, port, &why);
                            if nlb_ports.insert(port) {
                                let why = format!("internal load balancer to {to}");
                                callee.security_group.allow_from(&mut rules, &nlb.security_group, port, &why);
                            }
                        }
                    }
                }
                _ => rules.error(format!("call {from} -> {to}:{port} does not match a port of {to}")),
            }
        }
        for (name, db) in &self.databases {
            if let Some(service) = self.services.get(name) {
                let why = format!("{name} to its database");
                db.security_group.allow_from(&mut rules, &service.security_group, 5432, &why);
            }
        }
        if let Some(kafka) = kafka {
            for def in SERVICES.iter().filter(|d| d.kafka) {
                if let Some(service) = self.services.get(def.name) {
                    let why = format!("{} to Kafka", def.name);
                    kafka.security_group.allow_from(&mut rules, &service.security_group, BROKER_PORT, &why);
                }
            }
        }
    }

    fn outputs(
        &self,
        scope: &mut Scope<'_>,
        alb: &PublicLoadBalancer,
        kafka: Option<&KafkaCluster>,
        cluster: &Cluster,
    ) {
        let health_check = alb.health_check(scope, "GatewayHealthCheck", "/health");
        scope.add_output("GatewayHealthCheckId", "Route 53 health check of the public entry", health_check.r#ref());
        scope.add_output("LoadBalancerDns", "DNS name of the public load balancer", alb.dns_name());
        scope.add_output("GatewayUrl", "PulseTrack's public entry", alb.url());
        for (name, db) in &self.databases {
            let id: String = name.split('-').map(|w| format!("{}{}", &w[..1].to_uppercase(), &w[1..])).collect();
            let description = format!("Endpoint of {name}'s database");
            scope.add_output(&format!("{id}DbEndpoint"), &description, db.endpoint_address());
        }
        if let Some(kafka) = kafka {
            scope.add_output("KafkaClusterArn", "ARN of the MSK cluster", kafka.cluster.r#ref());
        }
        scope.add_output("ClusterName", "ECS cluster", cluster.id.r#ref());
    }
}

/// A setting's value in a task definition.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskValue {
    /// In `Environment`.
    Plain(Expr),
    /// In `Secrets`: its `ValueFrom`, and the ARN of the secret it reads (which the
    /// execution role is granted).
    Secret { value_from: Expr, arn: Expr },
    /// Not set: the service's default applies.
    Unset,
}

impl TaskValue {
    pub fn plain(value: impl Into<Expr>) -> Self {
        Self::Plain(value.into())
    }

    /// The whole string of a Secrets Manager secret.
    pub fn secret(secret: &LogicalId) -> Self {
        Self::Secret { value_from: secret.r#ref(), arn: secret.r#ref() }
    }
}

/// A whole group left to the services' defaults (the `tuning` groups).
fn unset<S: Settings<TaskValue>>() -> S {
    S::from_fn(|_| TaskValue::Unset)
}

/// A task definition's `Environment`, `Secrets` and the secrets' ARNs.
#[derive(Debug, Default)]
struct TaskEnvironment {
    environment: Vec<(String, Expr)>,
    secrets: Vec<(String, Expr)>,
    secret_arns: Vec<Expr>,
}

/// Renders a service's settings: plain and secret values in declaration order, each
/// secret's ARN once.
fn render(settings: &impl Settings<TaskValue>) -> TaskEnvironment {
    let mut task = TaskEnvironment::default();
    for (var, value) in settings.vars() {
        match value {
            TaskValue::Plain(value) => task.environment.push((var.name().into(), value.clone())),
            TaskValue::Secret { value_from, arn } => {
                task.secrets.push((var.name().into(), value_from.clone()));
                if !task.secret_arns.contains(arn) {
                    task.secret_arns.push(arn.clone());
                }
            }
            TaskValue::Unset => {}
        }
    }
    task
}

/// Each service's settings, every field filled: a variable added to a service's
/// settings does not compile until it is filled here.
fn task_environment(w: &mut Wiring<'_, '_>) -> TaskEnvironment {
    match w.def.name {
        "billing-service" => render(&settings::BillingService {
            listen: w.listen(),
            logging: logging(),
            grpc_port: w.grpc_port(),
            database: w.database(),
        }),
        "analytics-service" => render(&settings::AnalyticsService {
            listen: w.listen(),
            logging: logging(),
            database: w.database(),
            kafka: w.kafka(),
            tuning: unset(),
        }),
        "auth-service" => render(&settings::AuthService {
            listen: w.listen(),
            logging: logging(),
            database: w.database(),
            admin: settings::Admin {
                email: TaskValue::plain(w.ctx.admin_email.as_str()),
                password: w.admin_password.clone(),
            },
            jwt_signing_secret: w.jwt_signing_secret.clone(),
            signup_mode: TaskValue::plain(w.ctx.signup_mode.as_str()),
            tuning: unset(),
        }),
        "patient-service" => render(&settings::PatientService {
            listen: w.listen(),
            logging: logging(),
            database: w.database(),
            kafka: w.kafka(),
            billing_grpc_url: w.call("billing-service"),
            cloudwatch_metrics_namespace: TaskValue::plain(monitoring::METRICS_NAMESPACE),
            tuning: unset(),
        }),
        "api-gateway" => render(&settings::ApiGateway {
            listen: w.listen(),
            logging: logging(),
            auth_service_url: w.call("auth-service"),
            patient_service_url: w.call("patient-service"),
            billing_service_url: w.call("billing-service"),
            analytics_service_url: w.call("analytics-service"),
            rate_limit_per_second: TaskValue::plain(w.ctx.rate_limit_per_second.to_string()),
            // The ALB's nodes, in the public subnets: X-Forwarded-For only from them.
            trusted_proxies: TaskValue::plain(w.public_cidrs.join(",")),
            tuning: unset(),
        }),
        other => {
            w.error(format!("{other} has no settings"));
            TaskEnvironment::default()
        }
    }
}

fn logging() -> settings::Logging<TaskValue> {
    // No collector runs in the stack (yet): spans are not exported, trace ids are logged.
    settings::Logging {
        format: TaskValue::plain("json"),
        filter: TaskValue::plain("info"),
        otlp_endpoint: TaskValue::Unset,
    }
}

/// What one service's settings are made of: the shared resources, its database, and
/// the calls the settings make (each must be in [`CALLS`]).
struct Wiring<'w, 'a> {
    scope: &'w mut Scope<'a>,
    ctx: &'w Context,
    def: &'w ServiceDef,
    database: Option<&'w Database>,
    kafka_brokers: &'w TaskValue,
    admin_password: &'w TaskValue,
    addresses: &'w Addresses,
    jwt_signing_secret: &'w TaskValue,
    public_cidrs: &'w [String],
    calls: &'w mut BTreeSet<(&'static str, &'static str)>,
}

impl Wiring<'_, '_> {
    fn error(&mut self, message: String) {
        self.scope.error(format!("{}: {message}", self.def.name));
    }

    fn listen(&self) -> settings::Listen<TaskValue> {
        let mut tuning: settings::ListenTuning<TaskValue> = unset();
        if self.def.name == "api-gateway" {
            // Behind the ALB: keep idle connections longer than the ALB does.
            tuning.header_read_timeout_ms = TaskValue::plain(GATEWAY_IDLE_TIMEOUT_MS.to_string());
        }
        settings::Listen {
            host: TaskValue::plain("0.0.0.0"),
            port: TaskValue::plain(self.def.http_port.to_string()),
            tuning,
        }
    }

    fn grpc_port(&mut self) -> TaskValue {
        match self.def.grpc_port {
            Some(port) => TaskValue::plain(port.to_string()),
            None => self.missing(settings::GRPC_PORT, "no gRPC port"),
        }
    }

    fn database(&mut self) -> settings::Database<TaskValue> {
        let Some(db) = self.database else {
            self.missing(settings::DATABASE_NAME, "no database");
            return unset();
        };
        // The service serves as its own role (the app secret); the master credentials
        // only run its migrations and create that role. TLS with the certificate checked.
        let key = |secret: &LogicalId, key: &str| TaskValue::Secret {
            value_from: Expr::Join(":".into(), vec![secret.r#ref(), format!("{key}::").into()]),
            arn: secret.r#ref(),
        };
        settings::Database {
            host: TaskValue::Plain(db.endpoint_address()),
            port: TaskValue::Plain(db.instance.attr(res::DbInstanceAttr::EndpointPort)),
            name: TaskValue::plain(db.database_name.as_str()),
            user: key(&db.app_secret, "username"),
            password: key(&db.app_secret, "password"),
            ssl_mode: TaskValue::plain(rds::RDS_SSL_MODE),
            ssl_root_cert: TaskValue::plain(rds::RDS_CA_BUNDLE_PATH),
            admin_user: key(&db.secret, "username"),
            admin_password: key(&db.secret, "password"),
            tuning: unset(),
        }
    }

    fn kafka(&mut self) -> settings::Kafka<TaskValue> {
        if !self.def.kafka {
            self.missing(settings::KAFKA_BROKERS, "kafka: false");
        }
        settings::Kafka {
            brokers: self.kafka_brokers.clone(),
            replication_factor: TaskValue::plain(if self.ctx.msk { "2" } else { "1" }),
            // MSK's brokers speak TLS only (9094), with certificates from Amazon's public
            // CA, so the system trust store verifies them; other brokers as they are.
            security_protocol: TaskValue::plain(
                if self.ctx.msk {
                    settings::KafkaSecurityProtocol::Ssl
                } else {
                    settings::KafkaSecurityProtocol::Plaintext
                }
                .as_str(),
            ),
            tuning: unset(),
        }
    }

    /// The URL of `callee` on the port of the [`CALLS`] entry (whose rule lets the call through).
    fn call(&mut self, callee: &'static str) -> TaskValue {
        let from = self.def.name;
        match CALLS.iter().find(|(caller, to, _)| *caller == from && *to == callee) {
            Some(&(caller, to, port)) => {
                self.calls.insert((caller, to));
                TaskValue::Plain(self.addresses.url(to, port))
            }
            None => {
                self.error(format!(
                    "its settings call {callee}, but CALLS has no {from} -> {callee} (no rule allows it)"
                ));
                TaskValue::Unset
            }
        }
    }

    /// A setting the service's [`ServiceDef`] has no value for.
    fn missing(&mut self, var: Var, reason: &str) -> TaskValue {
        self.error(format!("{var} is in its settings, but its ServiceDef has {reason}"));
        TaskValue::Unset
    }
}

/// The security group rule pairs a stack holds, for tests and reports.
pub fn rule_count(stack: &Stack) -> usize {
    stack.resources_of::<res::SecurityGroupIngress>().count()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn no_plain_text_secret_and_no_host_docker_internal() {
        let text = synth(&[]).to_string();
        assert!(!text.contains("host.docker.internal"));
        assert!(!text.contains("JWT_SECRET"));
        for task in of_type(&synth(&[]), "AWS::ECS::TaskDefinition") {
            let env = &task["Properties"]["ContainerDefinitions"][0]["Environment"];
            for var in env.as_array().into_iter().flatten() {
                let name = var["Name"].as_str().unwrap_or_default();
                assert!(!name.contains("PASSWORD") && !name.contains("SECRET"), "{name} in plain environment");
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
                container["Environment"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|v| v["Name"] == name)
                    .map(|v| &v["Value"])
            };
            assert_eq!(env("DATABASE_SSL_MODE"), Some(&serde_json::json!("verify-full")));
            assert_eq!(env("DATABASE_SSL_ROOT_CERT"), Some(&serde_json::json!(rds::RDS_CA_BUNDLE_PATH)));
            let database = env("DATABASE_NAME").and_then(|v| v.as_str()).expect("name");
            // The secret a variable reads, and the username that secret is generated with.
            let username = |name: &str| {
                let secret = container["Secrets"].as_array().into_iter().flatten().find(|v| v["Name"] == name)?;
                let id = secret["ValueFrom"]["Fn::Join"][1][0]["Ref"].as_str()?;
                let template =
                    secrets.get(id)?["Properties"]["GenerateSecretString"]["SecretStringTemplate"].as_str()?;
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
        // ALB 4004 from anywhere, ALB->gw 4004, gw->4 services, patient->billing 9001,
        // 4 databases, 2 Kafka clients.
        assert_eq!(ports, [4000, 4001, 4002, 4004, 4004, 4005, 5432, 5432, 5432, 5432, 9001, 9094, 9094]);
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
        let policies = of_type(&t, "AWS::IAM::Policy");
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

    #[test]
    fn kafka_clients_use_tls_to_msk_and_plaintext_to_given_brokers() {
        let msk = synth(&[]);
        let given = synth(&[("msk", "false"), ("kafka-brokers", "10.0.9.9:9092")]);
        for service in ["patient-service", "analytics-service"] {
            assert_eq!(env(&msk, service, settings::KAFKA_SECURITY_PROTOCOL), Some("ssl"), "{service}");
            assert_eq!(env(&given, service, settings::KAFKA_SECURITY_PROTOCOL), Some("plaintext"), "{service}");
            // MSK's certificates chain to Amazon's public CA: the system trust store.
            assert_eq!(env(&msk, service, settings::KAFKA_SSL_CA_FILE), None);
        }
        assert_eq!(env(&msk, "auth-service", settings::KAFKA_SECURITY_PROTOCOL), None);
    }

    #[test]
    fn auth_service_alone_gets_the_generated_jwt_signing_secret() {
        let t = synth(&[]);
        let secret_of = |service: &str| {
            let secrets = container(&t, service)["Secrets"].as_array().cloned().unwrap_or_default();
            secrets
                .into_iter()
                .find(|s| s["Name"] == settings::JWT_SIGNING_SECRET.name())
                .map(|s| s["ValueFrom"].clone())
        };
        let value_from = secret_of("auth-service").expect("auth-service reads JWT_SIGNING_SECRET as a secret");
        let id = value_from["Ref"].as_str().expect("the whole secret");
        let generated = &t["Resources"][id]["Properties"]["GenerateSecretString"];
        assert_eq!(generated["PasswordLength"], 64);
        assert_eq!(generated["ExcludePunctuation"], true);
        assert!(t["Resources"][id]["Properties"]["SecretString"].is_null(), "generated, not written in the template");
        for other in ["api-gateway", "patient-service", "billing-service", "analytics-service"] {
            assert_eq!(secret_of(other), None, "{other}");
        }
        assert_eq!(env(&t, "auth-service", settings::JWT_PRIVATE_KEY), None);
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
    fn service_discovery_can_be_left_out_for_emulators() {
        let t = synth(&[("service-discovery", "false")]);
        assert!(of_type(&t, "AWS::ServiceDiscovery::Service").is_empty());
        assert!(of_type(&t, "AWS::ServiceDiscovery::PrivateDnsNamespace").is_empty());
        assert!(of_type(&t, "AWS::ECS::Service").iter().all(|s| s["Properties"]["ServiceRegistries"].is_null()));
        assert_eq!(of_type(&synth(&[]), "AWS::ServiceDiscovery::Service").len(), 5);
    }

    #[test]
    fn context_is_validated() {
        assert!(Context::from_pairs([("desired-count", "x")]).is_err());
        assert!(Context::from_pairs([("colour", "blue")]).expect_err("unknown").reason.contains("unknown key"));
        let ctx =
            Context::from_pairs([("image-registry", "123.dkr.ecr.eu-west-1.amazonaws.com/"), ("image-tag", "v1")])
                .expect("ok");
        assert_eq!(ctx.image("auth-service"), "123.dkr.ecr.eu-west-1.amazonaws.com/auth-service:v1");
    }

    #[test]
    fn synthesis_is_deterministic() {
        let a = serde_json::to_string(&synth(&[])).expect("json");
        let b = serde_json::to_string(&synth(&[])).expect("json");
        assert_eq!(a, b);
    }

    #[test]
    fn a_url_setting_without_a_calls_entry_is_a_synth_error() {
        let mut stack = Stack::new("T", "test");
        let mut scope = stack.scope();
        let mut calls = BTreeSet::new();
        let mut wiring = Wiring {
            scope: &mut scope,
            ctx: &Context::default(),
            def: service("auth-service").expect("auth"),
            database: None,
            kafka_brokers: &TaskValue::Unset,
            admin_password: &TaskValue::Unset,
            addresses: &Addresses::CloudMap,
            jwt_signing_secret: &TaskValue::Unset,
            public_cidrs: &[],
            calls: &mut calls,
        };
        assert_eq!(wiring.call("billing-service"), TaskValue::Unset);
        assert!(matches!(wiring.database(), settings::Database { host: TaskValue::Unset, .. }));
        drop(scope);
        let errors = stack.synth().expect_err("invalid").0;
        assert!(errors[0].contains("CALLS has no auth-service -> billing-service"), "{errors:?}");
        assert!(
            errors[1].contains("DATABASE_NAME is in its settings, but its ServiceDef has no database"),
            "{errors:?}"
        );
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
            .map(|(_, s)| {
                (s.service_name.clone(), group(&s.network_configuration.awsvpc_configuration.security_groups[0]))
            })
            .collect()
    }

    /// Walks the typed model from each URL setting to the service that answers it:
    /// URL → NLB listener on the URL's port → its target group → the ECS service
    /// registered there (container and port). Returns (caller, callee, port).
    fn resolve_urls(stack: &Stack, nlb: &str) -> BTreeSet<(String, String, u16)> {
        let prefix = format!("http://${{{nlb}.DNSName}}:");
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
                let target_group =
                    stack.resources_of::<res::TargetGroup>().find(|(id, _)| id == group_id).expect("tg").1;
                assert_eq!(target_group.port, port);
                let (service, registration) = stack
                    .resources_of::<res::EcsService>()
                    .find_map(|(_, s)| {
                        let lb =
                            s.load_balancers.iter().find(|lb| lb.target_group_arn == Expr::Ref(group_id.clone()))?;
                        Some((s.service_name.clone(), lb.clone()))
                    })
                    .unwrap_or_else(|| panic!("no service registers in {group_id}"));
                assert_eq!(
                    (registration.container_name.as_str(), registration.container_port),
                    (service.as_str(), port)
                );
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
            let url = Expr::lit(format!("http://{to}.{NAMESPACE}:{port}"));
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
    fn msk_takes_tls_only_on_the_tls_port() {
        let stack = stack(&[]);
        let (_, cluster) = stack.resources_of::<res::MskCluster>().next().expect("msk");
        let transit = &cluster.encryption_info.encryption_in_transit;
        assert_eq!((transit.client_broker.as_str(), transit.in_cluster), ("TLS", true));
        assert!(
            cluster.encryption_info.encryption_at_rest.is_none() && cluster.logging_info.is_none(),
            "default is cheap"
        );
        let kafka_ports: BTreeSet<u16> = stack
            .resources_of::<res::SecurityGroupIngress>()
            .filter(|(_, r)| r.description.ends_with("to Kafka"))
            .map(|(_, r)| r.from_port)
            .collect();
        assert_eq!(kafka_ports, BTreeSet::from([9094]));
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
        let (policy_id, _) = stack.resources_of::<res::BucketPolicy>().next().expect("bucket policy");
        assert_eq!(template["Resources"][alb_id]["DependsOn"], serde_json::json!([policy_id]));
    }

    #[test]
    fn the_default_profile_stays_cheap() {
        let stack = stack(&[]);
        assert_eq!(stack.resources_of::<res::KmsKey>().count() + stack.resources_of::<res::Bucket>().count(), 0);
        assert!(
            stack.resources_of::<res::DbInstance>().all(|(_, db)| !db.multi_az && db.hardening == Default::default())
        );
        assert!(stack.resources_of::<res::Secret>().all(|(_, s)| s.kms_key_id.is_none()));
    }

    #[test]
    fn calls_match_service_ports() {
        for (from, to, port) in CALLS {
            assert!(service(from).is_some(), "{from}");
            assert!(service(to).map(ServiceDef::ports).unwrap_or_default().contains(&port), "{to}:{port}");
        }
    }
}
