//! How the connection to Postgres is secured: the `sslmode` asked for and the CA
//! bundle the server's certificate must chain to, both checked at start-up so that a
//! typo is a configuration error rather than a silent downgrade.

use std::{fmt, path::PathBuf, str::FromStr};

use rustls_pki_types::{CertificateDer, pem::PemObject};
use sqlx::postgres::PgSslMode;

/// How the connection to Postgres is secured: libpq's `sslmode` values (without
/// `allow`, which prefers no TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, without checking its certificate (the default).
    Prefer,
    /// TLS, without checking the server's certificate.
    Require,
    /// TLS, the certificate must chain to a trusted CA.
    VerifyCa,
    /// TLS, the certificate must chain to a trusted CA and name the host connected to.
    VerifyFull,
}

impl SslMode {
    pub const ALL: [SslMode; 5] =
        [SslMode::Disable, SslMode::Prefer, SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull];

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the server's certificate is checked against the root CAs.
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }

    pub(super) fn to_pg(self) -> PgSslMode {
        match self {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
            SslMode::VerifyCa => PgSslMode::VerifyCa,
            SslMode::VerifyFull => PgSslMode::VerifyFull,
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SslMode::ALL.into_iter().find(|m| m.as_str() == s.trim()).ok_or_else(|| {
            let all: Vec<&str> = SslMode::ALL.iter().map(|m| m.as_str()).collect();
            format!("`{s}` is not an sslmode; expected one of {}", all.join(", "))
        })
    }
}

/// The CA bundle the server's certificate must chain to, read once at start-up.
#[derive(Clone, PartialEq, Eq)]
pub struct RootCert {
    pub path: PathBuf,
    pub(super) pem: Vec<u8>,
    certificates: usize,
}

impl RootCert {
    /// Reads `path`: an unreadable file, or one without a valid PEM certificate, is an error.
    pub fn read(path: impl Into<PathBuf>) -> Result<Self, String> {
        let path = path.into();
        let pem = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut certificates = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            cert.map_err(|e| format!("{} holds an invalid PEM certificate: {e}", path.display()))?;
            certificates += 1;
        }
        if certificates == 0 {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
        Ok(Self { path, pem, certificates })
    }

    pub fn certificates(&self) -> usize {
        self.certificates
    }
}

impl fmt::Debug for RootCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} certificates)", self.path.display(), self.certificates)
    }
}

/// sqlx's TLS takes rustls' process-wide crypto provider; when more than one provider
/// is compiled in (another dependency enabling `ring`), rustls cannot choose and panics
/// at the first handshake (the deployer's AWS clients bring aws-lc-rs in). The services
/// use ring.
pub(super) fn use_ring() {
    // An error only says a provider is installed already; that one is used.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
