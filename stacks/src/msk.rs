//! An Amazon MSK cluster in the private subnets, with its own security group.

use crate::resources::{
    self as res, BrokerNodeGroupInfo, EbsStorageInfo, EncryptionInTransit, EncryptionInfo, StorageInfo,
};
use crate::{
    core::{Handle, Scope},
    ec2::{Egress, SecurityGroup, Vpc},
};

/// Plaintext listener port of MSK brokers (clients in the VPC only).
pub const BROKER_PORT: u16 = 9092;

pub struct KafkaCluster {
    pub cluster: Handle<res::MskCluster>,
    pub security_group: SecurityGroup,
}

impl KafkaCluster {
    pub fn new(scope: &mut Scope<'_>, id: &str, vpc: &Vpc, brokers: u32, instance_type: &str) -> Self {
        let mut scope = scope.child(id);
        let security_group = SecurityGroup::new(&mut scope, &format!("{id}Sg"), vpc, "MSK brokers", Egress::None);
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
                    encryption_in_transit: EncryptionInTransit {
                        client_broker: "TLS_PLAINTEXT".into(),
                        in_cluster: true,
                    },
                },
            },
        );
        Self { cluster, security_group }
    }
}
