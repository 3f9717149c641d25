//! The services' logins at MSK: each Kafka client of [`SERVICES`] gets its own
//! SASL/SCRAM user, named after the service, whose secret its task reads. MSK accepts
//! only secrets under a customer-managed key: the production profile's secrets key, or
//! in the default profile a key of their own (the one customer-managed key that profile
//! pays for, $1 a month).

use std::collections::BTreeMap;

use super::{catalog::SERVICES, task::TaskValue};
use crate::{
    core::{Expr, LogicalId, Scope},
    kms::{EncryptionKey, KeyUse},
    msk::{KafkaCluster, SCRAM_PASSWORD_KEY, SCRAM_USERNAME_KEY},
    production::Production,
};

/// Every Kafka client's login secret, and the key they are encrypted with.
pub(super) struct KafkaLogins {
    secrets: BTreeMap<&'static str, LogicalId>,
    key: Expr,
}

impl KafkaLogins {
    pub(super) fn new(scope: &mut Scope<'_>, kafka: &KafkaCluster, production: Option<&Production>) -> Self {
        let key = match production {
            Some(production) => production.keys.secrets.arn(),
            None => EncryptionKey::new(scope, "KafkaLoginKey", "PulseTrack MSK logins", KeyUse::OnBehalfOfCaller).arn(),
        };
        let users: Vec<(&str, &str)> = SERVICES.iter().filter(|d| d.kafka).map(|d| (d.construct, d.name)).collect();
        let logins = kafka.scram_logins(scope, "KafkaLogins", &users, &key);
        let secrets = SERVICES
            .iter()
            .filter(|d| d.kafka)
            .zip(logins)
            .map(|(def, login)| (def.name, login.secret.id().clone()))
            .collect();
        Self { secrets, key }
    }

    /// `service`'s user name and password, read from its login secret.
    pub(super) fn of(&self, service: &str) -> Option<(TaskValue, TaskValue)> {
        let secret = self.secrets.get(service)?;
        Some((TaskValue::secret_key(secret, SCRAM_USERNAME_KEY), TaskValue::secret_key(secret, SCRAM_PASSWORD_KEY)))
    }

    /// The key the login secrets are encrypted with (their readers may decrypt with it).
    pub(super) fn key(&self) -> &Expr {
        &self.key
    }
}
