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
    /// What a new password must be (`strong` unless set).
    pub password_policy: settings::PasswordPolicy,
    /// The roles whose accounts must use a second factor (`REQUIRE_MFA_ROLES`): none,
    /// or the profile's [`Profile::mfa_roles`] when `require-mfa` is not given.
    pub require_mfa_roles: Vec<AccountRole>,
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

    /// The roles that must use a second factor unless `require-mfa` says otherwise:
    /// none for the default profile, ADMIN and AUDITOR for production.
    pub fn mfa_roles(self) -> Vec<AccountRole> {
        match self {
            Self::Default => Vec::new(),
            Self::Production => vec![AccountRole::Admin, AccountRole::Auditor],
        }
    }
}

/// An account's role in PulseTrack, as auth-service names it (`REQUIRE_MFA_ROLES`
/// holds these names, upper-case); not an IAM role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountRole {
    Pending,
    User,
    Clinician,
    Billing,
    Auditor,
    Admin,
}

impl AccountRole {
    pub const ALL: [AccountRole; 6] = [
        AccountRole::Pending,
        AccountRole::User,
        AccountRole::Clinician,
        AccountRole::Billing,
        AccountRole::Auditor,
        AccountRole::Admin,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::User => "USER",
            Self::Clinician => "CLINICIAN",
            Self::Billing => "BILLING",
            Self::Auditor => "AUDITOR",
            Self::Admin => "ADMIN",
        }
    }

    /// `none` or empty: no role; otherwise comma-separated role names, upper-case, each
    /// kept once in the order given.
    pub fn parse_list(value: &str) -> Result<Vec<Self>, String> {
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("none") {
            return Ok(Vec::new());
        }
        let mut roles = Vec::new();
        for entry in value.split(',').map(str::trim) {
            let role = entry.parse()?;
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        Ok(roles)
    }

    /// The names of `roles`, comma-separated (`REQUIRE_MFA_ROLES`).
    pub fn join(roles: &[Self]) -> String {
        roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
    }
}

impl std::fmt::Display for AccountRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AccountRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(role) = Self::ALL.into_iter().find(|r| r.as_str() == s) {
            return Ok(role);
        }
        let names = Self::ALL.map(Self::as_str).join(", ");
        Err(match Self::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(s)) {
            Some(role) => format!("{s:?}: role names are upper-case ({role})"),
            None if s.is_empty() => format!("an empty role name; expected none or a comma-separated list of {names}"),
            None => format!("{s:?} is not a role; expected none or a comma-separated list of {names}"),
        })
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
            password_policy: settings::PasswordPolicy::Strong,
            require_mfa_roles: Vec::new(),
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
pub const CONTEXT_KEYS: [&str; 15] = [
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
    "password-policy",
    "require-mfa",
];

impl Context {
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, ContextError> {
        let mut ctx = Self::default();
        let err = |key: &str, reason: &str| ContextError { key: key.into(), reason: reason.into() };
        // Its default depends on the profile, which may come after it.
        let mut require_mfa = None;
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
                "password-policy" => ctx.password_policy = value.parse().map_err(|e: String| err(key, &e))?,
                "require-mfa" => require_mfa = Some(AccountRole::parse_list(value).map_err(|e| err(key, &e))?),
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
        ctx.require_mfa_roles = require_mfa.unwrap_or_else(|| ctx.profile.mfa_roles());
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

    const CERTIFICATE: &str = "arn:aws:acm:eu-west-1:123456789012:certificate/3b1f6c1e";

    fn require_mfa(pairs: &[(&str, &str)]) -> Result<Vec<AccountRole>, ContextError> {
        Context::from_pairs(pairs.iter().copied()).map(|ctx| ctx.require_mfa_roles)
    }

    #[test]
    fn require_mfa_parses_role_lists_and_none() {
        use AccountRole::*;
        assert_eq!(require_mfa(&[("require-mfa", "ADMIN,AUDITOR")]), Ok(vec![Admin, Auditor]));
        assert_eq!(require_mfa(&[("require-mfa", " CLINICIAN , BILLING ,CLINICIAN")]), Ok(vec![Clinician, Billing]));
        let all = "PENDING,USER,CLINICIAN,BILLING,AUDITOR,ADMIN";
        assert_eq!(require_mfa(&[("require-mfa", all)]), Ok(AccountRole::ALL.to_vec()));
        assert_eq!(AccountRole::join(&AccountRole::ALL), all);
        for none in ["none", "NONE", "", "  "] {
            assert_eq!(require_mfa(&[("require-mfa", none)]), Ok(vec![]), "{none:?}");
        }
    }

    #[test]
    fn require_mfa_names_what_is_wrong() {
        let reason = |value: &str| require_mfa(&[("require-mfa", value)]).expect_err(value).reason;
        assert!(reason("admin").contains("role names are upper-case (ADMIN)"), "{}", reason("admin"));
        assert!(reason("ADMIN,ROOT").contains("\"ROOT\" is not a role"), "{}", reason("ADMIN,ROOT"));
        assert!(reason("ADMIN,ROOT").contains("PENDING, USER, CLINICIAN, BILLING, AUDITOR, ADMIN"));
        assert!(reason("ADMIN,,AUDITOR").contains("an empty role name"), "{}", reason("ADMIN,,AUDITOR"));
        assert!(reason("none,ADMIN").contains("\"none\" is not a role"), "{}", reason("none,ADMIN"));
        let err = require_mfa(&[("require-mfa", "superuser")]).expect_err("not a role");
        assert_eq!(err.key, "require-mfa");
        assert!(err.to_string().starts_with("context require-mfa: "), "{err}");
    }

    #[test]
    fn require_mfa_defaults_by_profile_and_an_explicit_value_wins_in_either_order() {
        let production = [("profile", "production"), ("certificate-arn", CERTIFICATE)];
        assert_eq!(require_mfa(&[]), Ok(vec![]));
        assert_eq!(Context::default().require_mfa_roles, vec![]);
        assert_eq!(require_mfa(&[("profile", "default")]), Ok(vec![]));
        assert_eq!(require_mfa(&production), Ok(vec![AccountRole::Admin, AccountRole::Auditor]));
        for value in ["none", ""] {
            let before = [("require-mfa", value), production[0], production[1]];
            let after = [production[0], production[1], ("require-mfa", value)];
            assert_eq!(require_mfa(&before), Ok(vec![]), "before the profile: {value:?}");
            assert_eq!(require_mfa(&after), Ok(vec![]), "after the profile: {value:?}");
        }
        let before = [("require-mfa", "BILLING"), production[0], production[1]];
        assert_eq!(require_mfa(&before), Ok(vec![AccountRole::Billing]));
        let after = [("profile", "default"), ("require-mfa", "ADMIN")];
        assert_eq!(require_mfa(&after), Ok(vec![AccountRole::Admin]));
    }
}
