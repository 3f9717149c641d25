//! An internet-facing Application Load Balancer with one listener and target group
//! (the front half of CDK's `ApplicationLoadBalancedFargateService`).

use serde_json::json;

use crate::resources as res;
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
        let load_balancer = scope.add::<res::LoadBalancer>(
            "LoadBalancer",
            json!({ "Type": "application", "Scheme": "internet-facing", "Subnets": vpc.public_subnet_refs(),
                    "SecurityGroups": [security_group.group_id()],
                    "LoadBalancerAttributes": [{ "Key": "deletion_protection.enabled", "Value": "false" },
                                               { "Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true" }] }),
        );
        let target_group = scope.add::<res::TargetGroup>(
            "TargetGroup",
            json!({ "Port": target_port, "Protocol": "HTTP", "TargetType": "ip", "VpcId": vpc.id.r#ref(),
                    "HealthCheckPath": health_path, "HealthCheckProtocol": "HTTP", "HealthCheckIntervalSeconds": 15,
                    "HealthyThresholdCount": 2, "UnhealthyThresholdCount": 3,
                    "TargetGroupAttributes": [{ "Key": "deregistration_delay.timeout_seconds", "Value": "30" }] }),
        );
        let listener = scope.add::<res::Listener>(
            "Listener",
            json!({ "LoadBalancerArn": load_balancer.r#ref(), "Port": port, "Protocol": "HTTP",
                    "DefaultActions": [{ "Type": "forward", "TargetGroupArn": target_group.r#ref() }] }),
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
        scope.add::<res::HealthCheck>(
            id,
            json!({ "HealthCheckConfig": { "Type": "HTTP", "FullyQualifiedDomainName": self.dns_name(), "Port": self.port,
                                           "ResourcePath": path, "RequestInterval": 30, "FailureThreshold": 3 } }),
        )
    }

    /// `http://<alb-dns>:<port>`.
    pub fn url(&self) -> Expr {
        Expr::Sub(format!("http://{}:{}", self.load_balancer.sub(res::LoadBalancerAttr::DnsName), self.port))
    }
}
