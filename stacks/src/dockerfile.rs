//! The services' Dockerfiles (for Docker users; `deployer images` builds the deployed
//! images without them), rendered from one template and the stack model, so that the
//! five files cannot drift apart: `Dockerfiles/<service>.Dockerfile` are this
//! module's output, committed, and a test keeps them equal to it.

use crate::{pulsetrack::ServiceDef, rds::RDS_CA_BUNDLE_PATH, settings};

const TEMPLATE: &str = include_str!("../templates/service.Dockerfile");

/// Where the images put a service's binary, as the task definitions' health checks
/// and `deployer images` expect.
pub const BIN_DIR: &str = "/usr/local/bin";

/// Where the Dockerfile of `service` lives, relative to the repository root.
pub fn path(service: &str) -> String {
    format!("Dockerfiles/{service}.Dockerfile")
}

/// The Dockerfile of `def`.
pub fn render(def: &ServiceDef) -> String {
    let service = def.name;
    let listens = match def.grpc_port {
        Some(grpc) => format!("HTTP on {} and gRPC on {grpc}", def.http_port),
        None => format!("HTTP on {}", def.http_port),
    };
    let mut env =
        vec![format!("{}=0.0.0.0", settings::HOST.name()), format!("{}={}", settings::PORT.name(), def.http_port)];
    env.extend(def.grpc_port.map(|grpc| format!("{}={grpc}", settings::GRPC_PORT.name())));
    let ports: Vec<String> = def.ports().iter().map(u16::to_string).collect();
    TEMPLATE
        .replace("{runtime}", &runtime(def.kafka, def.database.is_some()))
        .replace("{listens}", &listens)
        .replace("{env}", &env.join(" \\\n    "))
        .replace("{ports}", &ports.join(" "))
        .replace("{binary}", &format!("{BIN_DIR}/{service}"))
        .replace("{rds_ca_bundle}", RDS_CA_BUNDLE_PATH)
        .replace("{service}", service)
}

/// Where an audited service's image keeps the folder its trail's anchors go to when
/// they are a file (docker-compose mounts a volume there; the folder's owner is the
/// service's user, which a new volume takes on).
pub const ANCHORS_DIR: &str = "/var/lib/pulsetrack/anchors";

/// The runtime stage up to the binary: services that speak Kafka get the system trust
/// store, which the Kafka clients verify MSK's brokers with; services that keep an
/// audit trail (those with a database) a folder for its anchors.
fn runtime(kafka: bool, audited: bool) -> String {
    let base = if kafka {
        "# Runtime: the builder's glibc (bookworm); librdkafka and zlib are linked in statically,
# OpenSSL 3 (libssl3) comes with ca-certificates, the system trust store the Kafka
# clients verify MSK's brokers with (KAFKA_SECURITY_PROTOCOL=ssl without KAFKA_SSL_CA_FILE).
FROM debian:bookworm-slim AS runtime
RUN apt-get update \\
    && apt-get install -y --no-install-recommends ca-certificates=20250419~deb12u2 \\
    && rm -rf /var/lib/apt/lists/*"
    } else {
        "# Runtime: the builder's glibc (bookworm); nothing speaks TLS, so no packages are added.
FROM debian:bookworm-slim AS runtime"
    };
    let anchors = if audited {
        format!(" \\\n    && install -d -o pulsetrack -g pulsetrack -m 0700 {ANCHORS_DIR}")
    } else {
        String::new()
    };
    format!(
        "{base}
RUN groupadd --system --gid 10001 pulsetrack \\
    && useradd --system --uid 10001 --gid pulsetrack --no-create-home --shell /usr/sbin/nologin pulsetrack{anchors}"
    )
}
