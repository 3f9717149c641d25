//! The bucket the public load balancer writes its access logs to: SSE-S3 (the only
//! encryption ELB log delivery supports), versioned, public access blocked, ACLs off,
//! TLS-only, and a bucket policy that lets ELB log delivery write under its prefix.

use serde_json::json;

use crate::core::{DeletionPolicy, Expr, Handle, Scope};
use crate::resources::{
    self as res, BucketEncryption, Effect, LifecycleConfiguration, LifecycleRule, NoncurrentVersionExpiration,
    OneOrMany, OwnershipControls, OwnershipControlsRule, PolicyDocument, Principal, PublicAccessBlockConfiguration,
    ServerSideEncryptionByDefault, ServerSideEncryptionRule, Statement, VersioningConfiguration,
};

/// The service principal that delivers ALB access logs.
pub const ELB_LOG_DELIVERY: &str = "logdelivery.elasticloadbalancing.amazonaws.com";

/// A bucket no one outside the account reaches: SSE-S3, versioned, public access
/// blocked, ACLs off, objects expired by `lifecycle`; no Object Lock.
pub fn private_bucket(lifecycle: LifecycleRule) -> res::Bucket {
    res::Bucket {
        bucket_encryption: BucketEncryption {
            server_side_encryption_configuration: vec![ServerSideEncryptionRule {
                server_side_encryption_by_default: ServerSideEncryptionByDefault { sse_algorithm: "AES256".into() },
            }],
        },
        versioning_configuration: VersioningConfiguration { status: "Enabled".into() },
        public_access_block_configuration: PublicAccessBlockConfiguration::all(),
        ownership_controls: OwnershipControls {
            rules: vec![OwnershipControlsRule { object_ownership: "BucketOwnerEnforced".into() }],
        },
        lifecycle_configuration: LifecycleConfiguration { rules: vec![lifecycle] },
        object_lock_enabled: None,
        object_lock_configuration: None,
    }
}

/// Denies every request to the bucket `arn` (a `${...}` expression) that is not over TLS.
pub fn tls_only(arn: &str) -> Statement {
    Statement {
        effect: Effect::Deny,
        principal: Some(Principal::Aws(Expr::lit("*"))),
        action: OneOrMany::One("s3:*".into()),
        resource: Some(OneOrMany::Many(vec![Expr::Sub(arn.to_string()), Expr::Sub(format!("{arn}/*"))])),
        condition: Some(json!({ "Bool": { "aws:SecureTransport": "false" } })),
    }
}

pub struct AccessLogBucket {
    pub bucket: Handle<res::Bucket>,
    pub policy: Handle<res::BucketPolicy>,
    pub prefix: String,
}

impl AccessLogBucket {
    /// Logs under `prefix/`, kept `retention_days`.
    pub fn new(scope: &mut Scope<'_>, id: &str, prefix: &str, retention_days: u32) -> Self {
        let mut scope = scope.child(id);
        let bucket = scope.add(
            "Bucket",
            private_bucket(LifecycleRule {
                id: "expire-access-logs".into(),
                status: "Enabled".into(),
                expiration_in_days: retention_days,
                noncurrent_version_expiration: NoncurrentVersionExpiration { noncurrent_days: 7 },
            }),
        );
        scope.set_deletion_policy(&bucket, DeletionPolicy::Retain);
        let arn = bucket.sub(res::BucketAttr::Arn);
        let write = Statement::grant(
            Principal::service(ELB_LOG_DELIVERY),
            &["s3:PutObject"],
            Expr::Sub(format!("{arn}/{prefix}/AWSLogs/${{AWS::AccountId}}/*")),
        );
        let tls_only = tls_only(&arn);
        let policy = scope.add(
            "Policy",
            res::BucketPolicy { bucket: bucket.r#ref(), policy_document: PolicyDocument::new(vec![write, tls_only]) },
        );
        Self { bucket, policy, prefix: prefix.into() }
    }
}
