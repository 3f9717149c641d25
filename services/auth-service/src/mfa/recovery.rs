//! Single-use recovery codes, for when the authenticator is lost.
//!
//! A code is 12 characters of Crockford's base32 in lowercase (no `i`, `l`, `o`, `u`),
//! 60 bits from the OS CSPRNG, shown as `xxxx-xxxx-xxxx`. Only [`digest`]s are stored;
//! the caller deletes a digest once its code is used.

use rand::{RngCore, rngs::OsRng};
use sha2::{Digest, Sha256};

/// Codes given to an account at a time.
pub const COUNT: usize = 10;
/// Characters of a code, without the dashes: 12 × 5 bits = 60 bits.
pub const CODE_LEN: usize = 12;
/// Characters between two dashes, as shown.
const GROUP_LEN: usize = 4;
/// Inputs longer than this are refused before any work.
const MAX_INPUT_LEN: usize = 64;
/// Crockford's base32, lowercase: digits and letters without `i`, `l`, `o` and `u`,
/// which read like `1`, `1`, `0` and `v`.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A recovery code, to show the user once. `Debug` does not show it.
pub struct RecoveryCode {
    normalized: String,
    shown: String,
}

impl RecoveryCode {
    /// As shown to the user: `xxxx-xxxx-xxxx`.
    pub fn as_str(&self) -> &str {
        &self.shown
    }

    /// As [`normalize`] gives it back: 12 characters, no dashes.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// [`digest`] of the code: what is stored.
    pub fn digest(&self) -> [u8; 32] {
        digest(&self.normalized)
    }
}

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryCode").finish_non_exhaustive()
    }
}

/// [`COUNT`] new distinct codes.
pub fn generate() -> Vec<RecoveryCode> {
    let mut codes: Vec<RecoveryCode> = Vec::with_capacity(COUNT);
    while codes.len() < COUNT {
        let code = random_code();
        // A repeat has odds of about 2^-54: checked all the same, the codes must differ.
        if codes.iter().all(|c| c.normalized != code.normalized) {
            codes.push(code);
        }
    }
    codes
}

fn random_code() -> RecoveryCode {
    let mut bytes = [0u8; CODE_LEN];
    OsRng.fill_bytes(&mut bytes);
    // 32 divides 256: the low 5 bits of a uniform byte are uniform.
    let normalized: String = bytes.iter().map(|b| char::from(ALPHABET[usize::from(b & 0x1f)])).collect();
    let shown = normalized
        .as_bytes()
        .chunks(GROUP_LEN)
        .map(|group| group.iter().map(|&b| char::from(b)).collect::<String>())
        .collect::<Vec<_>>()
        .join("-");
    RecoveryCode { normalized, shown }
}

/// The code typed by a user, normalized, or `None` when it is not a code's shape.
/// Case, whitespace and dashes are forgiven, and so are the letters Crockford's base32
/// reads as digits: `o` is `0`, `i` and `l` are `1`.
pub fn normalize(input: &str) -> Option<String> {
    if input.len() > MAX_INPUT_LEN {
        return None;
    }
    let mut normalized = String::with_capacity(CODE_LEN);
    for c in input.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' => continue,
            c if c.is_ascii_whitespace() => continue,
            'o' => '0',
            'i' | 'l' => '1',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        if normalized.len() == CODE_LEN {
            return None;
        }
        normalized.push(c);
    }
    (normalized.len() == CODE_LEN).then_some(normalized)
}

/// SHA-256 of a normalized code: the value stored and looked up.
///
/// A plain fast hash is enough here, unlike for passwords: a slow hash (Argon2) makes
/// guessing a low-entropy human choice expensive, but these codes are 60 uniformly random
/// bits, with no dictionary to try first. Even with a copy of the table, finding one code
/// by brute force costs about 2^60 / (number of stored digests) hashes, and the code found
/// is worth nothing without that account's password; online guesses meet the caller's
/// login throttle. Looking a digest up with SQL's `=` (not constant time) leaks nothing
/// useful: the timing depends on the hash of the guess, not on the code.
pub fn digest(normalized: &str) -> [u8; 32] {
    Sha256::digest(normalized.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_codes_of_the_right_shape() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        for (i, code) in codes.iter().enumerate() {
            let shown = code.as_str();
            assert_eq!(shown.len(), 14, "{shown}");
            for (j, c) in shown.chars().enumerate() {
                if j == 4 || j == 9 {
                    assert_eq!(c, '-', "{shown}");
                } else {
                    assert!(c.is_ascii() && ALPHABET.contains(&(c as u8)), "{shown}");
                }
            }
            assert_eq!(code.normalized(), shown.replace('-', ""));
            assert!(codes.iter().skip(i + 1).all(|other| other.normalized() != code.normalized()));
            assert!(codes.iter().skip(i + 1).all(|other| other.digest() != code.digest()));
        }
        // Two batches do not share codes.
        let again = generate();
        assert!(codes.iter().all(|c| again.iter().all(|a| a.normalized() != c.normalized())));
    }

    #[test]
    fn normalize_forgives_case_whitespace_and_dashes() {
        for code in generate() {
            assert_eq!(normalize(code.as_str()).as_deref(), Some(code.normalized()));
            assert_eq!(normalize(&code.as_str().to_uppercase()).as_deref(), Some(code.normalized()));
            assert_eq!(normalize(code.normalized()).as_deref(), Some(code.normalized()));
            let spaced = format!("  {} ", code.as_str().replace('-', " "));
            assert_eq!(normalize(&spaced).as_deref(), Some(code.normalized()));
        }
        assert_eq!(normalize("ABCD-EFGH-JKMN").as_deref(), Some("abcdefghjkmn"));
        assert_eq!(normalize("abcd--efgh\tjkmn\n").as_deref(), Some("abcdefghjkmn"));
        // Letters read as digits.
        assert_eq!(normalize("oOiI-lL01-2345").as_deref(), Some("001111012345"));
    }

    #[test]
    fn normalize_refuses_what_is_not_a_code() {
        for bad in [
            "",
            "----",
            "abcd-efgh-jkm",
            "abcd-efgh-jkmnp",
            "abcd-efgh-jkmu",
            "abcd_efgh_jkmn",
            "abcd-efgh-jkm!",
            "abcd-efgh-jkmé",
            "abcd-efgh-jkm５",
            "abcd-efgh-jkmn-abcd-efgh-jkmn",
            &"-".repeat(100),
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_digest_is_stable_sha256() {
        let expected = "d407ad901895723f32d31e6515f5284beb4c01e70e56720d65099da4771f3193";
        let hex: String = digest("0123456789ab").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
        assert_eq!(digest("0123456789ab"), digest("0123456789ab"));
        let code = generate().remove(0);
        assert_eq!(code.digest(), digest(&normalize(&code.as_str().to_uppercase()).unwrap()));
    }

    #[test]
    fn debug_does_not_show_the_code() {
        let code = generate().remove(0);
        let debug = format!("{code:?}");
        assert_eq!(debug, "RecoveryCode { .. }");
    }
}
