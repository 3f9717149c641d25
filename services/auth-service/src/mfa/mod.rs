//! Building blocks of a second factor: TOTP codes (RFC 6238), TOTP secrets sealed at
//! rest and single-use recovery codes. No HTTP and no database here: the routes and the
//! repository wire these together.
//!
//! Design:
//! - [`totp`]: one secret per account, 20 bytes from the OS CSPRNG, HMAC-SHA-1 with
//!   6 digits and 30-second steps (what every authenticator app assumes). A code is
//!   accepted for the current step ± 1 (clock skew). [`totp::matching_step`] returns the
//!   step that matched: the caller stores it and refuses any step not greater than the
//!   last one used, so a code works once (RFC 6238 §5.2).
//! - [`seal`]: the server needs the secret itself to compute codes, so it cannot be
//!   hashed; it is stored encrypted (ChaCha20-Poly1305) under a key derived from a
//!   configured secret that is not in the database. The account id is the AAD: a sealed
//!   secret copied to another account's row does not open.
//! - [`recovery`]: ten random codes shown once; only their SHA-256 digests are stored,
//!   and the caller deletes a digest when its code is used.

pub mod recovery;
pub mod seal;
pub mod totp;

pub use recovery::RecoveryCode;
pub use seal::SealKey;
pub use totp::{TotpSecret, code_at, matching_step, otpauth_uri};

/// Errors of the MFA building blocks. None of them carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    #[error(
        "a TOTP secret must be {min} to {max} bytes long, not {0}",
        min = totp::MIN_SECRET_LEN,
        max = totp::MAX_SECRET_LEN
    )]
    SecretLength(usize),
    #[error("a TOTP secret in base32 is RFC 4648 base32 without padding")]
    NotBase32,
    #[error("the MFA seal secret must be at least {min} characters long", min = seal::MIN_SECRET_CHARS)]
    SealSecretTooShort,
    #[error("cannot derive the MFA seal key")]
    KeyDerivation,
    /// Wrong key, wrong AAD (another account) or damaged bytes: AEAD does not say which.
    #[error("the sealed value does not open (wrong key or account, or damaged)")]
    Unseal,
}
