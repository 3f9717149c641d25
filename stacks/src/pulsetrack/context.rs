//! The synthesis context (`--context key=value`): what one deployment of the stack
//! differs in, parsed and checked before anything is built.

use std::collections::BTreeMap;

use pulsetrack_settings as settings;

/// Synthesis context (`--context key=value`).
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub environment: String,
    pub image_registry: String,
    pub image_tag: String,
    pub desired_count: u32,
    /// Create an MSK cluster (the seed's `USE_MSK`); otherwise `kafka_brokers` is used.
    pub msk: bool,
    pub kafka_brokers: Option<String>,
    pub db_instance_class: String,
    pub admin_email: String,
    /// Cloud Map service discovery; off only for endpoints without Cloud Map (moto).
    pub service_discovery: bool,
    /// Pushed images by service (`host/path/service@sha256:…`), set by the deployer
    /// after it published them; a service without one is `image_registry/service:image_tag`.
    pub images: BTreeMap<String, String>,
    /// How hardened (and how expensive) the stack is.
    pub profile: Profile,
    /// An ACM certificate for the public entry: HTTPS on 4004 (and port 80 redirecting
    /// to it); without one the entry is plain HTTP, and synthesis warns.
    pub certificate_arn: Option<String>,
    /// What a self-signed-up account may do (`approval` unless set: an ADMIN grants roles).
    pub signup_mode: settings::SignupMode,
    /// Requests per second one caller may make through the gateway.
    pub rate_limit_per_second: u32,
}

/// The deployment profile (`-c profile=default|production`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Cheap, for LocalStack and demos: single-AZ databases, AWS-managed keys, no
    /// access logs, no deletion protection.
    #[default]
    Default,
    /// Multi-AZ databases, deletion protection, customer-managed KMS keys for the
    /// databases, secrets, logs and MSK, ALB access logs, RDS enhanced monitoring.
    /// Requires `certificate-arn`: a production entry is never plain HTTP.
    Production,
}

impl Profile {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "default" => Some(Self::Default),
            "production" => Some(Self::Production),
            _ => None,
        }
    }

    pub fn is_production(self) -> bool {
        self == Self::Production
    }
}

impl Default for Context {
    fn default() -> Self {
        Self {
            environment: "dev".into(),
            image_registry: "pulsetrack".into(),
            image_tag: "latest".into(),
            desired_count: 1,
            msk: true,
            kafka_brokers: None,
            db_instance_class: "db.t4g.micro".into(),
            admin_email: "admin@pulsetrack.local".into(),
            service_discovery: true,
            images: BTreeMap::new(),
            profile: Profile::Default,
            certificate_arn: None,
            signup_mode: settings::SignupMode::Approval,
            rate_limit_per_second: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("context {key}: {reason}")]
pub struct ContextError {
    pub key: String,
    pub reason: String,
}

/// The context keys `--context` accepts.
pub const CONTEXT_KEYS: [&str; 13] = [
    "environment",
    "image-registry",
    "image-tag",
    "desired-count",
    "msk",
    "kafka-brokers",
    "db-instance-class",
    "admin-email",
    "service-discovery",
    "profile",
    "certificate-arn",
    "signup-mode",
    "rate-limit",
];

impl Context {
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, ContextError> {
        let mut ctx = Self::default();
        let err = |key: &str, reason: &str| ContextError { key: key.into(), reason: reason.into() };
        for (key, value) in pairs {
            let value = value.trim();
            match key {
                "environment" if !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
                    ctx.environment = value.into()
                }
                "environment" => return Err(err(key, "letters, digits and '-' only")),
                "image-registry" if !value.is_empty() => ctx.image_registry = value.trim_end_matches('/').into(),
                "image-tag" if !value.is_empty() => ctx.image_tag = value.into(),
                "desired-count" => {
                    ctx.desired_count =
                        value.parse().ok().filter(|n| *n <= 10).ok_or_else(|| err(key, "an integer from 0 to 10"))?
                }
                "msk" => ctx.msk = value.parse().map_err(|_| err(key, "true or false"))?,
                "service-discovery" => ctx.service_discovery = value.parse().map_err(|_| err(key, "true or false"))?,
                "kafka-brokers" if !value.is_empty() => ctx.kafka_brokers = Some(value.into()),
                "db-instance-class" if value.starts_with("db.") => ctx.db_instance_class = value.into(),
                "admin-email" if value.contains('@') => ctx.admin_email = value.into(),
                "profile" => ctx.profile = Profile::parse(value).ok_or_else(|| err(key, "default or production"))?,
                "certificate-arn" if is_acm_certificate_arn(value) => ctx.certificate_arn = Some(value.into()),
                "certificate-arn" => {
                    return Err(err(
                        key,
                        "an ACM certificate ARN (arn:<partition>:acm:<region>:<account>:certificate/<id>)",
                    ));
                }
                "signup-mode" => ctx.signup_mode = value.parse().map_err(|e: String| err(key, &e))?,
                "rate-limit" => {
                    ctx.rate_limit_per_second = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| err(key, "requests per second per caller, a positive integer"))?
                }
                k if CONTEXT_KEYS.contains(&k) => return Err(err(key, "invalid value")),
                _ => return Err(err(key, &format!("unknown key; expected one of {}", CONTEXT_KEYS.join(", ")))),
            }
        }
        if !ctx.msk && ctx.kafka_brokers.is_none() {
            return Err(err("kafka-brokers", "required when msk=false (where the services find Kafka)"));
        }
        if ctx.profile.is_production() && ctx.certificate_arn.is_none() {
            return Err(err("certificate-arn", "required with profile=production (the public entry must be HTTPS)"));
        }
        Ok(ctx)
    }

    pub fn image(&self, service: &str) -> String {
        match self.images.get(service) {
            Some(pushed) => pushed.clone(),
            None => format!("{}/{service}:{}", self.image_registry, self.image_tag),
        }
    }
}

/// `arn:<partition>:acm:<region>:<account>:certificate/<id>`.
fn is_acm_certificate_arn(value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    matches!(parts[..], ["arn", partition, "acm", region, account, resource]
        if !partition.is_empty() && !region.is_empty() && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource.strip_prefix("certificate/").is_some_and(|id| !id.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_validated() {
        assert!(Context::from_pairs([("desired-count", "x")]).is_err());
        assert!(Context::from_pairs([("colour", "blue")]).expect_err("unknown").reason.contains("unknown key"));
        let ctx =
            Context::from_pairs([("image-registry", "123.dkr.ecr.eu-west-1.amazonaws.com/"), ("image-tag", "v1")])
                .expect("ok");
        assert_eq!(ctx.image("auth-service"), "123.dkr.ecr.eu-west-1.amazonaws.com/auth-service:v1");
    }
}
