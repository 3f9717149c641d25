//! The stack's outputs: where the system answers and what operators look up.

use super::services::Services;
use crate::{core::Scope, ecs::Cluster, elb::PublicLoadBalancer, msk::KafkaCluster};

impl Services {
    pub(super) fn outputs(
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
