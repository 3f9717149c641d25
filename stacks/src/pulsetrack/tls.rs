//! The services' TLS identities in the cloud. The deployer keeps an internal CA in
//! Secrets Manager (`pulsetrack/<stack>/internal-ca`, read by no task) and, before each
//! change set, issues every service a certificate into a secret of its own
//! (`pulsetrack/<stack>/tls/<service>`: a JSON object with [`TlsSecretKey`]s). The
//! template names each secret by two parameters ([`parameter_ids`]): its ARN, since
//! ECS needs a secret's full ARN, which exists only once the deployer made it; and the
//! version the tasks read, so that a renewed certificate changes the task definitions
//! and ECS rolls the services onto it. Each task reads its own secret only.

use pulsetrack_settings::{self as settings, TlsClientAuth};

use super::{
    catalog::{GATEWAY_PORT, NAMESPACE, ServiceDef},
    task::TaskValue,
};
use crate::core::{Expr, Parameter, Scope};

/// A key of a service's TLS secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsSecretKey {
    /// The service's certificate, PEM.
    Cert,
    /// Its private key, PEM (PKCS#8).
    Key,
    /// The internal CA's certificate, PEM.
    Ca,
}

impl TlsSecretKey {
    pub const ALL: [Self; 3] = [Self::Cert, Self::Key, Self::Ca];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cert => "cert",
            Self::Key => "key",
            Self::Ca => "ca",
        }
    }
}

/// The template parameters that carry `def`'s TLS secret: its ARN, and the version id
/// the tasks read.
pub fn parameter_ids(def: &ServiceDef) -> (String, String) {
    (format!("TlsSecret{}", def.construct), format!("TlsSecretVersion{}", def.construct))
}

/// `def`'s TLS secret as its task definition reads it.
pub(super) struct TlsSecret {
    arn: Expr,
    version: Expr,
}

/// The name of `def`'s TLS secret in stack `stack`.
pub fn secret_name(stack: &str, def: &ServiceDef) -> String {
    format!("pulsetrack/{stack}/tls/{}", def.name)
}

/// The name of the internal CA's secret (its certificate and key) in stack `stack`.
pub fn ca_secret_name(stack: &str) -> String {
    format!("pulsetrack/{stack}/internal-ca")
}

/// The names `def`'s certificate holds: its Cloud Map name (what callers verify),
/// `localhost` (its own container health check), and the region's load balancer
/// names (callers reach it through the internal NLB where there is no Cloud Map).
pub fn certificate_names(def: &ServiceDef, region: &str) -> Vec<String> {
    vec![
        format!("{}.{NAMESPACE}", def.name),
        settings::TLS_LOCAL_NAME.to_string(),
        format!("*.elb.{region}.amazonaws.com"),
    ]
}

/// What a service's listener asks of its clients: the gateway's client is the ALB,
/// which presents no certificate; every other service's callers must present one.
pub fn client_auth(def: &ServiceDef) -> TlsClientAuth {
    if def.http_port == GATEWAY_PORT { TlsClientAuth::None } else { TlsClientAuth::Required }
}

/// Declares `def`'s parameters.
pub(super) fn declare(scope: &mut Scope<'_>, def: &ServiceDef) -> TlsSecret {
    let (arn, version) = parameter_ids(def);
    let arn = scope.add_parameter(
        &arn,
        Parameter {
            description: format!("ARN of {}'s TLS secret (the deployer issues it)", def.name),
            allowed_pattern: "^arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$".into(),
        },
    );
    let version = scope.add_parameter(
        &version,
        Parameter {
            description: format!("The version of {}'s TLS secret its tasks read", def.name),
            allowed_pattern: "^[A-Za-z0-9-]{32,64}$".into(),
        },
    );
    TlsSecret { arn, version }
}

/// `def`'s TLS settings: each PEM from its own secret, by key, at the pinned version.
pub(super) fn settings(def: &ServiceDef, secret: &TlsSecret) -> settings::Tls<TaskValue> {
    let key = |key: TlsSecretKey| TaskValue::Secret {
        // `<arn>:<json-key>:<version-stage>:<version-id>`, the stage left empty.
        value_from: Expr::Join(
            ":".into(),
            vec![secret.arn.clone(), key.as_str().into(), Expr::lit(""), secret.version.clone()],
        ),
        arn: secret.arn.clone(),
    };
    settings::Tls {
        cert: key(TlsSecretKey::Cert),
        key: key(TlsSecretKey::Key),
        ca: key(TlsSecretKey::Ca),
        client_auth: TaskValue::plain(client_auth(def).as_str()),
    }
}
