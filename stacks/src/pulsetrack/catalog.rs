//! The catalog of PulseTrack's services: their names, ports, databases and sizes, and
//! who calls whom. Everything else in the stack is derived from these two tables.

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
/// URL setting of the caller ([`Wiring::call`](super::wiring::Wiring::call)) is derived from the same entry.
pub const CALLS: [(&str, &str, u16); 8] = [
    ("api-gateway", "auth-service", 4005),
    // Every service verifies its callers' tokens itself: auth-service's keys and
    // revocation feed.
    ("patient-service", "auth-service", 4005),
    ("billing-service", "auth-service", 4005),
    ("analytics-service", "auth-service", 4005),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_match_service_ports() {
        for (from, to, port) in CALLS {
            assert!(service(from).is_some(), "{from}");
            assert!(service(to).map(ServiceDef::ports).unwrap_or_default().contains(&port), "{to}:{port}");
        }
    }
}
