//! Encryption at rest of TOTP secrets, with a key that is not in the database.
//!
//! Sealed bytes are `nonce (12 bytes) || ChaCha20-Poly1305 ciphertext and tag (16 bytes)`.
//! The nonce is random (96 bits): far below the birthday bound for the few values
//! sealed under one key. The AAD (the account id) is authenticated, not stored.

use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use hkdf::Hkdf;
use rand::{RngCore, rngs::OsRng};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::MfaError;

/// Shortest secret accepted by [`SealKey::from_secret`], in characters.
pub const MIN_SECRET_CHARS: usize = 32;
/// HKDF's `info`: names what the key is for and the version of the derivation. Changing
/// it changes the key, and no sealed secret opens any more.
const KEY_DERIVATION_INFO: &[u8] = b"pulsetrack mfa seal v1";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
/// Poly1305's tag.
const TAG_LEN: usize = 16;

/// The key that seals TOTP secrets. `Debug` shows no key material; the cipher zeroes the
/// key on drop.
pub struct SealKey {
    cipher: ChaCha20Poly1305,
}

impl SealKey {
    /// The key of a configured secret (at least [`MIN_SECRET_CHARS`] characters):
    /// HKDF-SHA256 (RFC 5869) with the secret as input keying material, no salt and
    /// `info = "pulsetrack mfa seal v1"`, 32 bytes of output. The same secret gives the
    /// same key on every replica and start.
    pub fn from_secret(secret: &str) -> Result<Self, MfaError> {
        if secret.chars().count() < MIN_SECRET_CHARS {
            return Err(MfaError::SealSecretTooShort);
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        Hkdf::<Sha256>::new(None, secret.as_bytes())
            .expand(KEY_DERIVATION_INFO, key.as_mut_slice())
            .map_err(|_| MfaError::KeyDerivation)?;
        let cipher = ChaCha20Poly1305::new_from_slice(key.as_slice()).map_err(|_| MfaError::KeyDerivation)?;
        Ok(Self { cipher })
    }

    /// `plaintext` encrypted and authenticated together with `aad` (the account id), under
    /// a fresh random nonce: two seals of the same plaintext differ.
    ///
    /// # Panics
    ///
    /// Only for a plaintext beyond ChaCha20's limit of 256 GiB (a secret is 20 bytes).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad })
            .expect("ChaCha20-Poly1305 encrypts anything below 256 GiB");
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// The plaintext of `sealed`, when it was sealed by this key with this `aad` and not
    /// altered since; [`MfaError::Unseal`] otherwise.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, MfaError> {
        let (nonce, ciphertext) = sealed.split_first_chunk::<NONCE_LEN>().ok_or(MfaError::Unseal)?;
        if ciphertext.len() < TAG_LEN {
            return Err(MfaError::Unseal);
        }
        self.cipher.decrypt(&Nonce::from(*nonce), Payload { msg: ciphertext, aad }).map_err(|_| MfaError::Unseal)
    }
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKey").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "an-mfa-seal-secret-of-32-chars-!";
    const ACCOUNT: &[u8] = b"0190f3a2-6c1e-7d3b-9a4e-2f8b5c6d7e8f";

    fn key() -> SealKey {
        SealKey::from_secret(SECRET).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_with_the_same_key_and_aad() {
        let plaintext = b"12345678901234567890";
        let sealed = key().seal(plaintext, ACCOUNT);
        assert_eq!(sealed.len(), NONCE_LEN + plaintext.len() + TAG_LEN);
        assert!(!sealed.windows(plaintext.len()).any(|w| w == plaintext));
        // Another instance of the key (another replica, a restart) opens it too.
        assert_eq!(key().open(&sealed, ACCOUNT).unwrap(), plaintext);
        let empty = key().seal(b"", ACCOUNT);
        assert_eq!(key().open(&empty, ACCOUNT).unwrap(), b"");
    }

    #[test]
    fn another_account_does_not_open_it() {
        let sealed = key().seal(b"secret", ACCOUNT);
        assert!(matches!(key().open(&sealed, b"0190f3a2-6c1e-7d3b-9a4e-2f8b5c6d7e90"), Err(MfaError::Unseal)));
        assert!(matches!(key().open(&sealed, b""), Err(MfaError::Unseal)));
    }

    #[test]
    fn another_key_does_not_open_it() {
        let sealed = key().seal(b"secret", ACCOUNT);
        let other = SealKey::from_secret("another-mfa-seal-secret-32-chars").unwrap();
        assert!(matches!(other.open(&sealed, ACCOUNT), Err(MfaError::Unseal)));
    }

    #[test]
    fn any_flipped_bit_is_refused() {
        let sealed = key().seal(b"12345678901234567890", ACCOUNT);
        // Nonce, ciphertext and tag alike.
        for i in 0..sealed.len() {
            let mut damaged = sealed.clone();
            damaged[i] ^= 0x01;
            assert!(matches!(key().open(&damaged, ACCOUNT), Err(MfaError::Unseal)), "byte {i}");
        }
        assert!(matches!(key().open(&sealed[..sealed.len() - 1], ACCOUNT), Err(MfaError::Unseal)));
        for short in [&[][..], &sealed[..NONCE_LEN], &sealed[..NONCE_LEN + TAG_LEN - 1]] {
            assert!(matches!(key().open(short, ACCOUNT), Err(MfaError::Unseal)));
        }
    }

    #[test]
    fn two_seals_of_the_same_plaintext_differ() {
        let key = key();
        let a = key.seal(b"12345678901234567890", ACCOUNT);
        let b = key.seal(b"12345678901234567890", ACCOUNT);
        assert_ne!(a, b);
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(SealKey::from_secret(""), Err(MfaError::SealSecretTooShort)));
        assert!(matches!(SealKey::from_secret(&"x".repeat(31)), Err(MfaError::SealSecretTooShort)));
        assert!(SealKey::from_secret(&"x".repeat(32)).is_ok());
        // Characters, not bytes: 31 two-byte characters are still too short.
        assert!(matches!(SealKey::from_secret(&"é".repeat(31)), Err(MfaError::SealSecretTooShort)));
    }

    #[test]
    fn the_derivation_is_stable() {
        // Sealed once with the v1 derivation (and opened independently with Python's
        // `cryptography`: HKDF-SHA256 then ChaCha20-Poly1305). It must open for as long as
        // stored secrets exist: if this fails, the derivation or the format changed and
        // every sealed secret is lost.
        let sealed =
            hex("0ffe554a1b3c8439c00906c82108f573b25a5a31027652d0ff7df510a996543d63fe1ba364ee5b432700c4fe48c269e1");
        assert_eq!(key().open(&sealed, ACCOUNT).unwrap(), b"12345678901234567890");
    }

    #[test]
    fn debug_shows_no_key_material() {
        assert_eq!(format!("{:?}", key()), "SealKey { .. }");
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
}
