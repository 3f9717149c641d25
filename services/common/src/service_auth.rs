//! Service credentials on internal calls: the caller mints a short-lived credential
//! for each call and the callee verifies it before the call runs. Two hops use them,
//! each with a secret of its own:
//! - patient-service's outbox calling billing-service's gRPC `BillingService` (secret
//!   `BILLING_GRPC_SECRET`): without it, anything that reached billing's gRPC port
//!   could open and close accounts;
//! - api-gateway reporting its refusals into auth-service's audit trail (secret
//!   `GATEWAY_AUDIT_SECRET`): without it, anything inside could write that trail.
//!
//! A credential is an HS256 JWT with `iss` = the calling service, `aud` = the called
//! one, `iat`, and `exp` = `iat` + [`CREDENTIAL_LIFE`], sent as `authorization: Bearer
//! <credential>`. Both ends hold one shared secret (the stack generates it in Secrets
//! Manager and gives it to these two tasks only); the HMAC key is derived from it with
//! HKDF-SHA256 ([`KEY_DERIVATION_INFO`]), as auth-service derives its signing key, so
//! that the secret is never itself a key and the same string set elsewhere by mistake
//! gives another key. Verification pins HS256, checks the signature, `aud` = this
//! service, `exp` (with [`LEEWAY_SECONDS`]), that the credential claims no longer a
//! life than a minter gives it, and that `iss` is in the callee's allow-list.
//!
//! Why a shared secret and not a key pair: Secrets Manager generates strings, not key
//! pairs, and the hop has one caller. Its limit: whoever holds the secret can mint a
//! credential naming any issuer, so the allow-list refuses misrouted or misconfigured
//! callers, and the secret's reach (two tasks) is what keeps everyone else out.

use std::{
    fmt,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::{
    config::{ConfigError, Raw, Secret},
    identity::{BearerError, bearer_of},
};

/// billing-service's name in credentials (`aud` of the calls to it) and in its logs.
pub const BILLING_SERVICE: &str = "billing-service";
/// patient-service's name in credentials (`iss` of its calls) and in its logs.
pub const PATIENT_SERVICE: &str = "patient-service";
/// The services that may call billing-service's gRPC methods: the outbox only.
pub const BILLING_CALLERS: [&str; 1] = [PATIENT_SERVICE];
/// auth-service's name in credentials (`aud` of the gateway's refusal reports).
pub const AUTH_SERVICE: &str = "auth-service";
/// api-gateway's name in credentials (`iss` of its refusal reports).
pub const API_GATEWAY: &str = "api-gateway";
/// The services that may report refusals into auth-service's trail (secret
/// `GATEWAY_AUDIT_SECRET`): the gateway only.
pub const REFUSAL_REPORTERS: [&str; 1] = [API_GATEWAY];

/// The metadata key a credential travels in, as `Bearer <credential>`.
pub const AUTHORIZATION: &str = "authorization";

/// The shortest shared secret accepted (the stack generates 64 alphanumerics).
pub const MIN_SECRET_CHARS: usize = 32;
/// How long a credential is good for after it is minted: a captured one is useless
/// a minute later.
pub const CREDENTIAL_LIFE: Duration = Duration::from_secs(60);
/// How long a minter hands out the same credential: it then has at least half its
/// life left, and one signature serves every call of those seconds.
pub const REUSE_FOR: Duration = Duration::from_secs(30);
/// Clock skew allowed between the two ends, for `exp` and the life check.
pub const LEEWAY_SECONDS: u64 = 5;
/// HKDF's `info` for the HMAC key: names what the bytes are for and the version of the
/// derivation. Changing it changes the key (and refuses every credential in flight).
pub const KEY_DERIVATION_INFO: &[u8] = b"pulsetrack service credential hs256 v1";

/// Why a secret is refused, a credential cannot be minted, or a call's credential is
/// not accepted. The callee logs the reason and answers only "unauthenticated".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceAuthError {
    #[error("must be at least {MIN_SECRET_CHARS} characters")]
    ShortSecret,
    #[error("no credential: the call carries no authorization")]
    Missing,
    #[error(transparent)]
    Bearer(#[from] BearerError),
    #[error("the credential has expired")]
    Expired,
    #[error("the credential is for another service")]
    WrongAudience,
    #[error("the credential's issuer {0:?} may not call this service")]
    UnknownIssuer(String),
    #[error("the credential claims a life longer than {} s", CREDENTIAL_LIFE.as_secs())]
    TooLong,
    #[error("the credential's signature does not verify (signed with another secret?)")]
    BadSignature,
    #[error("not a credential: {0}")]
    Malformed(String),
    #[error("cannot sign a credential: {0}")]
    Signing(String),
}

impl From<jsonwebtoken::errors::Error> for ServiceAuthError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        match e.kind() {
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::InvalidSignature => Self::BadSignature,
            _ => Self::Malformed(e.to_string()),
        }
    }
}

/// The shared secret of one hop, checked long enough. `Debug` never shows it.
#[derive(Debug, Clone)]
pub struct ServiceSecret(Secret<String>);

impl ServiceSecret {
    /// `secret`, if it has at least [`MIN_SECRET_CHARS`] characters.
    pub fn new(secret: String) -> Result<Self, ServiceAuthError> {
        if secret.chars().count() < MIN_SECRET_CHARS {
            return Err(ServiceAuthError::ShortSecret);
        }
        Ok(Self(Secret::new(secret)))
    }

    /// The secret a setting holds (`BILLING_GRPC_SECRET`): required, long enough, and
    /// not one PulseTrack ever published; the error names the variable.
    pub fn from_setting(raw: &Raw) -> Result<Self, ConfigError> {
        let secret = raw.optional().ok_or_else(|| {
            raw.error(format!(
                "required: the shared secret of the service credentials on this hop, at least {MIN_SECRET_CHARS} \
                 characters (the stack generates it; `deployer up` keeps it in its data folder)"
            ))
        })?;
        crate::published_secrets::refuse_published(&secret).map_err(|reason| raw.error(reason))?;
        Self::new(secret).map_err(|e| raw.error(e.to_string()))
    }

    /// The HMAC key: HKDF-SHA256 (RFC 5869) of the secret, no salt,
    /// [`KEY_DERIVATION_INFO`], 32 bytes (SHA-256's output, as RFC 7518 asks of HS256).
    fn key(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        // 32 bytes are far below HKDF-SHA256's limit of 255 * 32: expanding cannot fail.
        let expanded =
            hkdf::Hkdf::<sha2::Sha256>::new(None, self.0.expose().as_bytes()).expand(KEY_DERIVATION_INFO, &mut key);
        debug_assert!(expanded.is_ok());
        key
    }
}

/// What a credential says: who calls whom, and when it was minted and expires (Unix
/// seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

/// A caller's side: mints its credentials for calls to one service, and hands out the
/// same one for [`REUSE_FOR`].
pub struct CredentialMinter {
    key: EncodingKey,
    issuer: String,
    audience: String,
    /// The last `Bearer <credential>` and when it was minted.
    cached: Mutex<Option<(u64, String)>>,
}

impl fmt::Debug for CredentialMinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialMinter").field("issuer", &self.issuer).field("audience", &self.audience).finish()
    }
}

impl CredentialMinter {
    /// Credentials of `issuer` (the calling service) for calls to `audience`.
    pub fn new(secret: &ServiceSecret, issuer: &str, audience: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(&secret.key()),
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            cached: Mutex::new(None),
        }
    }

    /// A credential minted at `now` (Unix seconds), good for [`CREDENTIAL_LIFE`]. Tests
    /// mint past ones with it.
    pub fn mint_at(&self, now: u64) -> Result<String, ServiceAuthError> {
        let claims = ServiceClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now.saturating_add(CREDENTIAL_LIFE.as_secs()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(|e| ServiceAuthError::Signing(e.to_string()))
    }

    /// The value of a call's `authorization` metadata, `Bearer <credential>`: the last
    /// one while it is younger than [`REUSE_FOR`], a new one otherwise.
    pub fn authorization(&self) -> Result<String, ServiceAuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((minted, value)) = cached.as_ref()
            && *minted <= now
            && now - *minted < REUSE_FOR.as_secs()
        {
            return Ok(value.clone());
        }
        let value = format!("Bearer {}", self.mint_at(now)?);
        *cached = Some((now, value.clone()));
        Ok(value)
    }
}

/// A callee's side: accepts the credentials minted for it by the callers it allows.
pub struct ServiceVerifier {
    key: DecodingKey,
    validation: Validation,
    allowed_issuers: Vec<String>,
}

impl fmt::Debug for ServiceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceVerifier")
            .field("audience", &self.validation.aud)
            .field("allowed_issuers", &self.allowed_issuers)
            .finish()
    }
}

impl ServiceVerifier {
    /// Accepts credentials with `aud` = `audience` (this service) from `allowed_issuers`.
    pub fn new(secret: &ServiceSecret, audience: &str, allowed_issuers: &[&str]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY_SECONDS;
        Self {
            key: DecodingKey::from_secret(&secret.key()),
            validation,
            allowed_issuers: allowed_issuers.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The claims of `credential`, if it is one this service accepts now.
    pub fn verify(&self, credential: &str) -> Result<ServiceClaims, ServiceAuthError> {
        let claims = jsonwebtoken::decode::<ServiceClaims>(credential, &self.key, &self.validation)?.claims;
        let latest_exp = jsonwebtoken::get_current_timestamp() + CREDENTIAL_LIFE.as_secs() + LEEWAY_SECONDS;
        if claims.exp > latest_exp || claims.exp < claims.iat {
            return Err(ServiceAuthError::TooLong);
        }
        if !self.allowed_issuers.contains(&claims.iss) {
            return Err(ServiceAuthError::UnknownIssuer(claims.iss));
        }
        Ok(claims)
    }

    /// The claims of a call's `authorization` value (`Bearer <credential>`).
    pub fn verify_authorization(&self, value: &str) -> Result<ServiceClaims, ServiceAuthError> {
        self.verify(bearer_of(value)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-test-secret-of-more-than-thirty-two-characters";

    fn secret(s: &str) -> ServiceSecret {
        ServiceSecret::new(s.to_string()).expect("long enough")
    }

    fn billing() -> ServiceVerifier {
        ServiceVerifier::new(&secret(SECRET), BILLING_SERVICE, &BILLING_CALLERS)
    }

    fn minter(issuer: &str, audience: &str) -> CredentialMinter {
        CredentialMinter::new(&secret(SECRET), issuer, audience)
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[test]
    fn a_valid_credential_verifies_with_its_claims() {
        let value = minter(PATIENT_SERVICE, BILLING_SERVICE).authorization().expect("mints");
        let claims = billing().verify_authorization(&value).expect("accepted");
        assert_eq!((claims.iss.as_str(), claims.aud.as_str()), (PATIENT_SERVICE, BILLING_SERVICE));
        assert_eq!(claims.exp - claims.iat, CREDENTIAL_LIFE.as_secs());
        assert!(claims.iat.abs_diff(now()) <= 1);
    }

    #[test]
    fn an_expired_credential_is_refused() {
        let old = minter(PATIENT_SERVICE, BILLING_SERVICE).mint_at(now() - 3600).expect("mints");
        assert_eq!(billing().verify(&old), Err(ServiceAuthError::Expired));
        // Within the leeway it still passes: the two clocks may differ by seconds.
        let recent = minter(PATIENT_SERVICE, BILLING_SERVICE).mint_at(now() - 62).expect("mints");
        assert!(billing().verify(&recent).is_ok());
    }

    #[test]
    fn a_credential_for_another_service_is_refused() {
        let other = minter(PATIENT_SERVICE, "analytics-service").authorization().expect("mints");
        assert_eq!(billing().verify_authorization(&other), Err(ServiceAuthError::WrongAudience));
    }

    #[test]
    fn a_caller_not_in_the_allow_list_is_refused() {
        let analytics = minter("analytics-service", BILLING_SERVICE).authorization().expect("mints");
        let err = billing().verify_authorization(&analytics).expect_err("refused");
        assert_eq!(err, ServiceAuthError::UnknownIssuer("analytics-service".into()));
    }

    #[test]
    fn a_credential_signed_with_another_secret_is_refused() {
        let forged = CredentialMinter::new(&secret(&SECRET.replace('a', "b")), PATIENT_SERVICE, BILLING_SERVICE);
        let value = forged.authorization().expect("mints");
        assert_eq!(billing().verify_authorization(&value), Err(ServiceAuthError::BadSignature));
    }

    #[test]
    fn a_credential_living_longer_than_one_minted_is_refused() {
        let late = minter(PATIENT_SERVICE, BILLING_SERVICE).mint_at(now() + 3600).expect("mints");
        assert_eq!(billing().verify(&late), Err(ServiceAuthError::TooLong));
    }

    #[test]
    fn garbage_and_other_schemes_are_refused() {
        let verifier = billing();
        for garbage in ["", "abc", "a.b.c", "Bearer"] {
            assert!(matches!(verifier.verify(garbage), Err(ServiceAuthError::Malformed(_))), "{garbage:?}");
        }
        let token = minter(PATIENT_SERVICE, BILLING_SERVICE).mint_at(now()).expect("mints");
        let err = verifier.verify_authorization(&format!("Basic {token}")).expect_err("not bearer");
        assert_eq!(err, ServiceAuthError::Bearer(BearerError::NotBearer));
        assert!(verifier.verify_authorization(&format!("bearer {token}")).is_ok());
    }

    #[test]
    fn another_algorithm_is_refused() {
        let claims =
            ServiceClaims { iss: PATIENT_SERVICE.into(), aud: BILLING_SERVICE.into(), iat: now(), exp: now() + 60 };
        let key = EncodingKey::from_secret(&secret(SECRET).key());
        let hs512 = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key).expect("signs");
        assert!(matches!(billing().verify(&hs512), Err(ServiceAuthError::Malformed(_))));
    }

    #[test]
    fn a_minted_credential_is_reused_for_a_while() {
        let minter = minter(PATIENT_SERVICE, BILLING_SERVICE);
        let first = minter.authorization().expect("mints");
        assert_eq!(minter.authorization().expect("cached"), first);
        // One minted REUSE_FOR ago is replaced by a fresh one.
        let stale = "Bearer stale".to_string();
        *minter.cached.lock().expect("lock") = Some((now() - REUSE_FOR.as_secs(), stale.clone()));
        let fresh = minter.authorization().expect("mints anew");
        assert_ne!(fresh, stale);
        assert!(billing().verify_authorization(&fresh).is_ok());
        // So is one minted "later" than now (the clock went back).
        *minter.cached.lock().expect("lock") = Some((now() + 100, stale.clone()));
        assert_ne!(minter.authorization().expect("mints anew"), stale);
    }

    #[test]
    fn short_or_missing_secrets_are_refused_naming_the_variable() {
        let var = pulsetrack_settings::BILLING_GRPC_SECRET;
        let raw = |value: Option<&str>| Raw::new(var, value.map(str::to_string));
        assert_eq!(ServiceSecret::new("x".repeat(MIN_SECRET_CHARS - 1)).err(), Some(ServiceAuthError::ShortSecret));
        let err = ServiceSecret::from_setting(&raw(None)).expect_err("missing");
        assert_eq!(err.variable, var.name());
        assert!(err.reason.contains("required"), "{err}");
        let err = ServiceSecret::from_setting(&raw(Some("short"))).expect_err("short");
        assert_eq!((err.variable.as_str(), err.reason.contains("32")), (var.name(), true), "{err}");
        assert!(ServiceSecret::from_setting(&raw(Some(SECRET))).is_ok());
    }

    #[test]
    fn the_secret_is_not_in_debug_output() {
        let shown = format!("{:?} {:?} {:?}", secret(SECRET), minter(PATIENT_SERVICE, BILLING_SERVICE), billing());
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }
}
