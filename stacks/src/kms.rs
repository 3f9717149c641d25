//! Customer-managed KMS keys with rotation, whose key policy lets the account's IAM
//! policies grant their use (AWS's default key policy) plus whatever services the
//! key's purpose needs.

use serde_json::json;

use crate::core::{DeletionPolicy, Expr, Handle, Scope};
use crate::resources::{self as res, PolicyDocument, Principal, Statement};

/// What a key encrypts: decides its key policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// RDS storage, Secrets Manager, MSK: these services use the key on behalf of the
    /// caller (grants through `kms:ViaService`), so the account's IAM policies suffice.
    OnBehalfOfCaller,
    /// CloudWatch Logs encrypts with the key itself: its regional service principal
    /// is allowed, for this account's log groups only.
    CloudWatchLogs,
}

pub struct EncryptionKey {
    pub key: Handle<res::KmsKey>,
}

impl EncryptionKey {
    pub fn new(scope: &mut Scope<'_>, id: &str, description: &str, usage: KeyUse) -> Self {
        let account = Statement::grant(Principal::this_account(), &["kms:*"], Expr::lit("*"));
        let mut statements = vec![account];
        if usage == KeyUse::CloudWatchLogs {
            let logs = Statement::grant(
                Principal::Service(Expr::Sub("logs.${AWS::Region}.amazonaws.com".into())),
                &["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                Expr::lit("*"),
            )
            .when(json!({ "ArnLike": { "kms:EncryptionContext:aws:logs:arn":
                { "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*" } } }));
            statements.push(logs);
        }
        let key = scope.add(
            id,
            res::KmsKey {
                description: description.into(),
                enable_key_rotation: true,
                key_policy: PolicyDocument::new(statements),
                pending_window_in_days: 30,
            },
        );
        // Data encrypted with a deleted key is gone: a key outlives its stack.
        scope.set_deletion_policy(&key, DeletionPolicy::Retain);
        Self { key }
    }

    pub fn arn(&self) -> Expr {
        self.key.attr(res::KmsKeyAttr::Arn)
    }
}
