//! The PulseTrack stack (an L3 pattern): VPC, ECS cluster, five Fargate services with
//! the api-gateway behind an internet-facing ALB on :4004, one RDS database per
//! service, MSK (optional), and only the security-group rules the services need.
//!
//! One file per part: the service [`catalog`] and the deployment's [`context`], the
//! images' repositories ([`images`]), how services find each other ([`addresses`]),
//! their task settings ([`task`], [`wiring`], [`environment`], with the values they
//! share in [`shared`], each one's [`tls`] identity and [`kafka_logins`]), the [`services`] and their
//! rules, and the stack's [`outputs`].
//! This file assembles them.

mod addresses;
mod catalog;
mod context;
mod environment;
mod images;
mod kafka_logins;
mod outputs;
mod services;
mod shared;
mod task;
pub mod tls;
mod wiring;

#[cfg(test)]
mod tests;

pub use self::addresses::Addresses;
pub use self::catalog::{CALLS, GATEWAY_IDLE_TIMEOUT_MS, GATEWAY_PORT, NAMESPACE, SERVICES, ServiceDef, service};
pub use self::context::{AccountRole, CONTEXT_KEYS, Context, ContextError, Profile};
pub use self::images::{ecr_repository_name, image_repositories_stack, repository_output};
pub use self::shared::KAFKA_BOOTSTRAP_SECRET;
pub use self::task::TaskValue;
use self::{addresses::internal_routes, services::Services, shared::SharedSettings};
use crate::resources as res;
use crate::{
    core::{Scope, Stack},
    ec2::Vpc,
    ecs::Cluster,
    elb::{EntrySpec, InternalLoadBalancer, PublicLoadBalancer},
    monitoring::Monitoring,
    msk::{KafkaCluster, KafkaHardening},
    production::Production,
    rds::Database,
};

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
    let shared = SharedSettings::new(scope, ctx, kafka.as_ref(), production.as_ref());
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

/// The security group rule pairs a stack holds, for tests and reports.
pub fn rule_count(stack: &Stack) -> usize {
    stack.resources_of::<res::SecurityGroupIngress>().count()
}
