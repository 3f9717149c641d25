//! A PostgreSQL RDS instance with a generated master secret, a second generated secret
//! for the service's own least-privileged role (which the service creates with the
//! master credentials at start-up, see `pulsetrack_common::db`), a subnet group and its
//! own security group (reachable only through connections granted to it). Clients
//! verify the server's certificate against Amazon RDS's CA bundle, which every image
//! carries at [`RDS_CA_BUNDLE_PATH`].

use crate::resources::{self as res, GenerateSecretString, ResourceType};
use crate::{
    core::{DeletionPolicy, Expr, Handle, Scope},
    ec2::{Egress, SecurityGroup, Vpc},
};

/// Where every service image holds [`RDS_CA_BUNDLE`] (`DATABASE_SSL_ROOT_CERT` on AWS).
pub const RDS_CA_BUNDLE_PATH: &str = "/etc/ssl/certs/rds-global-bundle.pem";

/// Amazon RDS's CA bundle (`global-bundle.pem`; source and checks in certs/README.md).
pub const RDS_CA_BUNDLE: &[u8] = include_bytes!("../../certs/rds-global-bundle.pem");

/// How services connect to RDS: TLS, the certificate checked against the bundle and
/// the instance's endpoint name.
pub const RDS_SSL_MODE: &str = "verify-full";

/// Characters a generated password leaves out (RDS refuses `/ @ " space` in master
/// passwords; the rest keeps URLs and shells simple).
const EXCLUDED_PASSWORD_CHARACTERS: &str = " %+~`#$&*()|[]{}:;<>?!'/@\"\\";

/// Current PostgreSQL major with a supported minor (the seed's 17.2 is deprecated).
pub const POSTGRES_VERSION: &str = "17.6";

pub struct Database {
    pub instance: Handle<res::DbInstance>,
    /// The master user's credentials (`username`, `password`): migrations only.
    pub secret: Handle<res::Secret>,
    /// The service role's credentials (`username` = `<database>_app`, `password`).
    pub app_secret: Handle<res::Secret>,
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
            generated_credentials(format!("Master credentials of the {database_name} database"), "pulsetrack"),
        );
        let app_secret = scope.add(
            "AppSecret",
            generated_credentials(
                format!("Credentials of the {database_name} service's own role (created by the service at start-up)"),
                &app_role(database_name),
            ),
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
        Self { instance, secret, app_secret, security_group, database_name: database_name.to_string() }
    }

    /// The service role's name.
    pub fn app_role(&self) -> String {
        app_role(&self.database_name)
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

/// The service role of `database`: `<database>_app`.
pub fn app_role(database: &str) -> String {
    format!("{database}_app")
}

/// A secret `{"username": <username>, "password": <generated>}`.
fn generated_credentials(description: String, username: &str) -> res::Secret {
    res::Secret {
        name: None,
        description,
        generate_secret_string: Some(GenerateSecretString {
            secret_string_template: Some(serde_json::json!({ "username": username }).to_string()),
            generate_string_key: Some("password".into()),
            password_length: 32,
            exclude_characters: Some(EXCLUDED_PASSWORD_CHARACTERS.into()),
            exclude_punctuation: None,
        }),
        secret_string: None,
        kms_key_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundle's certificates, DER, from its PEM blocks.
    fn certificates() -> Vec<Vec<u8>> {
        use base64::Engine as _;
        let text = std::str::from_utf8(RDS_CA_BUNDLE).expect("PEM is text");
        text.split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|block| {
                let (body, _) = block.split_once("-----END CERTIFICATE-----").expect("END line");
                let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                base64::engine::general_purpose::STANDARD.decode(b64).expect("base64")
            })
            .collect()
    }

    #[test]
    fn the_rds_bundle_holds_the_current_root_cas_of_every_region() {
        let certs = certificates();
        assert!(certs.len() >= 100, "{} certificates", certs.len());
        // DER: every certificate is one SEQUENCE with a two-byte length, nothing after it.
        for der in &certs {
            assert_eq!(der[..2], [0x30, 0x82], "not a DER certificate");
            assert_eq!(usize::from(der[2]) << 8 | usize::from(der[3]), der.len() - 4);
        }
        let holding =
            |name: &str| certs.iter().filter(|der| der.windows(name.len()).any(|w| w == name.as_bytes())).count();
        for ca in ["Root CA RSA2048 G1", "Root CA ECC384 G1", "Root CA RSA4096 G1"] {
            // Each region's root appears as subject and issuer of its own (self-signed) certificate.
            assert!(holding(ca) >= 30, "{ca}: {}", holding(ca));
        }
        for region in ["us-east-1", "eu-central-1", "ap-southeast-2"] {
            assert_eq!(holding(&format!("Amazon RDS {region} Root CA")), 3, "{region}");
        }
    }

    #[test]
    fn the_app_role_is_named_after_its_database() {
        assert_eq!(app_role("billing_service"), "billing_service_app");
    }
}
