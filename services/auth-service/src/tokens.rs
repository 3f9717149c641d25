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
use pulsetrack_common::identity::{Claims, Role};
use rand::rngs::OsRng;

use crate::config::JwtConfig;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an Ed25519 PKCS#8 private key: {0}")]
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

/// Generates a new Ed25519 key, as PKCS#8 PEM.
pub fn generate_private_key_pem() -> Result<String, KeyError> {
    let key = ed25519_dalek::SigningKey::generate(&mut OsRng);
    key.to_pkcs8_pem(LineEnding::LF).map(|pem| pem.to_string()).map_err(|e| KeyError::Pkcs8(e.to_string()))
}

impl TokenIssuer {
    pub fn new(config: &JwtConfig, private_key_pem: &str) -> Result<Self, KeyError> {
        let key =
            ed25519_dalek::SigningKey::from_pkcs8_pem(private_key_pem).map_err(|e| KeyError::Pkcs8(e.to_string()))?;
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

    /// Signs a token for the user; returns it with its lifetime in seconds.
    pub fn issue(&self, user_id: &str, email: &str, role: Role) -> Result<String, KeyError> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            email: email.to_string(),
            role,
            iat: now,
            exp: now + self.ttl_seconds,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }

    /// Verifies a token this service issued (used to authorise admin creation).
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
    use super::*;

    fn config() -> JwtConfig {
        JwtConfig { issuer: "iss".into(), audience: "aud".into(), ttl_seconds: 60, private_key_pem: None }
    }

    #[test]
    fn issued_tokens_verify_and_carry_claims() {
        let pem = generate_private_key_pem().expect("generates");
        let issuer = TokenIssuer::new(&config(), &pem).expect("loads");
        let token = issuer.issue("u1", "a@b.c", Role::Admin).expect("signs");
        let claims = issuer.verify(&token).expect("verifies");
        assert_eq!((claims.sub.as_str(), claims.role, claims.exp - claims.iat), ("u1", Role::Admin, 60));
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(issuer.kid.as_str()));
    }

    #[test]
    fn another_key_does_not_verify() {
        let a = TokenIssuer::new(&config(), &generate_private_key_pem().expect("generates")).expect("loads");
        let b = TokenIssuer::new(&config(), &generate_private_key_pem().expect("generates")).expect("loads");
        let token = a.issue("u1", "a@b.c", Role::User).expect("signs");
        assert!(b.verify(&token).is_err());
    }

    #[test]
    fn garbage_key_is_refused() {
        assert!(TokenIssuer::new(&config(), "not a pem").is_err());
    }
}
