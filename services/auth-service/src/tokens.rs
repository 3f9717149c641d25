//! Token issuing with Ed25519 (EdDSA): auth-service holds the private key; the gateway
//! gets only the public key (JWKS at `/.well-known/jwks.json`), so it can verify tokens
//! but never mint them.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
    jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters,
        OctetKeyPairType, PublicKeyUse, ThumbprintHash,
    },
};
use pulsetrack_common::identity::{Claims, Role, TokenScope};
use rand::rngs::OsRng;

use crate::config::{JwtConfig, SigningKeySource};

/// HKDF's `info` for the signing key: names what the bytes are for and the version of
/// the derivation. Changing it changes every key (and invalidates every token).
const KEY_DERIVATION_INFO: &[u8] = b"pulsetrack auth-service jwt ed25519 signing key v1";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("JWT_PRIVATE_KEY: not an Ed25519 PKCS#8 private key: {0}")]
    Pkcs8(String),
    #[error("jwt key error: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

/// The signing key, the matching verification key and its JWK.
pub struct TokenIssuer {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwks: JwkSet,
    issuer: String,
    audience: String,
    ttl_seconds: u64,
}

/// Generates a new Ed25519 key, as PKCS#8 PEM (for `JWT_PRIVATE_KEY`).
pub fn generate_private_key_pem() -> Result<String, KeyError> {
    private_key_pem(&ed25519_dalek::SigningKey::generate(&mut OsRng))
}

/// The key as PKCS#8 PEM.
pub fn private_key_pem(key: &ed25519_dalek::SigningKey) -> Result<String, KeyError> {
    key.to_pkcs8_pem(LineEnding::LF).map(|pem| pem.to_string()).map_err(|e| KeyError::Pkcs8(e.to_string()))
}

/// The Ed25519 key of a `JWT_SIGNING_SECRET`: HKDF-SHA256 (RFC 5869) with the secret
/// as input keying material, no salt and [`KEY_DERIVATION_INFO`], 32 bytes of output
/// as the Ed25519 seed. The same secret gives the same key on every replica and start.
pub fn derive_signing_key(secret: &str) -> ed25519_dalek::SigningKey {
    let mut seed = [0u8; ed25519_dalek::SECRET_KEY_LENGTH];
    // 32 bytes are far below HKDF-SHA256's limit of 255 * 32: expanding cannot fail.
    let expanded = hkdf::Hkdf::<sha2::Sha256>::new(None, secret.as_bytes()).expand(KEY_DERIVATION_INFO, &mut seed);
    debug_assert!(expanded.is_ok());
    ed25519_dalek::SigningKey::from_bytes(&seed)
}

/// The signing key `source` names.
pub fn signing_key(source: &SigningKeySource) -> Result<ed25519_dalek::SigningKey, KeyError> {
    match source {
        SigningKeySource::Secret(secret) => Ok(derive_signing_key(secret.expose())),
        SigningKeySource::Pem(pem) => {
            ed25519_dalek::SigningKey::from_pkcs8_pem(pem.expose()).map_err(|e| KeyError::Pkcs8(e.to_string()))
        }
    }
}

/// Whom an access token names.
#[derive(Debug, Clone, Copy)]
pub struct TokenSubject<'a> {
    pub user_id: uuid::Uuid,
    pub email: &'a str,
    pub role: Role,
    pub session: uuid::Uuid,
    pub scope: TokenScope,
    /// The token expires at this Unix time at the latest (its session's absolute limit).
    pub not_after: u64,
}

impl TokenIssuer {
    /// The issuer of the key `config` names.
    pub fn from_config(config: &JwtConfig) -> Result<Self, KeyError> {
        Self::new(config, &signing_key(&config.key)?)
    }

    pub fn new(config: &JwtConfig, key: &ed25519_dalek::SigningKey) -> Result<Self, KeyError> {
        let der = key.to_pkcs8_der().map_err(|e| KeyError::Pkcs8(e.to_string()))?;
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        let decoding = DecodingKey::from_ed_der(key.verifying_key().as_bytes());
        let mut jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
            }),
        };
        // RFC 7638 thumbprint: stable for the key, so every replica names it alike.
        let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
        jwk.common.key_id = Some(kid.clone());
        Ok(Self {
            kid,
            encoding,
            decoding,
            jwks: JwkSet { keys: vec![jwk] },
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl_seconds: config.ttl_seconds,
        })
    }

    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// Signs an access token of session `session` for `user`, good for `scope`; returns
    /// it with its life in seconds.
    pub fn issue(&self, user: TokenSubject<'_>) -> Result<(String, u64), KeyError> {
        let now = jsonwebtoken::get_current_timestamp();
        let exp = (now + self.ttl_seconds).min(user.not_after.max(now));
        let claims = Claims {
            sub: user.user_id.to_string(),
            email: user.email.to_string(),
            role: user.role,
            sid: user.session,
            scope: user.scope,
            iat: now,
            exp,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok((jsonwebtoken::encode(&header, &claims, &self.encoding)?, exp - now))
    }

    /// Verifies a token this service issued (its signature and claims only: whether
    /// its session is live is the caller's check).
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map(|data| data.claims)
    }
}

#[cfg(test)]
mod tests {
    use pulsetrack_common::config::Secret;

    use super::*;

    fn config(key: SigningKeySource) -> JwtConfig {
        JwtConfig { issuer: "iss".into(), audience: "aud".into(), ttl_seconds: 60, key }
    }

    const U1: uuid::Uuid = uuid::Uuid::from_u128(1);

    fn subject(role: Role) -> TokenSubject<'static> {
        TokenSubject {
            user_id: U1,
            email: "a@b.c",
            role,
            session: uuid::Uuid::from_u128(9),
            scope: TokenScope::Full,
            not_after: u64::MAX,
        }
    }

    fn pem_issuer() -> TokenIssuer {
        let pem = generate_private_key_pem().expect("generates");
        TokenIssuer::from_config(&config(SigningKeySource::Pem(Secret::new(pem)))).expect("loads")
    }

    fn secret_issuer(secret: &str) -> TokenIssuer {
        TokenIssuer::from_config(&config(SigningKeySource::Secret(Secret::new(secret.into())))).expect("derives")
    }

    #[test]
    fn issued_tokens_verify_and_carry_claims() {
        let issuer = pem_issuer();
        let (token, life) = issuer.issue(subject(Role::Admin)).expect("signs");
        assert_eq!(life, 60);
        let claims = issuer.verify(&token).expect("verifies");
        assert_eq!((claims.sub, claims.role, claims.exp - claims.iat), (U1.to_string(), Role::Admin, 60));
        assert_eq!((claims.sid, claims.scope), (uuid::Uuid::from_u128(9), TokenScope::Full));
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(issuer.kid.as_str()));
    }

    #[test]
    fn no_token_outlives_its_sessions_limit() {
        let issuer = pem_issuer();
        let not_after = jsonwebtoken::get_current_timestamp() + 10;
        let (token, life) = issuer.issue(TokenSubject { not_after, ..subject(Role::User) }).expect("signs");
        assert!(life <= 10, "{life}");
        assert_eq!(issuer.verify(&token).expect("verifies").exp, not_after);
    }

    #[test]
    fn another_key_does_not_verify() {
        let (a, b) = (pem_issuer(), pem_issuer());
        let (token, _) = a.issue(subject(Role::User)).expect("signs");
        assert!(b.verify(&token).is_err());
    }

    #[test]
    fn a_secret_derives_one_key_and_another_secret_another() {
        let secret = "k".repeat(64);
        let (a, b) = (secret_issuer(&secret), secret_issuer(&secret));
        assert_eq!(a.kid, b.kid, "the same secret, the same key");
        let (token, _) = a.issue(subject(Role::User)).expect("signs");
        assert_eq!(b.verify(&token).expect("verifies").sub, U1.to_string());
        let other = secret_issuer(&format!("{}j", &secret[1..]));
        assert_ne!(other.kid, a.kid);
        assert!(other.verify(&token).is_err());
    }

    #[test]
    fn the_derivation_is_hkdf_sha256_with_the_versioned_info() {
        // RFC 5869 by hand (extract with a zero salt, one expand block), so a change of
        // the derivation (or of its info string) fails here before it logs everyone out.
        use hmac_by_hand::hmac_sha256;
        let secret = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZab";
        let prk = hmac_sha256(&[0u8; 32], secret);
        let okm = hmac_sha256(&prk, &[KEY_DERIVATION_INFO, &[1u8]].concat());
        let derived = derive_signing_key(std::str::from_utf8(secret).expect("ascii"));
        assert_eq!(derived.to_bytes(), okm);
    }

    mod hmac_by_hand {
        use sha2::{Digest, Sha256};

        /// HMAC-SHA256 (RFC 2104) for keys of at most one block.
        pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
            let mut block = [0u8; 64];
            block[..key.len()].copy_from_slice(key);
            let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
            let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
            Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
        }
    }

    #[test]
    fn garbage_key_is_refused() {
        let source = SigningKeySource::Pem(Secret::new("not a pem".into()));
        assert!(TokenIssuer::from_config(&config(source)).is_err());
    }
}
