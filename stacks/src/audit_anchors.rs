//! The bucket the audit trails' anchors go to: Object Lock on, so that each anchor a
//! service writes is locked for the retention as it lands and nobody can remove or
//! replace it (not the service, not an administrator in `COMPLIANCE` mode), versioned
//! (Object Lock needs it), encrypted, public access blocked, TLS only. Each audited
//! service's task role may put and read objects under its own folder only, and list
//! that folder; no role may delete.
//!
//! `deployer destroy` leaves the bucket behind (`Retain`): its anchors are the
//! evidence that the trails were not rewritten, and S3 refuses to delete a bucket that
//! holds locked objects anyway. Remove it by hand once the last retention has passed.

use crate::core::{DeletionPolicy, Expr, Handle, Scope};
use crate::resources::{
    self as res, DefaultRetention, LifecycleRule, NoncurrentVersionExpiration, ObjectLockConfiguration, ObjectLockRule,
    OneOrMany, PolicyDocument, Statement,
};

/// The folder every trail's anchors go under (`<prefix>/<service>/`).
pub const ANCHORS_PREFIX: &str = "trails";

/// How long each anchor is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorRetention {
    /// `COMPLIANCE` or `GOVERNANCE`.
    pub mode: &'static str,
    pub days: u32,
}

impl AnchorRetention {
    /// Production: six years, HIPAA's retention of required documentation (§164.316(b)(2)),
    /// in compliance mode.
    pub const PRODUCTION: Self = Self { mode: "COMPLIANCE", days: 2190 };
    /// Other deployments: 30 days in governance mode, so that a test stack's bucket can
    /// be emptied by an administrator who bypasses it.
    pub const DEFAULT: Self = Self { mode: "GOVERNANCE", days: 30 };
}

pub struct AuditAnchors {
    pub bucket: Handle<res::Bucket>,
    pub policy: Handle<res::BucketPolicy>,
    pub retention: AnchorRetention,
}

impl AuditAnchors {
    pub fn new(scope: &mut Scope<'_>, id: &str, retention: AnchorRetention) -> Self {
        let mut scope = scope.child(id);
        let bucket = scope.add(
            "Bucket",
            res::Bucket {
                object_lock_enabled: Some(true),
                object_lock_configuration: Some(ObjectLockConfiguration {
                    object_lock_enabled: "Enabled".into(),
                    rule: ObjectLockRule {
                        default_retention: DefaultRetention { mode: retention.mode.into(), days: retention.days },
                    },
                }),
                // Anchors are removed a day after their lock ends, never before.
                ..crate::s3::private_bucket(LifecycleRule {
                    id: "expire-unlocked-anchors".into(),
                    status: "Enabled".into(),
                    expiration_in_days: retention.days + 1,
                    noncurrent_version_expiration: NoncurrentVersionExpiration { noncurrent_days: retention.days + 1 },
                })
            },
        );
        scope.set_deletion_policy(&bucket, DeletionPolicy::Retain);
        let arn = bucket.sub(res::BucketAttr::Arn);
        let policy = scope.add(
            "Policy",
            res::BucketPolicy {
                bucket: bucket.r#ref(),
                policy_document: PolicyDocument::new(vec![crate::s3::tls_only(&arn)]),
            },
        );
        Self { bucket, policy, retention }
    }

    /// `AUDIT_ANCHORS` for every service: `s3://<bucket>/trails`.
    pub fn setting(&self) -> Expr {
        Expr::Sub(format!("s3://${{{}}}/{ANCHORS_PREFIX}", self.bucket))
    }

    /// What `service`'s task role may do: put and read anchors in its own folder, and
    /// list that folder (to find the newest). Nothing else, and no delete.
    pub fn task_statements(&self, service: &str) -> Vec<Statement> {
        let arn = self.bucket.sub(res::BucketAttr::Arn);
        let folder = format!("{ANCHORS_PREFIX}/{service}/");
        vec![
            Statement::allow(&["s3:PutObject", "s3:GetObject"], OneOrMany::One(Expr::Sub(format!("{arn}/{folder}*")))),
            Statement::allow(&["s3:ListBucket"], OneOrMany::One(Expr::Sub(arn)))
                .when(serde_json::json!({ "StringLike": { "s3:prefix": [format!("{folder}*")] } })),
        ]
    }
}
