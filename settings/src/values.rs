//! The settings whose value is one of a few words: each a type that parses the word
//! and names it back, so that a service and the stack write it the same way.

use std::fmt;

/// What an account that signed itself up may do (`SIGNUP_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignupMode {
    /// Anyone may sign up and gets the USER role (patient records) at once: local demos
    /// and the seed's scripts (`deployer up`).
    Open,
    /// Anyone may sign up, with no access to patient data (the PENDING role) until an
    /// ADMIN grants a role: the AWS stack's default.
    #[default]
    Approval,
    /// Only an ADMIN creates accounts.
    Closed,
}

impl SignupMode {
    pub const ALL: [SignupMode; 3] = [SignupMode::Open, SignupMode::Approval, SignupMode::Closed];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Approval => "approval",
            Self::Closed => "closed",
        }
    }
}

impl fmt::Display for SignupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SignupMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("{s:?} is not open, approval or closed"))
    }
}

/// What a new password must be (`PASSWORD_POLICY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PasswordPolicy {
    /// 8 to 128 characters: local demos and the seed's scripts (`deployer up`).
    Basic,
    /// Judged by an estimator of guessing effort (zxcvbn, a score of 3 of 4 at least),
    /// and 12 characters at least for ADMIN and AUDITOR: the AWS stack's default.
    #[default]
    Strong,
}

impl PasswordPolicy {
    pub const ALL: [PasswordPolicy; 2] = [PasswordPolicy::Basic, PasswordPolicy::Strong];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Strong => "strong",
        }
    }
}

impl fmt::Display for PasswordPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PasswordPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("{s:?} is not basic or strong"))
    }
}

/// How the Kafka clients talk to the brokers (`KAFKA_SECURITY_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KafkaSecurityProtocol {
    /// Plain TCP (a local broker).
    #[default]
    Plaintext,
    /// TLS, verifying the brokers' certificates and host names (MSK on port 9094).
    Ssl,
    /// A SCRAM-SHA-512 login over plain TCP (a local broker that authenticates).
    SaslPlaintext,
    /// A SCRAM-SHA-512 login over TLS (MSK with SASL/SCRAM on port 9096).
    SaslSsl,
}

impl KafkaSecurityProtocol {
    pub const ALL: [Self; 4] = [Self::Plaintext, Self::Ssl, Self::SaslPlaintext, Self::SaslSsl];

    /// The value of the variable, as librdkafka's `security.protocol` also names it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    /// Whether the connection is TLS.
    pub const fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether the client logs in (SASL).
    pub const fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    /// The same transport with a SASL login.
    pub const fn with_sasl(self) -> Self {
        match self {
            Self::Plaintext | Self::SaslPlaintext => Self::SaslPlaintext,
            Self::Ssl | Self::SaslSsl => Self::SaslSsl,
        }
    }
}

impl fmt::Display for KafkaSecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KafkaSecurityProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("{s:?} is not plaintext, ssl, sasl_plaintext or sasl_ssl"))
    }
}

/// The name every service's certificate holds besides its own, for the container
/// health check, which asks the service on loopback (the stack issues the certificates
/// with it; the services' health check verifies it).
pub const TLS_LOCAL_NAME: &str = "localhost";

/// Whether a TLS listener asks its clients for a certificate (`TLS_CLIENT_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsClientAuth {
    /// Every client presents a certificate the internal CA signed (the services).
    #[default]
    Required,
    /// No client certificate (api-gateway: the ALB presents none).
    None,
}

impl TlsClientAuth {
    pub const ALL: [Self; 2] = [Self::Required, Self::None];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::None => "none",
        }
    }
}

impl std::str::FromStr for TlsClientAuth {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("{s:?} is not required or none"))
    }
}

/// Who brings a service's database schema up to date (`DATABASE_MIGRATIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigrationMode {
    /// The service migrates at start-up: as the admin role when it has one, else as its
    /// own user (tests, a developer's database).
    #[default]
    Run,
    /// A separate step (`<service> migrate`, with the admin role) has migrated: the
    /// service, holding only its own role, checks that every migration it knows is
    /// applied and refuses to start otherwise.
    Check,
}

impl MigrationMode {
    pub const ALL: [MigrationMode; 2] = [MigrationMode::Run, MigrationMode::Check];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Check => "check",
        }
    }
}

impl fmt::Display for MigrationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MigrationMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("{s:?} is not run or check"))
    }
}
