//! The assets bucket: where templates too large to send inline go, as `cdk bootstrap`
//! prepares one per account and region. `deployer bootstrap` prepares it; `deploy`
//! does on the first deploy that needs it. The bucket is SSE encrypted, versioned,
//! closed to the public, and its policy refuses any request not made over TLS.

use crate::error::aws_call_failed;
use anyhow::{Context as _, anyhow};
use aws_config::SdkConfig;
use aws_sdk_s3::{
    Client,
    error::ProvideErrorMetadata,
    primitives::ByteStream,
    types::{
        BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, PublicAccessBlockConfiguration,
        ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
        ServerSideEncryptionRule, VersioningConfiguration,
    },
};
use serde_json::json;
use sha2::{Digest, Sha256};

/// CloudFormation's documented limit for a template sent inline (`TemplateBody`), in
/// bytes; larger templates must be passed as a `TemplateURL` to S3.
pub const INLINE_TEMPLATE_LIMIT: usize = 51_200;

/// The account's and region's assets bucket.
pub struct AssetsBucket {
    client: Client,
    pub name: String,
    pub region: String,
    /// Whether the endpoint is reached over TLS: only then can the bucket refuse
    /// non-TLS requests without refusing the deployer's own.
    pub over_tls: bool,
}

/// How the bucket was left by [`AssetsBucket::bootstrap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bootstrapped {
    pub created: bool,
    /// Whether the TLS-only policy is in place (not over a plain-HTTP endpoint).
    pub tls_policy: bool,
}

/// The bucket's name for an account and region (S3 names are global, hence both).
pub fn bucket_name(account: &str, region: &str) -> String {
    format!("pulsetrack-assets-{account}-{region}")
}

/// Where a template is stored: under its content hash, so the same template is
/// stored once.
pub fn template_key(body: &str) -> String {
    format!("templates/{:x}.json", Sha256::digest(body.as_bytes()))
}

/// The `TemplateURL` CloudFormation reads the object from (path style, which both
/// CloudFormation and emulators accept).
pub fn template_url(region: &str, bucket: &str, key: &str) -> String {
    format!("https://s3.{region}.amazonaws.com/{bucket}/{key}")
}

/// The bucket policy: no request that does not use TLS.
fn tls_only_policy(bucket: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": { "Bool": { "aws:SecureTransport": "false" } },
        }],
    })
    .to_string()
}

/// A stored template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTemplate {
    pub key: String,
    pub url: String,
    /// False when an object under the same content hash was already there.
    pub uploaded: bool,
}

fn api<E: ProvideErrorMetadata, R: std::fmt::Debug>(
    call: &'static str,
) -> impl Fn(&aws_sdk_s3::error::SdkError<E, R>) -> anyhow::Error {
    move |e| {
        let status = e.raw_response().map(|r| format!("{r:?}")).unwrap_or_default();
        match e.message().or(e.code()) {
            Some(message) => anyhow!("S3 {call} failed: {message}"),
            None => anyhow!("S3 {call} failed: {e} {}", status.chars().take(200).collect::<String>()),
        }
    }
}

impl AssetsBucket {
    /// The bucket of the account `config`'s credentials belong to (STS
    /// GetCallerIdentity) in `config`'s region. `path_style` for endpoints that do not
    /// serve bucket subdomains (emulators); `over_tls` when requests use HTTPS.
    pub async fn for_config(config: &SdkConfig, path_style: bool, over_tls: bool) -> anyhow::Result<Self> {
        let identity = aws_sdk_sts::Client::new(config)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| aws_call_failed("STS GetCallerIdentity", &e))?;
        let account = identity.account().context("STS GetCallerIdentity returned no account")?;
        let region = config.region().context("no AWS region is configured")?.to_string();
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(path_style).build();
        Ok(Self { client: Client::from_conf(s3), name: bucket_name(account, &region), region, over_tls })
    }

    /// Whether the bucket exists (and is ours to use).
    pub async fn exists(&self) -> anyhow::Result<bool> {
        match self.client.head_bucket().bucket(&self.name).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(api("HeadBucket")(&e)),
        }
    }

    /// Creates the bucket when missing, and (again) applies its settings: SSE,
    /// versioning, the public access block and the TLS-only policy (that one only
    /// when the endpoint is reached over TLS: over plain HTTP it would refuse the
    /// deployer's own requests). Idempotent.
    pub async fn bootstrap(&self) -> anyhow::Result<Bootstrapped> {
        let created = !self.exists().await?;
        if created {
            let mut create = self.client.create_bucket().bucket(&self.name);
            if self.region != "us-east-1" {
                create = create.create_bucket_configuration(
                    CreateBucketConfiguration::builder()
                        .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                        .build(),
                );
            }
            match create.send().await {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you()) => {}
                Err(e) => return Err(api("CreateBucket")(&e)),
            }
        }
        let sse = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::Aes256)
            .build()
            .context("encryption rule")?;
        let encryption = ServerSideEncryptionConfiguration::builder()
            .rules(ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(sse).build())
            .build()
            .context("encryption configuration")?;
        self.client
            .put_bucket_encryption()
            .bucket(&self.name)
            .server_side_encryption_configuration(encryption)
            .send()
            .await
            .map_err(|e| api("PutBucketEncryption")(&e))?;
        self.client
            .put_bucket_versioning()
            .bucket(&self.name)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .map_err(|e| api("PutBucketVersioning")(&e))?;
        self.client
            .put_public_access_block()
            .bucket(&self.name)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| api("PutPublicAccessBlock")(&e))?;
        if self.over_tls {
            self.client
                .put_bucket_policy()
                .bucket(&self.name)
                .policy(tls_only_policy(&self.name))
                .send()
                .await
                .map_err(|e| api("PutBucketPolicy")(&e))?;
        }
        Ok(Bootstrapped { created, tls_policy: self.over_tls })
    }

    /// Stores `body` under its content hash, unless an object is already there.
    pub async fn store_template(&self, body: &str) -> anyhow::Result<StoredTemplate> {
        let key = template_key(body);
        let url = template_url(&self.region, &self.name, &key);
        let present = match self.client.head_object().bucket(&self.name).key(&key).send().await {
            Ok(head) => head.content_length() == Some(body.len() as i64),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => false,
            Err(e) => return Err(api("HeadObject")(&e)),
        };
        if present {
            return Ok(StoredTemplate { key, url, uploaded: false });
        }
        self.client
            .put_object()
            .bucket(&self.name)
            .key(&key)
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await
            .map_err(|e| api("PutObject")(&e))?;
        Ok(StoredTemplate { key, url, uploaded: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys_are_derived_not_chosen() {
        assert_eq!(bucket_name("123456789012", "eu-west-1"), "pulsetrack-assets-123456789012-eu-west-1");
        assert!(bucket_name("123456789012", "ap-southeast-2").len() <= 63, "S3's name limit");
        let key = template_key("{}");
        assert_eq!(key, template_key("{}"), "same body, same key");
        assert_ne!(key, template_key("{ }"));
        assert!(key.starts_with("templates/") && key.ends_with(".json") && key.len() == 10 + 64 + 5);
        assert_eq!(template_url("us-east-1", "b", "k/x.json"), "https://s3.us-east-1.amazonaws.com/b/k/x.json");
    }

    #[test]
    fn the_policy_denies_requests_without_tls() {
        let policy: serde_json::Value = serde_json::from_str(&tls_only_policy("b")).expect("json");
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Effect"], "Deny");
        assert_eq!(statement["Condition"]["Bool"]["aws:SecureTransport"], "false");
        assert_eq!(statement["Resource"][1], "arn:aws:s3:::b/*");
    }
}
