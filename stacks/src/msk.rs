//! An Amazon MSK cluster in the private subnets, with its own security group. Clients
//! reach the brokers over TLS only, and log in with SASL/SCRAM-SHA-512 (port 9096):
//! unauthenticated access is off. Each login is a Secrets Manager secret named
//! `AmazonMSK_*` under a customer-managed key (MSK refuses secrets under the AWS-managed
//! one), associated with the cluster. Brokers talk to each other over TLS.

use crate::resources::{
    self as res, BrokerLogs, BrokerNodeGroupInfo, ClientAuthentication, CloudWatchLogs, EbsStorageInfo, Enabled,
    EncryptionAtRest, EncryptionInTransit, EncryptionInfo, GenerateSecretString, LoggingInfo, Sasl, StorageInfo,
};
use crate::{
    core::{DeletionPolicy, Expr, Handle, Scope},
    ec2::{Egress, SecurityGroup, Vpc},
};

/// The port of MSK's SASL/SCRAM listener over TLS: the only one the cluster opens to
/// clients (client-broker traffic is `TLS`, and SCRAM is the only authentication).
pub const BROKER_PORT: u16 = 9096;

/// What every SCRAM login's secret name starts with (MSK accepts no other).
pub const SCRAM_SECRET_PREFIX: &str = "AmazonMSK_";

/// A login secret's JSON keys (the shape MSK reads).
pub const SCRAM_USERNAME_KEY: &str = "username";
pub const SCRAM_PASSWORD_KEY: &str = "password";

/// One SCRAM login of the cluster: its user name and the secret that holds it.
pub struct ScramLogin {
    pub username: String,
    pub secret: Handle<res::Secret>,
}

/// Days the production profile keeps the brokers' logs.
pub const BROKER_LOG_DAYS: u32 = 30;

pub struct KafkaCluster {
    pub cluster: Handle<res::MskCluster>,
    pub security_group: SecurityGroup,
    /// The brokers' log group (the production profile).
    pub broker_logs: Option<Handle<res::LogGroup>>,
}

/// What the production profile adds: storage under a customer-managed key, broker logs.
pub struct KafkaHardening {
    pub storage_key: Expr,
}

impl KafkaCluster {
    pub fn new(
        scope: &mut Scope<'_>,
        id: &str,
        vpc: &Vpc,
        (brokers, instance_type): (u32, &str),
        hardening: Option<&KafkaHardening>,
    ) -> Self {
        let mut scope = scope.child(id);
        let security_group = SecurityGroup::new(&mut scope, &format!("{id}Sg"), vpc, "MSK brokers", Egress::None);
        let broker_logs = hardening.map(|_| {
            let logs = scope.add(
                "BrokerLogs",
                res::LogGroup {
                    log_group_name: "/pulsetrack/msk".into(),
                    retention_in_days: BROKER_LOG_DAYS,
                    kms_key_id: None,
                },
            );
            scope.set_deletion_policy(&logs, DeletionPolicy::Delete);
            logs
        });
        let cluster = scope.add(
            "Cluster",
            res::MskCluster {
                cluster_name: "pulsetrack-kafka".into(),
                kafka_version: "3.6.0".into(),
                number_of_broker_nodes: brokers,
                broker_node_group_info: BrokerNodeGroupInfo {
                    instance_type: instance_type.into(),
                    client_subnets: vpc.private_subnet_refs(),
                    security_groups: vec![security_group.group_id()],
                    storage_info: StorageInfo { ebs_storage_info: EbsStorageInfo { volume_size: 20 } },
                },
                encryption_info: EncryptionInfo {
                    encryption_in_transit: EncryptionInTransit { client_broker: "TLS".into(), in_cluster: true },
                    encryption_at_rest: hardening
                        .map(|h| EncryptionAtRest { data_volume_kms_key_id: h.storage_key.clone() }),
                },
                client_authentication: Some(ClientAuthentication {
                    sasl: Sasl { scram: Enabled { enabled: true } },
                    unauthenticated: Enabled { enabled: false },
                }),
                logging_info: broker_logs.as_ref().map(|logs| LoggingInfo {
                    broker_logs: BrokerLogs {
                        cloud_watch_logs: CloudWatchLogs { enabled: true, log_group: logs.r#ref() },
                    },
                }),
            },
        );
        Self { cluster, security_group, broker_logs }
    }
}

impl KafkaCluster {
    /// One SCRAM login per `(construct id, user)` (a generated 32-character password),
    /// each in a secret `AmazonMSK_<stack>_<user>` encrypted with `key`, all associated
    /// with the cluster.
    pub fn scram_logins(&self, scope: &mut Scope<'_>, id: &str, users: &[(&str, &str)], key: &Expr) -> Vec<ScramLogin> {
        let mut scope = scope.child(id);
        let logins: Vec<ScramLogin> = users
            .iter()
            .map(|&(construct, user)| {
                let secret = res::Secret {
                    name: Some(Expr::Sub(format!("{SCRAM_SECRET_PREFIX}${{AWS::StackName}}_{user}"))),
                    description: format!("{user}'s SASL/SCRAM login at the MSK brokers"),
                    generate_secret_string: Some(GenerateSecretString {
                        secret_string_template: Some(serde_json::json!({ SCRAM_USERNAME_KEY: user }).to_string()),
                        generate_string_key: Some(SCRAM_PASSWORD_KEY.into()),
                        password_length: 32,
                        exclude_punctuation: Some(true),
                        ..Default::default()
                    }),
                    secret_string: None,
                    kms_key_id: Some(key.clone()),
                };
                ScramLogin { username: user.to_string(), secret: scope.add(&format!("{construct}Login"), secret) }
            })
            .collect();
        scope.add(
            "ScramSecrets",
            res::MskBatchScramSecret {
                cluster_arn: self.cluster.r#ref(),
                secret_arn_list: logins.iter().map(|l| l.secret.r#ref()).collect(),
            },
        );
        logins
    }
}
