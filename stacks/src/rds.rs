//! A PostgreSQL RDS instance with a generated master secret, a subnet group and its
//! own security group (reachable only through connections granted to it).

use crate::resources::{self as res, GenerateSecretString, ResourceType};
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
        let secret = scope.add(
            "Secret",
            res::Secret {
                description: format!("Master credentials of the {database_name} database"),
                generate_secret_string: Some(GenerateSecretString {
                    secret_string_template: Some("{\"username\":\"pulsetrack\"}".into()),
                    generate_string_key: Some("password".into()),
                    password_length: 32,
                    exclude_characters: Some(" %+~`#$&*()|[]{}:;<>?!'/@\"\\".into()),
                    exclude_punctuation: None,
                }),
                secret_string: None,
                kms_key_id: None,
            },
        );
        let subnet_group = scope.add(
            "SubnetGroup",
            res::DbSubnetGroup {
                db_subnet_group_description: format!("Private subnets of the {database_name} database"),
                subnet_ids: vpc.private_subnet_refs(),
            },
        );
        let resolve = |key: &str| Expr::Sub(format!("{{{{resolve:secretsmanager:${{{secret}}}:SecretString:{key}}}}}"));
        let instance = scope.add(
            "Instance",
            res::DbInstance {
                engine: "postgres".into(),
                engine_version: POSTGRES_VERSION.into(),
                db_instance_class: instance_class.into(),
                allocated_storage: "20".into(),
                storage_type: "gp3".into(),
                storage_encrypted: true,
                db_name: database_name.into(),
                master_username: resolve("username"),
                master_user_password: resolve("password"),
                db_subnet_group_name: subnet_group.r#ref(),
                vpc_security_groups: vec![security_group.group_id()],
                publicly_accessible: false,
                multi_az: false,
                backup_retention_period: 7,
                copy_tags_to_snapshot: true,
                deletion_protection: false,
                auto_minor_version_upgrade: true,
                hardening: Default::default(),
            },
        );
        scope.set_deletion_policy(&instance, DeletionPolicy::Snapshot);
        scope.add(
            "SecretAttachment",
            res::SecretTargetAttachment {
                secret_id: secret.r#ref(),
                target_id: instance.r#ref(),
                target_type: <res::DbInstance as ResourceType>::NAME.into(),
            },
        );
        Self { instance, secret, security_group, database_name: database_name.to_string() }
    }

    pub fn endpoint_address(&self) -> Expr {
        self.instance.attr(res::DbInstanceAttr::EndpointAddress)
    }
}

// ---------------------------------------------------------------- production profile

/// What the production profile sets on a database instance.
pub struct DbProfile {
    pub storage_key: Expr,
    pub monitoring_role: Expr,
    pub monitoring_interval: u32,
}

impl Database {
    /// Multi-AZ, deletion protection, storage under a customer-managed key, enhanced
    /// monitoring and IAM authentication (the production profile).
    pub fn harden(&self, scope: &mut Scope<'_>, profile: &DbProfile) {
        let Some(instance) = scope.get_mut(&self.instance) else { return };
        instance.multi_az = true;
        instance.deletion_protection = true;
        *instance.hardening = res::DbHardening {
            kms_key_id: Some(profile.storage_key.clone()),
            monitoring_interval: Some(profile.monitoring_interval),
            monitoring_role_arn: Some(profile.monitoring_role.clone()),
            enable_iam_database_authentication: Some(true),
        };
    }
}
