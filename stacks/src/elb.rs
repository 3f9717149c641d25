//! An internet-facing Application Load Balancer with one listener and target group
//! (the front half of CDK's `ApplicationLoadBalancedFargateService`).

use crate::resources::{self as res, HealthCheckConfig, KeyValue, ListenerAction};
use crate::{
    core::{Expr, Handle, Scope},
    ec2::{Egress, SecurityGroup, Vpc},
    ecs::LoadBalancerTarget,
};

pub struct PublicLoadBalancer {
    pub load_balancer: Handle<res::LoadBalancer>,
    pub listener: Handle<res::Listener>,
    pub target_group: Handle<res::TargetGroup>,
    pub security_group: SecurityGroup,
    pub port: u16,
}

impl PublicLoadBalancer {
    /// Listens on `port` and forwards to IP targets on `target_port`, whose
    /// `health_path` decides their health.
    pub fn new(scope: &mut Scope<'_>, id: &str, vpc: &Vpc, port: u16, target_port: u16, health_path: &str) -> Self {
        let mut scope = scope.child(id);
        let security_group =
            SecurityGroup::new(&mut scope, &format!("{id}Sg"), vpc, "Public load balancer", Egress::None);
        security_group.allow_from_anywhere(&mut scope, port, "Clients to the gateway listener");
        let load_balancer = scope.add(
            "LoadBalancer",
            res::LoadBalancer {
                kind: "application".into(),
                scheme: "internet-facing".into(),
                subnets: vpc.public_subnet_refs(),
                security_groups: vec![security_group.group_id()],
                load_balancer_attributes: vec![
                    KeyValue::new("deletion_protection.enabled", "false"),
                    KeyValue::new("routing.http.drop_invalid_header_fields.enabled", "true"),
                ],
            },
        );
        let target_group = scope.add(
            "TargetGroup",
            res::TargetGroup {
                port: target_port,
                protocol: "HTTP".into(),
                target_type: "ip".into(),
                vpc_id: vpc.id.r#ref(),
                health_check_path: health_path.into(),
                health_check_protocol: "HTTP".into(),
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
                port,
                protocol: "HTTP".into(),
                default_actions: vec![ListenerAction {
                    kind: "forward".into(),
                    target_group_arn: target_group.r#ref(),
                }],
            },
        );
        Self { load_balancer, listener, target_group, security_group, port }
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

    /// A Route 53 health check probing `path` through the public listener, as users
    /// reach the system (the seed checked its databases, which are not reachable from
    /// Route 53's checkers; the public entry is).
    pub fn health_check(&self, scope: &mut Scope<'_>, id: &str, path: &str) -> Handle<res::HealthCheck> {
        scope.add(
            id,
            res::HealthCheck {
                health_check_config: HealthCheckConfig {
                    kind: "HTTP".into(),
                    fully_qualified_domain_name: self.dns_name(),
                    port: self.port,
                    resource_path: path.into(),
                    request_interval: 30,
                    failure_threshold: 3,
                },
            },
        )
    }

    /// `http://<alb-dns>:<port>`.
    pub fn url(&self) -> Expr {
        Expr::Sub(format!("http://{}:{}", self.load_balancer.sub(res::LoadBalancerAttr::DnsName), self.port))
    }
}
