//! The stack's internal CA and what it issues: made once per stack and kept as PEM
//! (the CA's secret), it signs each service a certificate for the names its callers
//! verify. Pure: the Secrets Manager side is [`super`].

use chrono::{DateTime, Datelike, Duration, Utc};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use serde::{Deserialize, Serialize};

/// How long the CA is valid.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// How long a service certificate is valid (the browsers' limit, for want of a better one).
pub const LEAF_VALIDITY_DAYS: i64 = 397;
/// A certificate with less than this left is renewed at the next deploy.
pub const RENEW_WITHIN_DAYS: i64 = 60;

/// The CA secret's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaMaterial {
    pub cert: String,
    pub key: String,
}

/// A service's secret value: the keys the tasks read ([`pulsetrack_stacks::pulsetrack::tls::TlsSecretKey`])
/// and what the deployer needs to decide on a renewal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Leaf {
    pub cert: String,
    pub key: String,
    pub ca: String,
    pub not_after: DateTime<Utc>,
    pub names: Vec<String>,
}

impl Leaf {
    /// Whether this certificate must be issued again: another CA, other names, or less
    /// than [`RENEW_WITHIN_DAYS`] left at `now`.
    pub fn needs_renewal(&self, ca: &CaMaterial, names: &[String], now: DateTime<Utc>) -> bool {
        self.ca != ca.cert || self.names != names || self.not_after - now < Duration::days(RENEW_WITHIN_DAYS)
    }
}

/// The CA, ready to sign.
pub struct Authority {
    material: CaMaterial,
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// The day of `at` (rcgen's dates are days).
fn date(at: DateTime<Utc>) -> time::OffsetDateTime {
    rcgen::date_time_ymd(at.year(), u8::try_from(at.month()).unwrap_or(1), u8::try_from(at.day()).unwrap_or(1))
}

/// The CA's name and constraints, the same each time: a kept key signs again under it.
fn ca_params(stack: &str, now: DateTime<Utc>) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name.push(DnType::OrganizationName, "PulseTrack");
    params.distinguished_name.push(DnType::CommonName, format!("PulseTrack internal CA ({stack})"));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = date(now - Duration::days(1));
    params.not_after = date(now + Duration::days(CA_VALIDITY_DAYS));
    Ok(params)
}

impl Authority {
    /// A new CA for `stack`.
    pub fn create(stack: &str, now: DateTime<Utc>) -> anyhow::Result<Self> {
        let key = KeyPair::generate()?;
        let cert = ca_params(stack, now)?.self_signed(&key)?;
        let material = CaMaterial { cert: cert.pem(), key: key.serialize_pem() };
        Ok(Self { material, cert, key })
    }

    /// The CA kept in `material`. Its key signs under the same name as before, so what
    /// it issues chains to the kept certificate.
    pub fn from_material(stack: &str, material: CaMaterial, now: DateTime<Utc>) -> anyhow::Result<Self> {
        let key = KeyPair::from_pem(&material.key)?;
        let cert = ca_params(stack, now)?.self_signed(&key)?;
        Ok(Self { material, cert, key })
    }

    pub fn material(&self) -> &CaMaterial {
        &self.material
    }

    /// A certificate for `names` (the first is its common name), good for a server and
    /// a client, valid [`LEAF_VALIDITY_DAYS`] from `now`.
    pub fn issue(&self, names: &[String], now: DateTime<Utc>) -> anyhow::Result<Leaf> {
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name.push(DnType::CommonName, names.first().cloned().unwrap_or_default());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let not_after = now + Duration::days(LEAF_VALIDITY_DAYS);
        params.not_before = date(now - Duration::days(1));
        params.not_after = date(not_after);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            ca: self.material.cert.clone(),
            not_after: not_after.date_naive().and_hms_opt(0, 0, 0).map_or(not_after, |d| d.and_utc()),
            names: names.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["patient-service.pulsetrack.local".into(), "localhost".into()]
    }

    #[test]
    fn a_kept_ca_issues_certificates_that_chain_to_its_kept_certificate() {
        let now = Utc::now();
        let created = Authority::create("Stack", now).expect("ca");
        let kept = created.material().clone();
        // Years later, from the secret: another self-signature, the same name and key.
        let again = Authority::from_material("Stack", kept.clone(), now + Duration::days(700)).expect("kept ca");
        let leaf = again.issue(&names(), now).expect("leaf");
        assert_eq!(leaf.ca, kept.cert);
        let verified = verify(&kept.cert, &leaf.cert, "patient-service.pulsetrack.local");
        assert!(verified.is_ok(), "{verified:?}");
        assert!(verify(&kept.cert, &leaf.cert, "billing-service.pulsetrack.local").is_err(), "only its names");
        let stranger = Authority::create("Other", now).expect("ca");
        assert!(verify(&stranger.material().cert, &leaf.cert, "localhost").is_err(), "another CA");
        assert!(!leaf.key.is_empty() && leaf.key.contains("PRIVATE KEY"));
    }

    #[test]
    fn renewal_is_due_for_another_ca_other_names_or_a_near_end() {
        let now = Utc::now();
        let ca = Authority::create("Stack", now).expect("ca");
        let leaf = ca.issue(&names(), now).expect("leaf");
        assert!(!leaf.needs_renewal(ca.material(), &names(), now));
        assert!(leaf.needs_renewal(ca.material(), &names()[..1], now), "other names");
        let other = Authority::create("Stack", now).expect("another ca");
        assert!(leaf.needs_renewal(other.material(), &names(), now), "another CA");
        let late = now + Duration::days(LEAF_VALIDITY_DAYS - RENEW_WITHIN_DAYS + 1);
        assert!(leaf.needs_renewal(ca.material(), &names(), late), "close to its end");
    }

    /// Verifies `leaf` for `name` against `ca` as the services' clients do (rustls).
    fn verify(ca: &str, leaf: &str, name: &str) -> Result<(), String> {
        use rustls::{
            RootCertStore,
            client::{WebPkiServerVerifier, danger::ServerCertVerifier},
            pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
        };
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.as_bytes()).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiServerVerifier::builder_with_provider(roots.into(), provider).build().map_err(|e| e.to_string())?;
        let leaf = CertificateDer::from_pem_slice(leaf.as_bytes()).map_err(|e| e.to_string())?;
        let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
        verifier.verify_server_cert(&leaf, &[], &name, &[], UnixTime::now()).map(|_| ()).map_err(|e| e.to_string())
    }
}
