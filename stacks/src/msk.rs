//! An Amazon MSK cluster in the private subnets, with its own security group. Clients
//! reach the brokers over TLS only (port 9094); brokers talk to each other over TLS.

use crate::resources::{
    self as res, BrokerLogs, BrokerNodeGroupInfo, CloudWatchLogs, EbsStorageInfo, EncryptionAtRest,
    EncryptionInTransit, EncryptionInfo, LoggingInfo, StorageInfo,
};
use crate::{
    core::{DeletionPolicy, Expr, Handle, Scope},
    ec2::{Egress, SecurityGroup, Vpc},
};

/// The TLS listener port of MSK brokers (the only one: client-broker traffic is `TLS`).
pub const BROKER_PORT: u16 = 9094;

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
