//! The five services wired together: each one's database, task environment and
//! Fargate service, then exactly the security-group rules their calls need.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    addresses::Addresses,
    catalog::{CALLS, GATEWAY_PORT, SERVICES, ServiceDef},
    context::Context,
    environment::task_environment,
    images::ecr_repository_name,
    shared::SharedSettings,
    tls,
    wiring::Wiring,
};
use crate::{
    core::Scope,
    ec2::Vpc,
    ecs::{Cluster, ContainerSpec, FargateService},
    elb::PublicLoadBalancer,
    msk::{BROKER_PORT, KafkaCluster},
    rds::Database,
};

/// The five services, their databases, and the calls their settings make.
#[derive(Default)]
pub(super) struct Services {
    pub(super) databases: BTreeMap<&'static str, Database>,
    services: BTreeMap<&'static str, FargateService>,
    calls: BTreeSet<(&'static str, &'static str)>,
}

impl Services {
    /// One service: its database (if any), its task environment, its Fargate service.
    pub(super) fn add(
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
        let tls_secret = tls::declare(scope, def);
        let mut wiring = Wiring {
            scope,
            ctx,
            def,
            database: database.as_ref(),
            kafka_brokers: &shared.kafka_brokers,
            kafka_logins: shared.kafka_logins.as_ref(),
            admin_password: &shared.admin_password,
            addresses,
            jwt_signing_secret: &shared.jwt_signing_secret,
            mfa_encryption_key: &shared.mfa_encryption_key,
            billing_grpc_secret: &shared.billing_grpc_secret,
            gateway_audit_secret: &shared.gateway_audit_secret,
            audit_anchors: &shared.audit_anchors,
            tls_secret: &tls_secret,
            public_cidrs: &vpc.public_cidrs,
            calls: &mut self.calls,
        };
        let task = task_environment(&mut wiring);
        let secrets_keys = wiring.secrets_keys(shared.secrets_key.as_ref());
        let task_statements = wiring.task_statements();
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
            secrets_keys,
            ecr_repository: ecr_repository_name(scope.stack_name(), def),
            desired_count: ctx.desired_count,
            log_retention_days: 30,
            task_statements,
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
    pub(super) fn connect(
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
}
