//! From the stack model to processes: every ECS task definition becomes one local
//! process of the workspace binary of the same name, with the task's environment and
//! secrets resolved against local endpoints. The same model `deployer synth` renders.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use pulsetrack_stacks::{
    Context, Expr,
    ecs::{ContainerDefinition, EnvironmentVariable, HealthCheck, Template},
    pulsetrack::{GATEWAY_PORT, NAMESPACE},
    pulsetrack_stack,
    resources::{Attribute, DbInstance, DbInstanceAttr, Secret, SecretTargetAttachment},
    settings::{
        AUDIT_ANCHORS, AUDIT_KEY, BILLING_GRPC_SECRET, CLOUDWATCH_METRICS_NAMESPACE, DATABASE_NAME, DATABASE_SSL_MODE,
        DATABASE_SSL_ROOT_CERT, GATEWAY_AUDIT_SECRET, GRPC_PORT, HOST, JWT_SIGNING_SECRET, KAFKA_BROKERS,
        MFA_ENCRYPTION_KEY, PORT, PULSETRACK_ADMIN_PASSWORD, PasswordPolicy, SignupMode, TLS_CA, TLS_CERT, TLS_KEY,
    },
};
use serde_json::Value;

/// Where the local system's shared parts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The address services bind to (the task definitions say 0.0.0.0).
    pub bind_host: String,
    pub postgres_host: String,
    pub postgres_port: u16,
    /// The role that stands in for each RDS instance's master user (the services run
    /// their migrations and create their own roles with it).
    pub postgres_user: String,
    pub postgres_password: String,
    /// `DATABASE_SSL_MODE` for the local server (the stack's `verify-full` names the RDS
    /// bundle and RDS host names, which a local server does not have).
    pub postgres_ssl_mode: String,
    /// `DATABASE_SSL_ROOT_CERT` for the local server; `None` leaves it unset.
    pub postgres_root_cert: Option<String>,
    /// The passwords of the services' own roles, by role name ([`database_roles`]).
    pub role_passwords: BTreeMap<String, String>,
    /// `host:port[,host:port]` of the Kafka-protocol broker.
    pub kafka_brokers: String,
    pub admin_password: String,
    /// auth-service's `JWT_SIGNING_SECRET` (the stack's generated secret).
    pub jwt_signing_secret: String,
    /// auth-service's `MFA_ENCRYPTION_KEY` (the stack's generated secret).
    pub mfa_encryption_key: String,
    /// patient-service's and billing-service's `BILLING_GRPC_SECRET` (the stack's
    /// generated secret).
    pub billing_grpc_secret: String,
    /// api-gateway's and auth-service's `GATEWAY_AUDIT_SECRET` (the stack's generated secret).
    pub gateway_audit_secret: String,
    /// Each audited service's `AUDIT_KEY`, by service (the stack generates one each).
    pub audit_keys: BTreeMap<String, String>,
    /// The folder each trail's anchors are appended to (`<service>.jsonl`), where the
    /// stack has its bucket with Object Lock.
    pub audit_anchors: PathBuf,
    /// Added to every container port (lets a second system run beside the first).
    pub port_offset: u16,
    /// The gateway's port (the ALB listener's); `None` keeps 4004 + offset.
    pub gateway_port: Option<u16>,
    /// Keep Cloud Map names in service URLs (containers resolve them through
    /// `--add-host`); otherwise they become the loopback address.
    pub keep_service_names: bool,
}

/// One process to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalService {
    pub name: String,
    /// Environment, in the task definition's order, with local values.
    pub env: Vec<(String, String)>,
    /// Container port → local port.
    pub ports: Vec<(u16, u16)>,
    /// The local HTTP port (the first port mapping, which the health check probes).
    pub http_port: u16,
    /// Services this one calls (they start first).
    pub depends_on: Vec<String>,
    /// The database it uses, if any.
    pub database: Option<String>,
    /// Whether it talks to Kafka.
    pub kafka: bool,
    /// The task definition's image.
    pub image: String,
    pub health_check: Option<HealthCheck>,
}

impl LocalService {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service}: {variable}: {reason}")]
pub struct PlanError {
    pub service: String,
    pub variable: String,
    pub reason: String,
}

/// Requests per second one caller may make under `up`: far above what one machine
/// serves, so that the load test's single account measures the system, not the limit.
pub const LOCAL_RATE_LIMIT: u32 = 1_000_000;

/// The template `up` runs, synthesized with: no MSK (a local broker instead), Cloud
/// Map names (rewritten to loopback, or resolved with `--add-host` for containers),
/// and the pushed images by digest when `up` runs containers.
pub fn local_template(kafka_brokers: &str, images: BTreeMap<String, String>) -> Result<Value, PlanError> {
    let ctx = Context {
        environment: "local".into(),
        msk: false,
        kafka_brokers: Some(kafka_brokers.into()),
        service_discovery: true,
        images,
        // Local demos and the seed's scripts: a signed-up account works at once, with the
        // seed's short password, no role must enrol a second factor (any account may),
        // and one account's load is not throttled.
        signup_mode: SignupMode::Open,
        password_policy: PasswordPolicy::Basic,
        require_mfa_roles: Vec::new(),
        rate_limit_per_second: LOCAL_RATE_LIMIT,
        ..Context::default()
    };
    pulsetrack_stack("PulseTrack", &ctx).synth().map_err(|e| PlanError {
        service: "PulseTrack".into(),
        variable: "template".into(),
        reason: e.to_string(),
    })
}

/// The services of the rendered `template`, in an order where everything a service
/// calls comes first.
pub fn plan(template: &Value, endpoints: &Endpoints) -> Result<Vec<LocalService>, PlanError> {
    let template = read_template(template)?;
    let tasks = template.containers();
    // Container port → local port, for every service (calls are rewritten with it).
    let mut port_map: BTreeMap<(String, u16), u16> = BTreeMap::new();
    for task in tasks.values() {
        for port in task.ports() {
            port_map.insert((task.name.clone(), port), local_port(port, endpoints));
        }
    }
    let names: BTreeSet<String> = tasks.keys().cloned().collect();
    let planner = Planner { template: &template, endpoints, port_map: &port_map, names: &names };
    let services = tasks.values().map(|task| planner.service(task)).collect::<Result<Vec<_>, _>>()?;
    order(services)
}

/// What every task's plan is made against: the whole template, the local endpoints,
/// and every service's ports.
struct Planner<'a> {
    template: &'a Template,
    endpoints: &'a Endpoints,
    /// Container port → local port, by service.
    port_map: &'a BTreeMap<(String, u16), u16>,
    names: &'a BTreeSet<String>,
}

/// A task's environment with local values, and what it says about the task.
#[derive(Default)]
struct LocalEnv {
    env: Vec<(String, String)>,
    /// Services its URLs call.
    depends_on: BTreeSet<String>,
    /// Its `DATABASE_NAME`.
    database: Option<String>,
}

impl Planner<'_> {
    /// The local process of one task.
    fn service(&self, task: &ContainerDefinition) -> Result<LocalService, PlanError> {
        let name = task.name.clone();
        let err =
            |variable: &str, reason: String| PlanError { service: name.clone(), variable: variable.into(), reason };
        let mut local = LocalEnv::default();
        for var in &task.environment {
            if let Some(value) = self.value(&name, var, &mut local)? {
                local.env.push((var.name.clone(), value));
            }
        }
        for secret in &task.secrets {
            // On one machine the hops stay plain HTTP on loopback: no TLS identity.
            if LOCAL_PLAIN_TEXT.contains(&secret.name.as_str()) {
                continue;
            }
            let value = resolve_secret(self.template, (&name, &secret.name), &secret.value_from, self.endpoints)
                .ok_or_else(|| {
                    err(&secret.name, format!("no local value for the secret {}", secret.value_from.to_json()))
                })?;
            local.env.push((secret.name.clone(), value));
        }
        let ports: Vec<(u16, u16)> = task
            .ports()
            .into_iter()
            .map(|p| (p, self.port_map.get(&(name.clone(), p)).copied().unwrap_or(p)))
            .collect();
        let Some(&(_, http_port)) = ports.first() else {
            return Err(err("PortMappings", "a service needs at least one port".into()));
        };
        let kafka = local.env.iter().any(|(k, _)| k == KAFKA_BROKERS.name());
        Ok(LocalService {
            name: name.clone(),
            env: local.env,
            ports,
            http_port,
            depends_on: local.depends_on.into_iter().collect(),
            database: local.database,
            kafka,
            image: task.image.clone(),
            health_check: task.health_check.clone(),
        })
    }

    /// The local value of service `name`'s variable `var`; `None` leaves it out. Notes
    /// the services it calls and its database in `local`.
    fn value(&self, name: &str, var: &EnvironmentVariable, local: &mut LocalEnv) -> Result<Option<String>, PlanError> {
        let endpoints = self.endpoints;
        let key = var.name.clone();
        let err = |reason: String| PlanError { service: name.to_string(), variable: key.clone(), reason };
        let value = match (var.value.as_str(), &var.value) {
            (Some("0.0.0.0"), _) if key == HOST.name() => endpoints.bind_host.clone(),
            (Some(s), _) if key == PORT.name() || key == GRPC_PORT.name() => {
                let port: u16 = s.parse().map_err(|_| err(format!("not a port: {s}")))?;
                self.port_map.get(&(name.to_string(), port)).copied().unwrap_or(port).to_string()
            }
            (Some(s), _) if s.contains(&format!(".{NAMESPACE}:")) => {
                let (callee, rewritten) = rewrite_service_url(s, self.port_map, endpoints.keep_service_names)
                    .ok_or_else(|| err(format!("{s} names no service of this stack ({})", join(self.names))))?;
                local.depends_on.insert(callee);
                rewritten
            }
            (Some(_), _) if key == KAFKA_BROKERS.name() => endpoints.kafka_brokers.clone(),
            // No CloudWatch on this machine: the outbox's gauges are on /metrics.
            (Some(_), _) if key == CLOUDWATCH_METRICS_NAMESPACE.name() => return Ok(None),
            (Some(_), _) if key == DATABASE_SSL_MODE.name() => endpoints.postgres_ssl_mode.clone(),
            // The stack's bucket with Object Lock: here, an append-only file per trail.
            (_, _) if key == AUDIT_ANCHORS.name() => {
                format!("file:{}", endpoints.audit_anchors.join(format!("{name}.jsonl")).display())
            }
            (Some(_), _) if key == DATABASE_SSL_ROOT_CERT.name() => match &endpoints.postgres_root_cert {
                Some(path) => path.clone(),
                None => return Ok(None),
            },
            (Some(s), _) => {
                if key == DATABASE_NAME.name() {
                    local.database = Some(s.to_string());
                }
                s.to_string()
            }
            (None, Expr::Literal(other)) => other.to_string(),
            (None, other) => resolve_intrinsic(self.template, other, endpoints).ok_or_else(|| {
                err(format!("cannot map {} to a local value (only RDS endpoints are known)", other.to_json()))
            })?,
        };
        Ok(Some(value))
    }
}

/// `template` as the stack model reads it.
fn read_template(template: &Value) -> Result<Template, PlanError> {
    Template::read(template).map_err(|e| PlanError {
        service: "PulseTrack".into(),
        variable: "template".into(),
        reason: e.to_string(),
    })
}

fn join(names: &BTreeSet<String>) -> String {
    names.iter().cloned().collect::<Vec<_>>().join(", ")
}

fn local_port(port: u16, endpoints: &Endpoints) -> u16 {
    if port == GATEWAY_PORT
        && let Some(port) = endpoints.gateway_port
    {
        return port;
    }
    port.saturating_add(endpoints.port_offset)
}

/// The TLS identity's variables, which `up` leaves unset: plain HTTP on loopback.
const LOCAL_PLAIN_TEXT: [&str; 3] = [TLS_CERT.name(), TLS_KEY.name(), TLS_CA.name()];

/// `https://billing-service.pulsetrack.local:9001` → (`billing-service`,
/// `http://127.0.0.1:<local>`, or `http://billing-service.pulsetrack.local:<local>`
/// when `keep_name`): plain HTTP, as the services have no TLS identity here.
fn rewrite_service_url(url: &str, ports: &BTreeMap<(String, u16), u16>, keep_name: bool) -> Option<(String, String)> {
    let (_, rest) = url.split_once("://")?;
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let (host, port) = authority.rsplit_once(':')?;
    let service = host.strip_suffix(&format!(".{NAMESPACE}"))?;
    let local = ports.get(&(service.to_string(), port.parse().ok()?))?;
    let path = if path.is_empty() { String::new() } else { format!("/{path}") };
    let host = if keep_name { host } else { "127.0.0.1" };
    Some((service.to_string(), format!("http://{host}:{local}{path}")))
}

/// `Fn::GetAtt [<DBInstance>, Endpoint.Address|Endpoint.Port]` → the local Postgres.
fn resolve_intrinsic(template: &Template, value: &Expr, endpoints: &Endpoints) -> Option<String> {
    let Expr::GetAtt(id, attribute) = value else { return None };
    template.resource::<DbInstance>(id)?;
    match attribute.as_str() {
        a if a == DbInstanceAttr::EndpointAddress.name() => Some(endpoints.postgres_host.clone()),
        a if a == DbInstanceAttr::EndpointPort.name() => Some(endpoints.postgres_port.to_string()),
        _ => None,
    }
}

/// The secret `var` reads from `ValueFrom`: `Fn::Join [":", [Ref <db master secret>,
/// "username::"]]` → the local Postgres user (or password); the same of a service
/// role's secret → the role's name (from the secret's template) and its password from
/// `role_passwords`; `Ref <generated secret>` → the local value of the variable (the
/// admin password, the JWT signing secret, the MFA encryption key, the billing gRPC
/// secret, the gateway's audit secret, the service's own audit key).
fn resolve_secret(
    template: &Template,
    (service, var): (&str, &str),
    value: &Expr,
    endpoints: &Endpoints,
) -> Option<String> {
    match value {
        Expr::Ref(id) => {
            template.resource::<Secret>(id)?.generate_secret_string.as_ref()?;
            match var {
                v if v == AUDIT_KEY.name() => endpoints.audit_keys.get(service).cloned(),
                v if v == GATEWAY_AUDIT_SECRET.name() => Some(endpoints.gateway_audit_secret.clone()),
                v if v == PULSETRACK_ADMIN_PASSWORD.name() => Some(endpoints.admin_password.clone()),
                v if v == JWT_SIGNING_SECRET.name() => Some(endpoints.jwt_signing_secret.clone()),
                v if v == MFA_ENCRYPTION_KEY.name() => Some(endpoints.mfa_encryption_key.clone()),
                v if v == BILLING_GRPC_SECRET.name() => Some(endpoints.billing_grpc_secret.clone()),
                _ => None,
            }
        }
        Expr::Join(_, parts) => {
            let [Expr::Ref(id), key] = parts.as_slice() else { return None };
            let secret = template.resource::<Secret>(id)?;
            match (is_master_secret(template, id), key.as_str()?) {
                (true, "username::") => Some(endpoints.postgres_user.clone()),
                (true, "password::") => Some(endpoints.postgres_password.clone()),
                (false, "username::") => secret_username(secret),
                (false, "password::") => endpoints.role_passwords.get(&secret_username(secret)?).cloned(),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether secret `id` is attached to a database instance (its master credentials).
fn is_master_secret(template: &Template, id: &str) -> bool {
    template.resources_of::<SecretTargetAttachment>().any(|(_, a)| a.secret_id == Expr::Ref(id.to_string()))
}

/// The `username` of a generated credentials secret's template.
fn secret_username(secret: &Secret) -> Option<String> {
    let template = secret.generate_secret_string.as_ref()?.secret_string_template.as_deref()?;
    let value: Value = serde_json::from_str(template).ok()?;
    value.get("username")?.as_str().map(str::to_string)
}

/// The services' own database roles: the usernames of the generated credentials that
/// are not a database instance's master credentials. `up` generates their passwords.
pub fn database_roles(template: &Value) -> Result<Vec<String>, PlanError> {
    let template = read_template(template)?;
    let roles: BTreeSet<String> = template
        .resources_of::<Secret>()
        .filter(|(id, _)| !is_master_secret(&template, id))
        .filter_map(|(_, secret)| secret_username(secret))
        .collect();
    Ok(roles.into_iter().collect())
}

/// The services of `template` that keep an audit trail (their task reads an `AUDIT_KEY`).
pub fn audited_services(template: &Value) -> Result<Vec<String>, PlanError> {
    let template = read_template(template)?;
    Ok(template
        .containers()
        .into_iter()
        .filter(|(_, task)| task.secrets.iter().any(|s| s.name == AUDIT_KEY.name()))
        .map(|(name, _)| name)
        .collect())
}

/// Topological order (Kahn), ties by the model's order; a cycle is an error.
fn order(services: Vec<LocalService>) -> Result<Vec<LocalService>, PlanError> {
    let mut remaining = services;
    let mut ordered: Vec<LocalService> = Vec::new();
    while !remaining.is_empty() {
        let started: BTreeSet<&str> = ordered.iter().map(|s| s.name.as_str()).collect();
        let Some(next) = remaining.iter().position(|s| s.depends_on.iter().all(|d| started.contains(d.as_str())))
        else {
            let stuck: Vec<String> = remaining.iter().map(|s| s.name.clone()).collect();
            return Err(PlanError {
                service: stuck.join(", "),
                variable: "dependencies".into(),
                reason: "these services call each other in a cycle".into(),
            });
        };
        ordered.push(remaining.remove(next));
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use pulsetrack_stacks::settings::REQUIRE_MFA_ROLES;

    use super::*;

    fn endpoints() -> Endpoints {
        Endpoints {
            bind_host: "127.0.0.1".into(),
            postgres_host: "127.0.0.1".into(),
            postgres_port: 54321,
            postgres_user: "pulsetrack".into(),
            postgres_password: "pw".into(),
            postgres_ssl_mode: "disable".into(),
            postgres_root_cert: None,
            role_passwords: ["auth_service_app", "billing_service_app", "analytics_service_app"]
                .map(|r| (r.to_string(), format!("{r}-pw")))
                .into_iter()
                .chain([("patient_service_app".to_string(), "app-pw".to_string())])
                .collect(),
            kafka_brokers: "127.0.0.1:19092".into(),
            admin_password: "admin-pw".into(),
            jwt_signing_secret: "jwt-signing-secret".into(),
            mfa_encryption_key: "mfa-encryption-key".into(),
            billing_grpc_secret: "billing-grpc-secret".into(),
            gateway_audit_secret: "gateway-audit-secret".into(),
            audit_keys: ["auth-service", "patient-service", "billing-service", "analytics-service"]
                .map(|s| (s.to_string(), format!("audit-key-of-{s}")))
                .into(),
            audit_anchors: PathBuf::from("/data/audit-anchors"),
            port_offset: 0,
            gateway_port: None,
            keep_service_names: false,
        }
    }

    fn env<'a>(service: &'a LocalService, key: &str) -> Option<&'a str> {
        service.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn planned(endpoints: &Endpoints) -> Vec<LocalService> {
        plan(&local_template(&endpoints.kafka_brokers, BTreeMap::new()).expect("template"), endpoints).expect("plan")
    }

    #[test]
    fn every_fargate_service_becomes_a_process_in_dependency_order() {
        let services = planned(&endpoints());
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), pulsetrack_stacks::pulsetrack::SERVICES.len());
        for (i, service) in services.iter().enumerate() {
            for dep in &service.depends_on {
                let at = names.iter().position(|n| n == dep).expect("dependency is a service");
                assert!(at < i, "{dep} must start before {}", service.name);
            }
        }
        assert_eq!(names.last(), Some(&"api-gateway"));
        let gateway = &services[services.len() - 1];
        assert_eq!(gateway.depends_on.len(), 4);
    }

    #[test]
    fn endpoints_are_rewritten_to_local_ones() {
        let services = planned(&endpoints());
        let patient = services.iter().find(|s| s.name == "patient-service").expect("patient");
        assert_eq!(env(patient, "HOST"), Some("127.0.0.1"));
        assert_eq!(env(patient, "DATABASE_HOST"), Some("127.0.0.1"));
        assert_eq!(env(patient, "DATABASE_PORT"), Some("54321"));
        assert_eq!(env(patient, "DATABASE_NAME"), Some("patient_service"));
        assert_eq!(env(patient, "DATABASE_USER"), Some("patient_service_app"));
        assert_eq!(env(patient, "DATABASE_PASSWORD"), Some("app-pw"));
        assert_eq!(env(patient, "DATABASE_ADMIN_USER"), Some("pulsetrack"));
        assert_eq!(env(patient, "DATABASE_ADMIN_PASSWORD"), Some("pw"));
        assert_eq!(env(patient, "DATABASE_SSL_MODE"), Some("disable"));
        assert_eq!(env(patient, "DATABASE_SSL_ROOT_CERT"), None, "the RDS bundle path is not used locally");
        assert_eq!(env(patient, "KAFKA_BROKERS"), Some("127.0.0.1:19092"));
        assert_eq!(env(patient, "BILLING_GRPC_URL"), Some("http://127.0.0.1:9001"));
        // Plain HTTP on loopback: the stack's https:// URLs become http://, and no
        // service gets a TLS identity.
        for service in &services {
            assert!(LOCAL_PLAIN_TEXT.iter().all(|var| env(service, var).is_none()), "{}", service.name);
        }
        assert_eq!(patient.database.as_deref(), Some("patient_service"));
        assert!(patient.kafka);
        let auth = services.iter().find(|s| s.name == "auth-service").expect("auth");
        assert_eq!(env(auth, "PULSETRACK_ADMIN_PASSWORD"), Some("admin-pw"));
        assert_eq!(env(auth, "JWT_SIGNING_SECRET"), Some("jwt-signing-secret"));
        assert!(services.iter().filter(|s| s.name != "auth-service").all(|s| env(s, "JWT_SIGNING_SECRET").is_none()));
        // A second factor may be enrolled, and no role must: local demos.
        assert_eq!(env(auth, MFA_ENCRYPTION_KEY.name()), Some("mfa-encryption-key"));
        assert!(
            services.iter().filter(|s| s.name != "auth-service").all(|s| env(s, MFA_ENCRYPTION_KEY.name()).is_none())
        );
        assert!(services.iter().all(|s| env(s, REQUIRE_MFA_ROLES.name()).is_none()));
        // The caller and the callee of the gRPC hop share its secret; no one else has it.
        for service in &services {
            let shares = ["patient-service", "billing-service"].contains(&service.name.as_str());
            let expected = shares.then_some("billing-grpc-secret");
            assert_eq!(env(service, BILLING_GRPC_SECRET.name()), expected, "{}", service.name);
        }
        assert!(!auth.kafka);
        for service in &services {
            for (key, value) in &service.env {
                assert!(!value.contains(&format!(".{NAMESPACE}:")), "{}: {key}={value}", service.name);
                assert!(!value.contains("Fn::") && !value.contains("\"Ref\""), "{}: {key}={value}", service.name);
            }
        }
    }

    /// The stack validates `require-mfa` against its own list of account roles: the
    /// one auth-service parses `REQUIRE_MFA_ROLES` with, name for name.
    #[test]
    fn the_stack_s_account_roles_are_auth_service_s() {
        use pulsetrack_common::identity::Role;
        use pulsetrack_stacks::pulsetrack::AccountRole;
        assert_eq!(AccountRole::ALL.map(AccountRole::as_str), Role::ALL.map(Role::as_str));
    }

    #[test]
    fn each_database_has_its_own_role_and_a_missing_password_is_an_error() {
        let template = local_template("127.0.0.1:9092", BTreeMap::new()).expect("template");
        let roles = database_roles(&template).expect("roles");
        assert_eq!(roles, ["analytics_service_app", "auth_service_app", "billing_service_app", "patient_service_app"]);
        let mut e = endpoints();
        e.postgres_root_cert = Some("/data/ca.pem".into());
        let services = plan(&template, &e).expect("plan");
        let billing = services.iter().find(|s| s.name == "billing-service").expect("billing");
        assert_eq!(env(billing, "DATABASE_USER"), Some("billing_service_app"));
        assert_eq!(env(billing, "DATABASE_PASSWORD"), Some("billing_service_app-pw"));
        assert_eq!(env(billing, "DATABASE_SSL_ROOT_CERT"), Some("/data/ca.pem"));
        e.role_passwords.remove("billing_service_app");
        let err = plan(&template, &e).expect_err("no password");
        assert_eq!((err.service.as_str(), err.variable.as_str()), ("billing-service", "DATABASE_PASSWORD"));
    }

    #[test]
    fn ports_shift_by_the_offset_and_the_gateway_can_be_moved() {
        let mut e = endpoints();
        e.port_offset = 100;
        let services = planned(&e);
        let billing = services.iter().find(|s| s.name == "billing-service").expect("billing");
        assert_eq!(billing.ports, vec![(4001, 4101), (9001, 9101)]);
        assert_eq!(env(billing, "PORT"), Some("4101"));
        assert_eq!(env(billing, "GRPC_PORT"), Some("9101"));
        let gateway = services.iter().find(|s| s.name == "api-gateway").expect("gateway");
        assert_eq!(gateway.http_port, 4104);
        assert_eq!(env(gateway, "AUTH_SERVICE_URL"), Some("http://127.0.0.1:4105"));
        e.gateway_port = Some(8080);
        let services = planned(&e);
        let gateway = services.iter().find(|s| s.name == "api-gateway").expect("gateway");
        assert_eq!(gateway.url(), "http://127.0.0.1:8080");
        assert_eq!(env(gateway, "PORT"), Some("8080"));
    }

    #[test]
    fn an_unknown_intrinsic_is_an_error_not_a_guess() {
        let mut template = local_template("127.0.0.1:9092", BTreeMap::new()).expect("template");
        let task = template["Resources"]
            .as_object_mut()
            .and_then(|r| r.values_mut().find(|r| r["Type"] == "AWS::ECS::TaskDefinition"))
            .expect("a task definition");
        task["Properties"]["ContainerDefinitions"][0]["Environment"]
            .as_array_mut()
            .expect("environment")
            .push(serde_json::json!({ "Name": "QUEUE_URL", "Value": { "Ref": "SomeQueue" } }));
        let err = plan(&template, &endpoints()).expect_err("unmapped");
        assert_eq!(err.variable, "QUEUE_URL");
    }

    #[test]
    fn a_call_to_a_missing_service_is_an_error() {
        let ports = BTreeMap::from([(("billing-service".to_string(), 9001), 9001)]);
        assert_eq!(
            rewrite_service_url("http://billing-service.pulsetrack.local:9001", &ports, false),
            Some(("billing-service".into(), "http://127.0.0.1:9001".into()))
        );
        assert_eq!(
            rewrite_service_url("http://billing-service.pulsetrack.local:9001", &ports, true),
            Some(("billing-service".into(), "http://billing-service.pulsetrack.local:9001".into()))
        );
        assert_eq!(rewrite_service_url("http://nobody.pulsetrack.local:9001", &ports, false), None);
        assert_eq!(rewrite_service_url("http://billing-service.pulsetrack.local:1", &ports, false), None);
    }

    #[test]
    fn cycles_are_reported() {
        let svc = |name: &str, dep: &str| LocalService {
            name: name.into(),
            env: vec![],
            ports: vec![(1, 1)],
            http_port: 1,
            depends_on: vec![dep.into()],
            database: None,
            kafka: false,
            image: String::new(),
            health_check: None,
        };
        let err = order(vec![svc("a", "b"), svc("b", "a")]).expect_err("cycle");
        assert!(err.reason.contains("cycle"));
    }
}
