//! An Amazon MSK cluster in the private subnets, with its own security group.

use serde_json::json;

use crate::resources as res;
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
        let cluster = scope.add::<res::MskCluster>(
            "Cluster",
            json!({
                "ClusterName": "pulsetrack-kafka",
                "KafkaVersion": "3.6.0",
                "NumberOfBrokerNodes": brokers,
                "BrokerNodeGroupInfo": {
                    "InstanceType": instance_type,
                    "ClientSubnets": vpc.private_subnet_refs(),
                    "SecurityGroups": [security_group.group_id()],
                    "StorageInfo": { "EBSStorageInfo": { "VolumeSize": 20 } },
                },
                "EncryptionInfo": { "EncryptionInTransit": { "ClientBroker": "TLS_PLAINTEXT", "InCluster": true } },
            }),
        );
        Self { cluster, security_group }
    }
}
