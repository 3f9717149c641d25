//! What one service's settings are made of: the shared values, its database, and the
//! URLs of the services it calls, each call checked against [`CALLS`].

use std::collections::BTreeSet;

use pulsetrack_settings::{self as settings, Var};

use super::{
    addresses::Addresses,
    catalog::{CALLS, GATEWAY_IDLE_TIMEOUT_MS, ServiceDef},
    context::Context,
    kafka_logins::KafkaLogins,
    shared::alphanumeric_secret,
    task::{TaskValue, unset},
    tls,
};
use crate::resources as res;
use crate::{
    audit_anchors::AuditAnchors,
    core::{Expr, Scope},
    rds::{self, Database},
};

/// What one service's settings are made of: the shared resources, its database, and
/// the calls the settings make (each must be in [`CALLS`]).
pub(super) struct Wiring<'w, 'a> {
    pub(super) scope: &'w mut Scope<'a>,
    pub(super) ctx: &'w Context,
    pub(super) def: &'w ServiceDef,
    pub(super) database: Option<&'w Database>,
    pub(super) kafka_brokers: &'w TaskValue,
    /// The services' logins at MSK (none without MSK).
    pub(super) kafka_logins: Option<&'w KafkaLogins>,
    pub(super) admin_password: &'w TaskValue,
    pub(super) addresses: &'w Addresses,
    pub(super) jwt_signing_secret: &'w TaskValue,
    pub(super) mfa_encryption_key: &'w TaskValue,
    pub(super) billing_grpc_secret: &'w TaskValue,
    pub(super) gateway_audit_secret: &'w TaskValue,
    pub(super) audit_anchors: &'w AuditAnchors,
    /// The service's TLS secret (template parameters).
    pub(super) tls_secret: &'w tls::TlsSecret,
    pub(super) public_cidrs: &'w [String],
    pub(super) calls: &'w mut BTreeSet<(&'static str, &'static str)>,
}

impl Wiring<'_, '_> {
    pub(super) fn error(&mut self, message: String) {
        self.scope.error(format!("{}: {message}", self.def.name));
    }

    pub(super) fn listen(&self) -> settings::Listen<TaskValue> {
        let mut tuning: settings::ListenTuning<TaskValue> = unset();
        if self.def.name == "api-gateway" {
            // Behind the ALB: keep idle connections longer than the ALB does.
            tuning.header_read_timeout_ms = TaskValue::plain(GATEWAY_IDLE_TIMEOUT_MS.to_string());
        }
        settings::Listen {
            host: TaskValue::plain("0.0.0.0"),
            port: TaskValue::plain(self.def.http_port.to_string()),
            tls: tls::settings(self.def, self.tls_secret),
            tuning,
        }
    }

    pub(super) fn grpc_port(&mut self) -> TaskValue {
        match self.def.grpc_port {
            Some(port) => TaskValue::plain(port.to_string()),
            None => self.missing(settings::GRPC_PORT, "no gRPC port"),
        }
    }

    pub(super) fn database(&mut self) -> settings::Database<TaskValue> {
        let Some(db) = self.database else {
            self.missing(settings::DATABASE_NAME, "no database");
            return unset();
        };
        // The service serves as its own role (the app secret); the master credentials
        // only run its migrations and create that role. TLS with the certificate checked.
        let key = TaskValue::secret_key;
        settings::Database {
            host: TaskValue::Plain(db.endpoint_address()),
            port: TaskValue::Plain(db.instance.attr(res::DbInstanceAttr::EndpointPort)),
            name: TaskValue::plain(db.database_name.as_str()),
            user: key(&db.app_secret, "username"),
            password: key(&db.app_secret, "password"),
            ssl_mode: TaskValue::plain(rds::RDS_SSL_MODE),
            ssl_root_cert: TaskValue::plain(rds::RDS_CA_BUNDLE_PATH),
            admin_user: key(&db.secret, "username"),
            admin_password: key(&db.secret, "password"),
            tuning: unset(),
        }
    }

    pub(super) fn kafka(&mut self) -> settings::Kafka<TaskValue> {
        use settings::KafkaSecurityProtocol::{Plaintext, SaslSsl};
        if !self.def.kafka {
            self.missing(settings::KAFKA_BROKERS, "kafka: false");
        }
        let mut tuning: settings::KafkaTuning<TaskValue> = unset();
        // MSK's brokers speak TLS only, with certificates from Amazon's public CA (the
        // system trust store verifies them), and take the service's own SCRAM login;
        // other brokers (`kafka-brokers`) as they are.
        let protocol = match self.kafka_logins.map(|logins| logins.of(self.def.name)) {
            Some(Some((username, password))) => {
                tuning.sasl_username = username;
                tuning.sasl_password = password;
                SaslSsl
            }
            Some(None) => {
                self.error("a Kafka client without a login at MSK".into());
                SaslSsl
            }
            None => Plaintext,
        };
        settings::Kafka {
            brokers: self.kafka_brokers.clone(),
            replication_factor: TaskValue::plain(if self.ctx.msk { "2" } else { "1" }),
            security_protocol: TaskValue::plain(protocol.as_str()),
            tuning,
        }
    }

    /// The customer-managed keys of the secrets this service's task reads.
    pub(super) fn secrets_keys(&self, secrets_key: Option<&Expr>) -> Vec<Expr> {
        let login_key = self.kafka_logins.filter(|l| l.of(self.def.name).is_some()).map(|l| l.key());
        let mut keys: Vec<Expr> = secrets_key.into_iter().chain(login_key).cloned().collect();
        keys.dedup();
        keys
    }

    /// The secret of the credentials on billing-service's gRPC calls: in the settings of
    /// billing-service, which verifies them, and of patient-service, which mints them
    /// (no other service's settings have the group).
    pub(super) fn billing_caller(&self) -> settings::BillingCaller<TaskValue> {
        settings::BillingCaller { secret: self.billing_grpc_secret.clone() }
    }

    /// The secret of the credentials on the gateway's refusal reports: in the settings
    /// of api-gateway, which mints them, and of auth-service, which verifies them.
    pub(super) fn gateway_audit_caller(&self) -> settings::GatewayAuditCaller<TaskValue> {
        settings::GatewayAuditCaller { secret: self.gateway_audit_secret.clone() }
    }

    /// The service's audit trail: its own key (a secret generated for it alone, which
    /// only its task reads) and the anchors bucket. Every service with a database is
    /// audited.
    pub(super) fn audit(&mut self) -> settings::Audit<TaskValue> {
        if self.def.database.is_none() {
            self.missing(settings::AUDIT_KEY, "no database (only services with one keep a trail)");
            return unset();
        }
        let description = format!("Secret from which {} derives its audit trail's keys", self.def.name);
        let key = self.scope.add(&format!("{}AuditKey", self.def.construct), alphanumeric_secret(&description, 64));
        settings::Audit {
            key: TaskValue::secret(&key),
            anchors: TaskValue::Plain(self.audit_anchors.setting()),
            tuning: unset(),
        }
    }

    /// What the service's task role may do: anchor its trail, when it keeps one.
    pub(super) fn task_statements(&self) -> Vec<res::Statement> {
        if self.def.database.is_some() { self.audit_anchors.task_statements(self.def.name) } else { Vec::new() }
    }

    /// The URL of `callee` on the port of the [`CALLS`] entry (whose rule lets the call through).
    pub(super) fn call(&mut self, callee: &'static str) -> TaskValue {
        let from = self.def.name;
        match CALLS.iter().find(|(caller, to, _)| *caller == from && *to == callee) {
            Some(&(caller, to, port)) => {
                self.calls.insert((caller, to));
                TaskValue::Plain(self.addresses.url(to, port))
            }
            None => {
                self.error(format!(
                    "its settings call {callee}, but CALLS has no {from} -> {callee} (no rule allows it)"
                ));
                TaskValue::Unset
            }
        }
    }

    /// A setting the service's [`ServiceDef`] has no value for.
    fn missing(&mut self, var: Var, reason: &str) -> TaskValue {
        self.error(format!("{var} is in its settings, but its ServiceDef has {reason}"));
        TaskValue::Unset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Stack;
    use crate::pulsetrack::catalog::service;

    #[test]
    fn a_url_setting_without_a_calls_entry_is_a_synth_error() {
        let mut stack = Stack::new("T", "test");
        let mut scope = stack.scope();
        let mut calls = BTreeSet::new();
        let mut wiring = Wiring {
            scope: &mut scope,
            ctx: &Context::default(),
            def: service("auth-service").expect("auth"),
            database: None,
            kafka_brokers: &TaskValue::Unset,
            kafka_logins: None,
            admin_password: &TaskValue::Unset,
            addresses: &Addresses::CloudMap,
            jwt_signing_secret: &TaskValue::Unset,
            mfa_encryption_key: &TaskValue::Unset,
            billing_grpc_secret: &TaskValue::Unset,
            gateway_audit_secret: &TaskValue::Unset,
            audit_anchors: &AuditAnchors::new(
                &mut Stack::new("A", "anchors").scope(),
                "Anchors",
                crate::audit_anchors::AnchorRetention::DEFAULT,
            ),
            tls_secret: &tls::declare(
                &mut Stack::new("P", "parameters").scope(),
                service("auth-service").expect("auth"),
            ),
            public_cidrs: &[],
            calls: &mut calls,
        };
        assert_eq!(wiring.call("billing-service"), TaskValue::Unset);
        assert!(matches!(wiring.database(), settings::Database { host: TaskValue::Unset, .. }));
        drop(scope);
        let errors = stack.synth().expect_err("invalid").0;
        assert!(errors[0].contains("CALLS has no auth-service -> billing-service"), "{errors:?}");
        assert!(
            errors[1].contains("DATABASE_NAME is in its settings, but its ServiceDef has no database"),
            "{errors:?}"
        );
    }
}
