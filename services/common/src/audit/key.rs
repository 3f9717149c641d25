//! The trail's key (`AUDIT_KEY`), which lives with the service and never in its
//! database: entries are sealed with an HMAC derived from it, so that database access
//! alone cannot add, change or re-chain an entry that verifies; and the trail's head is
//! signed with an Ed25519 key derived from it when it is anchored outside the database.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{ConfigError, Raw};

/// The shortest secret accepted (the stack generates 64 alphanumerics).
pub const MIN_KEY_CHARS: usize = 32;
/// HKDF's `info` for the entries' HMAC key. Changing it changes every MAC.
const MAC_KEY_INFO: &[u8] = b"pulsetrack audit entry hmac-sha256 v2";
/// HKDF's `info` for the anchors' Ed25519 signing key.
const ANCHOR_KEY_INFO: &[u8] = b"pulsetrack audit anchor ed25519 v1";

/// The keys derived from one service's `AUDIT_KEY`. `Debug` shows only the public key.
#[derive(Clone)]
pub struct AuditKey {
    mac: [u8; 32],
    anchor: SigningKey,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey").field("anchor_public_key", &super::hex::hex(self.verifying().as_bytes())).finish()
    }
}

/// HKDF-SHA256 (RFC 5869) of `secret`, no salt, for `info`.
fn derive(secret: &str, info: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    // 32 bytes are far below HKDF-SHA256's limit of 255 * 32: expanding cannot fail.
    let expanded = hkdf::Hkdf::<Sha256>::new(None, secret.as_bytes()).expand(info, &mut key);
    debug_assert!(expanded.is_ok());
    key
}

impl AuditKey {
    /// The keys of `secret`, if it has at least [`MIN_KEY_CHARS`] characters.
    pub fn from_secret(secret: &str) -> Result<Self, String> {
        if secret.chars().count() < MIN_KEY_CHARS {
            return Err(format!("must be at least {MIN_KEY_CHARS} characters"));
        }
        Ok(Self { mac: derive(secret, MAC_KEY_INFO), anchor: SigningKey::from_bytes(&derive(secret, ANCHOR_KEY_INFO)) })
    }

    /// `AUDIT_KEY`: required, long enough, and not one PulseTrack ever published; the
    /// error names the variable.
    pub fn from_setting(raw: &Raw) -> Result<Self, ConfigError> {
        let secret = raw.optional().ok_or_else(|| {
            raw.error(format!(
                "required: the secret the audit trail is sealed with, at least {MIN_KEY_CHARS} characters, kept \
                 outside the database (the stack generates it; `deployer up` keeps it in its data folder)"
            ))
        })?;
        crate::published_secrets::refuse_published(&secret).map_err(|reason| raw.error(reason))?;
        Self::from_secret(&secret).map_err(|reason| raw.error(reason))
    }

    /// A fresh random key, for tests and tools.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_secret(&super::hex::hex(&bytes)).unwrap_or_else(|_| unreachable!("64 hex digits are long enough"))
    }

    /// A new HMAC-SHA256 of the entry keys.
    pub(super) fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.mac).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    pub(super) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.anchor.sign(message).to_bytes()
    }

    /// The public half of the anchor key: whoever holds it can check an anchor without
    /// the secret.
    pub fn verifying(&self) -> VerifyingKey {
        self.anchor.verifying_key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_published_secrets_are_refused_by_name() {
        let short = crate::config::Raw::new(pulsetrack_settings::AUDIT_KEY, Some("x".repeat(31)));
        assert_eq!(AuditKey::from_setting(&short).expect_err("short").variable, "AUDIT_KEY");
        let missing = crate::config::Raw::new(pulsetrack_settings::AUDIT_KEY, None);
        assert!(AuditKey::from_setting(&missing).is_err());
        let published = crate::published_secrets::PUBLISHED_SECRETS[0].to_string();
        assert!(
            AuditKey::from_setting(&crate::config::Raw::new(pulsetrack_settings::AUDIT_KEY, Some(published))).is_err()
        );
    }

    #[test]
    fn the_same_secret_gives_the_same_keys_and_debug_hides_them() {
        let secret = "k".repeat(40);
        let (a, b) = (AuditKey::from_secret(&secret).expect("a"), AuditKey::from_secret(&secret).expect("b"));
        assert_eq!(a.mac, b.mac);
        assert_eq!(a.verifying(), b.verifying());
        assert_ne!(a.mac, AuditKey::generate().mac);
        assert!(!format!("{a:?}").contains(&super::super::hex::hex(&a.mac)));
    }
}
