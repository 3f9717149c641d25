//! A PostgreSQL RDS instance with a generated master secret, a subnet group and its
//! own security group (reachable only through connections granted to it).

use serde_json::json;

use crate::resources as res;
use crate::{
    core::{DeletionPolicy, Expr, Handle, Scope},
    ec2::{Egress, SecurityGroup, Vpc},
};

/// Current PostgreSQL major with a supported minor (the seed's 17.2 is deprecated).
pub const POSTGRES_VERSION: &str = "17.6";

pub struct Database {
    pub instance: Handle<res::DbInstance>,
    pub secret: Handle<res::Secret>,
    pub security_group: SecurityGroup,
    pub database_name: String,
}

impl Database {
    pub fn new(scope: &mut Scope<'_>, id: &str, vpc: &Vpc, database_name: &str, instance_class: &str) -> Self {
        let mut scope = scope.child(id);
        let security_group =
            SecurityGroup::new(&mut scope, &format!("{id}Sg"), vpc, &format!("{database_name} database"), Egress::None);
        let secret = scope.add::<res::Secret>(
            "Secret",
            json!({ "Description": format!("Master credentials of the {database_name} database"),
                    "GenerateSecretString": { "SecretStringTemplate": "{\"username\":\"pulsetrack\"}",
                        "GenerateStringKey": "password", "PasswordLength": 32,
                        "ExcludeCharacters": " %+~`#$&*()|[]{}:;<>?!'/@\"\\" } }),
        );
        let subnet_group = scope.add::<res::DbSubnetGroup>(
            "SubnetGroup",
            json!({ "DBSubnetGroupDescription": format!("Private subnets of the {database_name} database"),
                    "SubnetIds": vpc.private_subnet_refs() }),
        );
        let resolve = |key: &str| Expr::Sub(format!("{{{{resolve:secretsmanager:${{{secret}}}:SecretString:{key}}}}}"));
        let instance = scope.add::<res::DbInstance>(
            "Instance",
            json!({
                "Engine": "postgres",
                "EngineVersion": POSTGRES_VERSION,
                "DBInstanceClass": instance_class,
                "AllocatedStorage": "20",
                "StorageType": "gp3",
                "StorageEncrypted": true,
                "DBName": database_name,
                "MasterUsername": resolve("username"),
                "MasterUserPassword": resolve("password"),
                "DBSubnetGroupName": subnet_group.r#ref(),
                "VPCSecurityGroups": [security_group.group_id()],
                "PubliclyAccessible": false,
                "MultiAZ": false,
                "BackupRetentionPeriod": 7,
                "CopyTagsToSnapshot": true,
                "DeletionProtection": false,
                "AutoMinorVersionUpgrade": true,
            }),
        );
        scope.set_deletion_policy(&instance, DeletionPolicy::Snapshot);
        scope.add::<res::SecretTargetAttachment>(
            "SecretAttachment",
            json!({ "SecretId": secret.r#ref(), "TargetId": instance.r#ref(), "TargetType": "AWS::RDS::DBInstance" }),
        );
        Self { instance, secret, security_group, database_name: database_name.to_string() }
    }

    pub fn endpoint_address(&self) -> Expr {
        self.instance.attr(res::DbInstanceAttr::EndpointAddress)
    }
}
