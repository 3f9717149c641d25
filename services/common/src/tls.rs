//! A service's TLS identity: the certificate it presents (as a server on its listener
//! and as a client on its calls to other services), its key, and the internal CA its
//! peers' certificates must chain to. With `TLS_CLIENT_AUTH=required` its listener
//! refuses a client that presents no certificate the CA signed (mutual TLS); as a
//! client it refuses a server it cannot verify. In the cloud the deployer issues one
//! certificate per service; `deployer up` keeps plain HTTP on loopback.

use std::{fmt, sync::Arc};

use rustls::{
    ClientConfig, RootCertStore, ServerConfig,
    crypto::{CryptoProvider, ring},
    server::WebPkiClientVerifier,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use crate::{
    config::{ConfigError, Raw, Secret},
    settings::{Tls, TlsClientAuth},
};

/// What was wrong with the PEM material, naming the setting it came from.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{var}: {reason}")]
    Pem { var: &'static str, reason: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("the client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The PEM texts, kept for the gRPC stack (tonic builds its own configurations).
#[derive(Clone)]
pub struct TlsPem {
    pub cert: String,
    pub key: Secret<String>,
    pub ca: String,
}

/// A service's TLS identity, ready for its listener and its clients.
#[derive(Clone)]
pub struct TlsConfig {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    client_auth: TlsClientAuth,
    pem: Arc<TlsPem>,
}

/// Shows which client authentication applies, never the key.
impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").field("client_auth", &self.client_auth.as_str()).finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// `TLS_CERT`, `TLS_KEY`, `TLS_CA` and `TLS_CLIENT_AUTH`; `None` when the three PEM
    /// settings are all unset (plain HTTP). Some but not all of them is an error.
    pub fn from_settings(tls: &Tls<Raw>) -> Result<Option<Self>, ConfigError> {
        let client_auth: TlsClientAuth = tls.client_auth.parse_or(TlsClientAuth::default())?;
        let parts = [&tls.cert, &tls.key, &tls.ca].map(Raw::optional);
        let [cert, key, ca] = match parts {
            [None, None, None] => return Ok(None),
            [Some(cert), Some(key), Some(ca)] => [cert, key, ca],
            _ => {
                let missing = [&tls.cert, &tls.key, &tls.ca].into_iter().zip(&parts).find(|(_, v)| v.is_none());
                let raw = missing.map_or(&tls.cert, |(raw, _)| raw);
                return Err(raw.error("TLS_CERT, TLS_KEY and TLS_CA go together: set all three or none"));
            }
        };
        Self::from_pem(TlsPem { cert, key: Secret::new(key), ca }, client_auth).map(Some).map_err(|e| match e {
            TlsError::Pem { var, reason } => ConfigError::new(var, reason),
            other => tls.cert.error(other.to_string()),
        })
    }

    pub fn from_pem(pem: TlsPem, client_auth: TlsClientAuth) -> Result<Self, TlsError> {
        let provider = Arc::new(ring::default_provider());
        let chain = certificates(&pem.cert, "TLS_CERT")?;
        let key = PrivateKeyDer::from_pem_slice(pem.key.expose().as_bytes())
            .map_err(|_| TlsError::Pem { var: "TLS_KEY", reason: "not a PEM private key".into() })?;
        let mut roots = RootCertStore::empty();
        for ca in certificates(&pem.ca, "TLS_CA")? {
            roots.add(ca).map_err(|e| TlsError::Pem { var: "TLS_CA", reason: e.to_string() })?;
        }
        let roots = Arc::new(roots);
        let server = server_config(&provider, &roots, chain.clone(), key.clone_key(), client_auth)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        Ok(Self { server: Arc::new(server), client: Arc::new(client), client_auth, pem: Arc::new(pem) })
    }

    /// The listener's configuration (HTTP/1.1).
    pub fn server(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// The configuration of calls to other services: trusts the internal CA only and
    /// presents the service's certificate.
    pub fn client(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    pub fn client_auth(&self) -> TlsClientAuth {
        self.client_auth
    }

    pub fn pem(&self) -> &TlsPem {
        &self.pem
    }
}

fn server_config(
    provider: &Arc<CryptoProvider>,
    roots: &Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_auth: TlsClientAuth,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match client_auth {
        TlsClientAuth::Required => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?,
        ),
        TlsClientAuth::None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn certificates(pem: &str, var: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem { var, reason: format!("not PEM certificates: {e}") })?;
    if certs.is_empty() {
        return Err(TlsError::Pem { var, reason: "holds no PEM certificate".into() });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use pulsetrack_settings::{TLS_CA, TLS_CERT, TLS_CLIENT_AUTH, TLS_KEY};

    use super::*;
    use crate::config::from_pairs;

    #[test]
    fn none_set_is_plain_and_some_set_names_what_is_missing() {
        assert!(TlsConfig::from_settings(&from_pairs(&[])).expect("plain").is_none());
        let err = TlsConfig::from_settings(&from_pairs(&[(TLS_CERT, "x")])).expect_err("partial");
        assert_eq!(err.variable, "TLS_KEY");
        let err = TlsConfig::from_settings(&from_pairs(&[(TLS_CLIENT_AUTH, "maybe")])).expect_err("bad");
        assert_eq!(err.variable, "TLS_CLIENT_AUTH");
    }

    #[test]
    fn bad_pem_is_refused_naming_the_setting_and_never_the_key() {
        let pairs = [(TLS_CERT, "not pem"), (TLS_KEY, "secret-key-text"), (TLS_CA, "not pem")];
        let err = TlsConfig::from_settings(&from_pairs(&pairs)).expect_err("bad");
        assert_eq!(err.variable, "TLS_CERT");
        assert!(!err.to_string().contains("secret-key-text"), "{err}");
    }
}
