//! TOTP (RFC 6238) with the parameters authenticator apps assume: HMAC-SHA-1, 6 digits,
//! 30-second steps. The codes themselves come from the `totp-rs` crate.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::{RngCore, rngs::OsRng};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroize;

use super::MfaError;

/// Length of a step, in seconds.
pub const STEP_SECONDS: u64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Length of a generated secret: 160 bits, RFC 4226 §4's recommendation.
pub const SECRET_LEN: usize = 20;
/// Shortest secret accepted: 128 bits, RFC 4226 §4's minimum.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest secret accepted (HMAC-SHA-1's block size; anything longer is a mistake).
pub const MAX_SECRET_LEN: usize = 64;
/// Steps accepted either side of the current one (RFC 6238 §5.2 recommends one).
const SKEW_STEPS: u64 = 1;
/// Inputs longer than this are refused before any work (a code is 6 digits and spaces).
const MAX_INPUT_LEN: usize = 32;
/// RFC 3986's unreserved characters stay; everything else in a label is percent-encoded.
const LABEL: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The shared secret of an account's authenticator. `Debug` does not show the bytes,
/// and they are zeroed on drop.
pub struct TotpSecret {
    totp: Totp,
}

impl TotpSecret {
    /// A new secret: [`SECRET_LEN`] bytes from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_LEN];
        OsRng.fill_bytes(&mut bytes);
        let secret = Self::with_secret(Secret::from(bytes.to_vec()));
        bytes.zeroize();
        secret
    }

    /// A secret read back (e.g. just opened with [`super::SealKey::open`]); refused when
    /// shorter than [`MIN_SECRET_LEN`] or longer than [`MAX_SECRET_LEN`] bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, MfaError> {
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&bytes.len()) {
            return Err(MfaError::SecretLength(bytes.len()));
        }
        Ok(Self::with_secret(Secret::from(bytes)))
    }

    /// A secret as [`TotpSecret::base32`] shows it (what an authenticator app holds).
    pub fn from_base32(encoded: &str) -> Result<Self, MfaError> {
        let secret = Secret::try_from_base32(encoded.trim()).map_err(|_| MfaError::NotBase32)?;
        Self::from_bytes(secret.as_bytes().to_vec())
    }

    fn with_secret(secret: Secret) -> Self {
        // `build_noncompliant` skips the builder's checks, which cannot fail here: the
        // length is checked by the callers and the other parameters are RFC 6238's.
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS as u8)
            .with_skew(SKEW_STEPS as u16)
            .with_step_duration(STEP_SECONDS)
            .with_secret(secret)
            .build_noncompliant();
        Self { totp }
    }

    /// The raw bytes (to seal and store).
    pub fn as_bytes(&self) -> &[u8] {
        self.totp.secret().as_bytes()
    }

    /// RFC 4648 base32 without padding: what the user types into an app instead of
    /// scanning the QR code.
    pub fn base32(&self) -> String {
        self.totp.secret().to_base32()
    }
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpSecret").finish_non_exhaustive()
    }
}

/// The Key Uri Format URI (what the QR code holds):
/// `otpauth://totp/Issuer:account?secret=...&issuer=Issuer&algorithm=SHA1&digits=6&period=30`.
/// Issuer and account are percent-encoded (`@` becomes `%40`). Neither should contain
/// a `:`: the format forbids it, and although it is encoded here (`%3A`), some apps
/// would still split the label at it.
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account: &str) -> String {
    let issuer = utf8_percent_encode(issuer, LABEL);
    let account = utf8_percent_encode(account, LABEL);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        secret.base32()
    )
}

/// The code an authenticator app shows at `unix_time` (seconds), for tests and tools.
pub fn code_at(secret: &TotpSecret, unix_time: u64) -> String {
    secret.totp.generate(unix_time).to_string()
}

/// The time step (`unix_now / 30`, ± 1) whose code is `code`, or `None`.
///
/// `code` is 6 ASCII digits; ASCII whitespace anywhere is ignored (apps show
/// `123 456`), anything else gives `None`. All candidate steps are computed and compared
/// in constant time. Should two steps share the code, the latest is returned, so that a
/// stored step refuses every replay of that code. The caller accepts the code only when
/// the step is greater than the last step the account used, then stores it.
pub fn matching_step(secret: &TotpSecret, code: &str, unix_now: u64) -> Option<u64> {
    let code = parse_code(code)?;
    let now = unix_now / STEP_SECONDS;
    let mut matched = Choice::from(0);
    let mut step_found = 0u64;
    for step in now.saturating_sub(SKEW_STEPS)..=now.saturating_add(SKEW_STEPS) {
        let Some(time) = step.checked_mul(STEP_SECONDS) else {
            continue;
        };
        let is_match = code_at(secret, time).as_bytes().ct_eq(&code);
        step_found.conditional_assign(&step, is_match);
        matched |= is_match;
    }
    bool::from(matched).then_some(step_found)
}

/// The 6 digits of `input` without whitespace, or `None` when it is not a code's shape.
fn parse_code(input: &str) -> Option<[u8; DIGITS]> {
    if input.len() > MAX_INPUT_LEN {
        return None;
    }
    let mut digits = [0u8; DIGITS];
    let mut len = 0;
    for byte in input.bytes().filter(|b| !b.is_ascii_whitespace()) {
        if !byte.is_ascii_digit() || len == DIGITS {
            return None;
        }
        digits[len] = byte;
        len += 1;
    }
    (len == DIGITS).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 secret.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(RFC_SECRET.to_vec()).unwrap()
    }

    #[test]
    fn rfc_6238_sha1_test_vectors() {
        let secret = rfc_secret();
        // 8 digits, exactly as in the RFC's table, from the same bytes.
        let eight = Builder::new().with_digits(8).with_secret(secret.as_bytes().to_vec()).build().unwrap();
        assert_eq!(eight.generate(59).to_string(), "94287082");
        assert_eq!(eight.generate(1_234_567_890).to_string(), "89005924");
        // 6 digits: the last 6 of the RFC's values (leading zeros kept).
        for (time, code) in
            [(59, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924"), (2_000_000_000, "279037")]
        {
            assert_eq!(code_at(&secret, time), code);
            assert_eq!(matching_step(&secret, code, time), Some(time / STEP_SECONDS));
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_refused_two_steps_away() {
        let secret = rfc_secret();
        let now = 1_700_000_012;
        let step = now / STEP_SECONDS;
        let codes: Vec<String> = (step - 2..=step + 2).map(|s| code_at(&secret, s * STEP_SECONDS)).collect();
        // The test means something only if the five codes differ (they do for this secret).
        for (i, a) in codes.iter().enumerate() {
            assert!(codes.iter().skip(i + 1).all(|b| a != b), "{codes:?}");
        }
        assert_eq!(matching_step(&secret, &codes[0], now), None);
        assert_eq!(matching_step(&secret, &codes[1], now), Some(step - 1));
        assert_eq!(matching_step(&secret, &codes[2], now), Some(step));
        assert_eq!(matching_step(&secret, &codes[3], now), Some(step + 1));
        assert_eq!(matching_step(&secret, &codes[4], now), None);
    }

    #[test]
    fn a_generated_secret_verifies_its_own_codes() {
        let secret = TotpSecret::generate();
        let now = 1_700_000_000;
        assert_eq!(matching_step(&secret, &code_at(&secret, now), now), Some(now / STEP_SECONDS));
        let again = TotpSecret::from_bytes(secret.as_bytes().to_vec()).unwrap();
        assert_eq!(matching_step(&again, &code_at(&secret, now), now), Some(now / STEP_SECONDS));
    }

    #[test]
    fn whitespace_is_forgiven_and_malformed_codes_are_refused() {
        let secret = rfc_secret();
        assert_eq!(matching_step(&secret, " 287 082\n", 59), Some(1));
        assert_eq!(matching_step(&secret, "287\t082", 59), Some(1));
        for bad in [
            "",
            "      ",
            "28708",
            "2870820",
            "287-082",
            "+87082",
            "-87082",
            "28708a",
            "２８７０８２",
            "287082 1",
            "0000000000000000000000000000000000287082",
        ] {
            assert_eq!(matching_step(&secret, bad, 59), None, "{bad:?}");
        }
        // Right shape, wrong code.
        assert_eq!(matching_step(&secret, "287083", 59), None);
    }

    #[test]
    fn the_extremes_of_time_do_not_panic() {
        let secret = rfc_secret();
        let first = code_at(&secret, 0);
        assert_eq!(matching_step(&secret, &first, 0), Some(0));
        assert_eq!(matching_step(&secret, &first, 29), Some(0));
        let _ = matching_step(&secret, "123456", u64::MAX);
    }

    #[test]
    fn secrets_are_twenty_random_bytes_and_lengths_are_checked() {
        let a = TotpSecret::generate();
        assert_eq!(a.as_bytes().len(), SECRET_LEN);
        assert_ne!(a.as_bytes(), TotpSecret::generate().as_bytes());
        let again = TotpSecret::from_bytes(a.as_bytes().to_vec()).unwrap();
        assert_eq!(again.as_bytes(), a.as_bytes());
        assert!(matches!(TotpSecret::from_bytes(vec![7; 15]), Err(MfaError::SecretLength(15))));
        assert!(TotpSecret::from_bytes(vec![7; 16]).is_ok());
        assert!(TotpSecret::from_bytes(vec![7; 64]).is_ok());
        assert!(matches!(TotpSecret::from_bytes(vec![7; 65]), Err(MfaError::SecretLength(65))));
        assert!(matches!(TotpSecret::from_bytes(Vec::new()), Err(MfaError::SecretLength(0))));
    }

    #[test]
    fn base32_is_rfc_4648_without_padding() {
        assert_eq!(rfc_secret().base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let short = TotpSecret::from_bytes(vec![0xff; 16]).unwrap();
        assert_eq!(short.base32(), "77777777777777777777777774");
    }

    #[test]
    fn base32_reads_back_and_refuses_what_is_not_base32() {
        let read = TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").expect("base32");
        assert_eq!(read.as_bytes(), rfc_secret().as_bytes());
        assert!(matches!(TotpSecret::from_base32("not base32!"), Err(MfaError::NotBase32)));
        assert!(matches!(TotpSecret::from_base32("GEZDGNBV"), Err(MfaError::SecretLength(5))));
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let secret = rfc_secret();
        let debug = format!("{secret:?}");
        assert_eq!(debug, "TotpSecret { .. }");
    }

    #[test]
    fn the_uri_follows_the_key_uri_format() {
        let uri = otpauth_uri(&rfc_secret(), "PulseTrack", "alice@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/PulseTrack:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=PulseTrack&algorithm=SHA1&digits=6&period=30"
        );
        let encoded = otpauth_uri(&rfc_secret(), "Pulse Track", "a:b&c=d?é");
        assert!(encoded.starts_with("otpauth://totp/Pulse%20Track:a%3Ab%26c%3Dd%3F%C3%A9?secret="), "{encoded}");
        assert!(encoded.contains("&issuer=Pulse%20Track&"), "{encoded}");
    }
}
