//! Load balancers: the internet-facing Application Load Balancer of the public entry
//! (the front half of CDK's `ApplicationLoadBalancedFargateService`), and an internal
//! Network Load Balancer that gives services a stable address when there is no Cloud Map.

use std::collections::BTreeMap;

use crate::resources::{self as res, Certificate, HealthCheckConfig, KeyValue, ListenerAction};
use crate::{
    core::{Expr, Handle, LogicalId, Scope, WarningKind},
    ec2::{Egress, SecurityGroup, Vpc},
    ecs::LoadBalancerTarget,
};

/// TLS 1.3 and 1.2 only (AWS's recommended policy for new listeners).
pub const TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// The plain-HTTP port that only redirects to the HTTPS entry.
pub const REDIRECT_PORT: u16 = 80;

/// What the public entry is: its ports, health path, TLS and hardening.
#[derive(Debug, Clone)]
pub struct EntrySpec {
    pub port: u16,
    pub target_port: u16,
    pub health_path: String,
    /// HTTPS with this ACM certificate (and port 80 redirecting); plain HTTP otherwise.
    pub certificate_arn: Option<String>,
    pub deletion_protection: bool,
    pub access_logs: Option<AccessLogs>,
}

/// Where the ALB writes its access logs; the bucket policy must exist first.
#[derive(Debug, Clone)]
pub struct AccessLogs {
    pub bucket: Expr,
    pub prefix: String,
    pub bucket_policy: LogicalId,
}

pub struct PublicLoadBalancer {
    pub load_balancer: Handle<res::LoadBalancer>,
    pub listener: Handle<res::Listener>,
    /// Port 80 redirecting to HTTPS, when the entry is HTTPS.
    pub redirect: Option<Handle<res::Listener>>,
    pub target_group: Handle<res::TargetGroup>,
    pub security_group: SecurityGroup,
    pub port: u16,
    pub https: bool,
}

impl PublicLoadBalancer {
    /// Listens on `spec.port` and forwards to IP targets on `spec.target_port`, whose
    /// `health_path` decides their health.
    pub fn new(scope: &mut Scope<'_>, id: &str, vpc: &Vpc, spec: &EntrySpec) -> Self {
        let mut scope = scope.child(id);
        let https = spec.certificate_arn.is_some();
        let security_group =
            SecurityGroup::new(&mut scope, &format!("{id}Sg"), vpc, "Public load balancer", Egress::None);
        security_group.allow_from_anywhere(&mut scope, spec.port, "Clients to the gateway listener");
        let load_balancer = scope.add(
            "LoadBalancer",
            res::LoadBalancer {
                kind: "application".into(),
                scheme: "internet-facing".into(),
                subnets: vpc.public_subnet_refs(),
                security_groups: vec![security_group.group_id()],
                load_balancer_attributes: attributes(spec),
            },
        );
        if let Some(logs) = &spec.access_logs {
            scope.depend(&load_balancer, &logs.bucket_policy);
        }
        let target_group = scope.add(
            "TargetGroup",
            res::TargetGroup {
                port: spec.target_port,
                // The gateway's listener speaks TLS (ALB does not validate a target's
                // certificate: the hop is encrypted, the target not authenticated).
                protocol: "HTTPS".into(),
                target_type: "ip".into(),
                vpc_id: vpc.id.r#ref(),
                health_check_path: Some(spec.health_path.clone()),
                health_check_protocol: "HTTPS".into(),
                health_check_interval_seconds: 15,
                healthy_threshold_count: 2,
                unhealthy_threshold_count: 3,
                target_group_attributes: vec![KeyValue::new("deregistration_delay.timeout_seconds", "30")],
            },
        );
        let listener = scope.add(
            "Listener",
            res::Listener {
                load_balancer_arn: load_balancer.r#ref(),
                port: spec.port,
                protocol: if https { "HTTPS" } else { "HTTP" }.into(),
                default_actions: vec![ListenerAction::forward(target_group.r#ref())],
                certificates: spec
                    .certificate_arn
                    .iter()
                    .map(|arn| Certificate { certificate_arn: Expr::lit(arn.as_str()) })
                    .collect(),
                ssl_policy: https.then(|| TLS_POLICY.to_string()),
            },
        );
        let redirect = https.then(|| {
            security_group.allow_from_anywhere(&mut scope, REDIRECT_PORT, "Clients redirected to HTTPS");
            scope.add(
                "RedirectListener",
                res::Listener {
                    load_balancer_arn: load_balancer.r#ref(),
                    port: REDIRECT_PORT,
                    protocol: "HTTP".into(),
                    default_actions: vec![ListenerAction::redirect_to_https(spec.port)],
                    certificates: Vec::new(),
                    ssl_policy: None,
                },
            )
        });
        if !https {
            scope.warn(WarningKind::PlainHttpEntry { port: spec.port });
        }
        Self { load_balancer, listener, redirect, target_group, security_group, port: spec.port, https }
    }

    pub fn target(&self, container_port: u16) -> LoadBalancerTarget {
        LoadBalancerTarget {
            target_group: self.target_group.clone(),
            listener: self.listener.clone(),
            port: container_port,
        }
    }

    pub fn dns_name(&self) -> Expr {
        self.load_balancer.attr(res::LoadBalancerAttr::DnsName)
    }

    fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// A Route 53 health check probing `path` through the public listener, as users
    /// reach the system (the seed checked its databases, which are not reachable from
    /// Route 53's checkers; the public entry is). Route 53 does not validate the
    /// certificate, so an HTTPS check on the ALB's own name works.
    pub fn health_check(&self, scope: &mut Scope<'_>, id: &str, path: &str) -> Handle<res::HealthCheck> {
        scope.add(
            id,
            res::HealthCheck {
                health_check_config: HealthCheckConfig {
                    kind: self.scheme().to_uppercase(),
                    fully_qualified_domain_name: self.dns_name(),
                    port: self.port,
                    resource_path: path.into(),
                    request_interval: 30,
                    failure_threshold: 3,
                },
            },
        )
    }

    /// `http(s)://<alb-dns>:<port>`.
    pub fn url(&self) -> Expr {
        Expr::Sub(format!(
            "{}://{}:{}",
            self.scheme(),
            self.load_balancer.sub(res::LoadBalancerAttr::DnsName),
            self.port
        ))
    }
}

/// How long the public load balancer keeps an idle connection (client side and target
/// side). The target must keep its idle connections longer (see
/// `GATEWAY_IDLE_TIMEOUT_MS`), or the ALB may send a request on a connection the gateway
/// is closing (a 502); it is also the longest an upstream may stay silent.
pub const ALB_IDLE_TIMEOUT_SECONDS: u32 = 20;

fn attributes(spec: &EntrySpec) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("deletion_protection.enabled", spec.deletion_protection.to_string()),
        KeyValue::new("idle_timeout.timeout_seconds", ALB_IDLE_TIMEOUT_SECONDS.to_string()),
        KeyValue::new("routing.http.drop_invalid_header_fields.enabled", "true"),
    ];
    if let Some(logs) = &spec.access_logs {
        attributes.extend([
            KeyValue::new("access_logs.s3.enabled", "true"),
            KeyValue::new("access_logs.s3.bucket", logs.bucket.clone()),
            KeyValue::new("access_logs.s3.prefix", logs.prefix.as_str()),
        ]);
    }
    attributes
}

/// One port of the internal load balancer: who serves it, and how its health is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub callee: &'static str,
    pub port: u16,
}

/// One listener of the internal load balancer and where it forwards.
pub struct InternalRoute {
    pub route: Route,
    pub listener: Handle<res::Listener>,
    pub target_group: Handle<res::TargetGroup>,
}

/// An internal Network Load Balancer in the private subnets with one TCP listener per
/// route, each forwarding to its callee's tasks: stable addresses for services where
/// there is no Cloud Map. It has its own security group, so the callees admit only it
/// and it admits only the callers (client IPs are not preserved, so targets see it).
pub struct InternalLoadBalancer {
    pub load_balancer: Handle<res::LoadBalancer>,
    pub security_group: SecurityGroup,
    /// By port.
    pub routes: BTreeMap<u16, InternalRoute>,
}

impl InternalLoadBalancer {
    /// One listener per route; two callees on one port is an error.
    pub fn new(scope: &mut Scope<'_>, id: &str, vpc: &Vpc, routes: &[Route]) -> Self {
        let mut scope = scope.child(id);
        let security_group =
            SecurityGroup::new(&mut scope, &format!("{id}Sg"), vpc, "Internal load balancer", Egress::None);
        let load_balancer = scope.add(
            "LoadBalancer",
            res::LoadBalancer {
                kind: "network".into(),
                scheme: "internal".into(),
                subnets: vpc.private_subnet_refs(),
                security_groups: vec![security_group.group_id()],
                load_balancer_attributes: vec![KeyValue::new("load_balancing.cross_zone.enabled", "true")],
            },
        );
        let mut built = BTreeMap::new();
        for route in routes {
            if let Some(other) = built.get(&route.port).map(|r: &InternalRoute| r.route) {
                if other != *route {
                    scope.error(format!("port {} is {} and {}", route.port, other.callee, route.callee));
                }
                continue;
            }
            let target_group = scope.add(&format!("TargetGroup{}", route.port), target_group(vpc, route));
            let listener = scope.add(
                &format!("Listener{}", route.port),
                res::Listener {
                    load_balancer_arn: load_balancer.r#ref(),
                    port: route.port,
                    protocol: "TCP".into(),
                    default_actions: vec![ListenerAction::forward(target_group.r#ref())],
                    certificates: Vec::new(),
                    ssl_policy: None,
                },
            );
            built.insert(route.port, InternalRoute { route: *route, listener, target_group });
        }
        Self { load_balancer, security_group, routes: built }
    }

    /// The target groups `callee`'s service registers in.
    pub fn targets(&self, callee: &str) -> Vec<LoadBalancerTarget> {
        self.routes
            .values()
            .filter(|r| r.route.callee == callee)
            .map(|r| LoadBalancerTarget {
                target_group: r.target_group.clone(),
                listener: r.listener.clone(),
                port: r.route.port,
            })
            .collect()
    }

    /// `https://<nlb-dns>:<port>` (the NLB passes TLS through to the callee).
    pub fn url(&self, port: u16) -> Expr {
        Expr::Sub(format!("https://{}:{port}", self.load_balancer.sub(res::LoadBalancerAttr::DnsName)))
    }
}

fn target_group(vpc: &Vpc, route: &Route) -> res::TargetGroup {
    res::TargetGroup {
        port: route.port,
        protocol: "TCP".into(),
        target_type: "ip".into(),
        vpc_id: vpc.id.r#ref(),
        // By TCP connect: the callees ask every TLS client for a certificate, which the
        // NLB's probes cannot present (the tasks' own health checks run inside them).
        health_check_path: None,
        health_check_protocol: "TCP".into(),
        health_check_interval_seconds: 15,
        healthy_threshold_count: 2,
        unhealthy_threshold_count: 3,
        target_group_attributes: vec![
            KeyValue::new("deregistration_delay.timeout_seconds", "30"),
            KeyValue::new("preserve_client_ip.enabled", "false"),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Stack;

    #[test]
    fn two_callees_on_one_internal_port_is_an_error() {
        let mut stack = Stack::new("S", "t");
        let mut scope = stack.scope();
        let vpc = Vpc::new(&mut scope, "Vpc", "10.0.0.0/16", 2);
        let route = |callee| Route { callee, port: 4000 };
        let nlb = InternalLoadBalancer::new(&mut scope, "Nlb", &vpc, &[route("a"), route("a"), route("b")]);
        assert_eq!(nlb.routes.len(), 1, "one listener per port");
        assert_eq!(nlb.targets("a").len(), 1);
        assert!(nlb.targets("b").is_empty());
        let errors = stack.synth().expect_err("a port has two callees").0;
        assert!(errors.iter().any(|e| e.contains("port 4000 is a and b")), "{errors:?}");
    }
}
