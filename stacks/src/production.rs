//! What the production profile adds to the stack: customer-managed KMS keys for RDS
//! storage, Secrets Manager, CloudWatch Logs and MSK, the RDS enhanced-monitoring
//! role, and the ALB access-log bucket. [`Production::encrypt`] then visits every
//! secret and log group any construct built (as a CDK aspect does), so a secret added
//! later is encrypted without being listed here.

use crate::core::{Expr, Handle, Scope, Stack};
use crate::ecs::assumable_by;
use crate::elb::AccessLogs;
use crate::kms::{EncryptionKey, KeyUse};
use crate::rds::DbProfile;
use crate::resources as res;
use crate::s3::AccessLogBucket;

/// Seconds between RDS enhanced-monitoring samples.
pub const MONITORING_INTERVAL: u32 = 60;

/// Days the ALB access logs are kept.
pub const ACCESS_LOG_DAYS: u32 = 90;

pub struct Keys {
    pub rds: EncryptionKey,
    pub secrets: EncryptionKey,
    pub logs: EncryptionKey,
    pub msk: EncryptionKey,
}

pub struct Production {
    pub keys: Keys,
    pub monitoring_role: Handle<res::IamRole>,
    pub access_logs: AccessLogBucket,
}

impl Production {
    pub fn new(scope: &mut Scope<'_>, id: &str) -> Self {
        let mut scope = scope.child(id);
        let keys = Keys {
            rds: EncryptionKey::new(&mut scope, "RdsKey", "PulseTrack RDS storage", KeyUse::OnBehalfOfCaller),
            secrets: EncryptionKey::new(&mut scope, "SecretsKey", "PulseTrack secrets", KeyUse::OnBehalfOfCaller),
            logs: EncryptionKey::new(&mut scope, "LogsKey", "PulseTrack CloudWatch logs", KeyUse::CloudWatchLogs),
            msk: EncryptionKey::new(&mut scope, "MskKey", "PulseTrack MSK storage", KeyUse::OnBehalfOfCaller),
        };
        let mut monitoring = assumable_by("monitoring.rds.amazonaws.com");
        monitoring.managed_policy_arns = vec![Expr::Sub(
            "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole".into(),
        )];
        let monitoring_role = scope.add("RdsMonitoringRole", monitoring);
        let access_logs = AccessLogBucket::new(&mut scope, "AccessLogs", "alb", ACCESS_LOG_DAYS);
        Self { keys, monitoring_role, access_logs }
    }

    /// Where the public ALB writes its access logs.
    pub fn alb_access_logs(&self) -> AccessLogs {
        AccessLogs {
            bucket: self.access_logs.bucket.r#ref(),
            prefix: self.access_logs.prefix.clone(),
            bucket_policy: self.access_logs.policy.id().clone(),
        }
    }

    /// What every database instance gets: the RDS key, enhanced monitoring.
    pub fn database_profile(&self) -> DbProfile {
        DbProfile {
            storage_key: self.keys.rds.arn(),
            monitoring_role: self.monitoring_role.attr(res::IamRoleAttr::Arn),
            monitoring_interval: MONITORING_INTERVAL,
        }
    }

    /// Every secret and log group of `stack` under this profile's keys.
    pub fn encrypt(&self, stack: &mut Stack) {
        for (_, secret) in stack.resources_of_mut::<res::Secret>() {
            secret.kms_key_id = Some(self.keys.secrets.arn());
        }
        for (_, log_group) in stack.resources_of_mut::<res::LogGroup>() {
            log_group.kms_key_id = Some(self.keys.logs.arn());
        }
    }
}
