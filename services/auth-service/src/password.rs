//! Password policy and argon2id hashing. Hashing is CPU-bound, so it runs on the
//! blocking pool, never on the async workers.
//!
//! The policy (`PASSWORD_POLICY`): 8 to 128 characters always; under `strong`, a zxcvbn
//! score of 3 or more, and 12 characters at least for ADMIN and AUDITOR. Each password's
//! [`PasswordGrade`] is stored beside its hash, so that a stricter policy or a promotion
//! can tell which passwords no longer meet it.

use std::{
    str::FromStr,
    sync::{
        LazyLock,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use pulsetrack_common::{identity::Role, settings::PasswordPolicy};

/// At most this many hashes run at once (each takes ~19 MiB and a core for tens of
/// milliseconds); a flood of logins queues here instead of exhausting memory.
static HASHING: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| tokio::sync::Semaphore::new(slots()));

fn slots() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(2) * 2
}
/// How long a request waits for a hashing slot before it is answered 503.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing is saturated")]
    Busy,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// How many requests wait for a hashing slot right now.
static WAITING: AtomicI64 = AtomicI64::new(0);

/// `auth_password_hashes_waiting` and `auth_password_hashes_running`, read at each scrape.
pub fn register_metrics(metrics: &pulsetrack_common::metrics::Metrics) {
    use prometheus_client::metrics::gauge::Gauge;
    let (waiting, running) = (Gauge::<i64>::default(), Gauge::<i64>::default());
    metrics.register("auth_password_hashes_waiting", "Logins and signups waiting for a hashing slot", waiting.clone());
    metrics.register("auth_password_hashes_running", "Password hashes being computed", running.clone());
    let slots = i64::try_from(slots()).unwrap_or(i64::MAX);
    metrics.on_scrape(move || {
        waiting.set(WAITING.load(Ordering::Relaxed));
        running.set(slots - i64::try_from(HASHING.available_permits()).unwrap_or(0));
        std::future::ready(())
    });
}

/// Runs `work` on the blocking pool once a hashing slot is free.
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> Result<T, HashError> {
    WAITING.fetch_add(1, Ordering::Relaxed);
    let permit = tokio::time::timeout(QUEUE_TIMEOUT, HASHING.acquire()).await;
    WAITING.fetch_sub(1, Ordering::Relaxed);
    let _permit = permit.map_err(|_| HashError::Busy)?.map_err(|e| HashError::Internal(e.into()))?;
    Ok(tokio::task::spawn_blocking(work).await.map_err(anyhow::Error::from)??)
}

pub const MIN_LEN: usize = 8;
/// Bounds the hashing work a single request can ask for.
pub const MAX_LEN: usize = 128;

pub fn check_policy(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(format!("must be at least {MIN_LEN} characters"));
    }
    if len > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters"));
    }
    Ok(())
}

/// ADMIN and AUDITOR passwords are this long at least under `PASSWORD_POLICY=strong`.
pub const PRIVILEGED_MIN_LEN: usize = 12;
/// The zxcvbn score (0 to 4) a Strong or Privileged password reaches at least: an
/// estimate of 10^8 guesses or more.
const STRONG_SCORE: zxcvbn::Score = zxcvbn::Score::Three;
/// Words of an email or a username shorter than this are not looked for in a password.
const MIN_PERSONAL_WORD: usize = 3;

/// Which rule a password meets; stored beside its hash (users.password_grade).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PasswordGrade {
    /// 8 to 128 characters, whatever the estimator thinks of it.
    Basic,
    /// A zxcvbn score of 3 or more.
    Strong,
    /// A zxcvbn score of 3 or more, and [`PRIVILEGED_MIN_LEN`] characters at least.
    Privileged,
}

impl PasswordGrade {
    pub const ALL: [PasswordGrade; 3] = [PasswordGrade::Basic, PasswordGrade::Strong, PasswordGrade::Privileged];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Strong => "strong",
            Self::Privileged => "privileged",
        }
    }
}

impl FromStr for PasswordGrade {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a password grade (basic, strong or privileged)"))
    }
}

/// The grade `policy` requires of an account of `role`: Basic under Basic; under
/// Strong, Privileged for ADMIN and AUDITOR, Strong for every other role.
pub fn required_grade(policy: PasswordPolicy, role: Role) -> PasswordGrade {
    match policy {
        PasswordPolicy::Basic => PasswordGrade::Basic,
        PasswordPolicy::Strong if matches!(role, Role::Admin | Role::Auditor) => PasswordGrade::Privileged,
        PasswordPolicy::Strong => PasswordGrade::Strong,
    }
}

/// The grade of `password` (whatever the policy), judged by zxcvbn with `user_inputs`
/// (the account's email and username, so that a password made of them scores low).
/// The length bounds are [`check_policy`]'s: a password outside them grades Basic at best.
///
/// CPU-bound: under a millisecond for a typical password, but tens of milliseconds for a
/// long random one and up to ~1 s for a crafted 128-character one (many characters that
/// zxcvbn reads as l33t substitutions); see [`check_new_async`].
pub fn grade(password: &str, user_inputs: &[&str]) -> PasswordGrade {
    grade_of(password, &estimate(password, user_inputs))
}

/// Checks a new password for an account of `role` under `policy`: the length bounds
/// always, then the grade the policy requires. Refused, the reason is one sentence for
/// the API's field error (with zxcvbn's warning and suggestions when the estimator
/// refused it); accepted, the password's grade, to store beside its hash.
///
/// CPU-bound like [`grade`]; [`check_new_async`] runs it on the blocking pool.
pub fn check_new(
    policy: PasswordPolicy,
    role: Role,
    password: &str,
    user_inputs: &[&str],
) -> Result<PasswordGrade, String> {
    check_policy(password)?;
    let required = required_grade(policy, role);
    if required == PasswordGrade::Privileged && password.chars().count() < PRIVILEGED_MIN_LEN {
        return Err(format!("must be at least {PRIVILEGED_MIN_LEN} characters for ADMIN and AUDITOR accounts"));
    }
    let entropy = estimate(password, user_inputs);
    let grade = grade_of(password, &entropy);
    if grade < required {
        return Err(refusal(&entropy));
    }
    Ok(grade)
}

/// [`check_new`] on the blocking pool, in a hashing slot (so that a flood of crafted
/// passwords queues like a flood of logins): the outer error is [`HashError`], the
/// inner one the refusal.
pub async fn check_new_async(
    policy: PasswordPolicy,
    role: Role,
    password: String,
    user_inputs: Vec<String>,
) -> Result<Result<PasswordGrade, String>, HashError> {
    hashing(move || {
        let inputs: Vec<&str> = user_inputs.iter().map(String::as_str).collect();
        Ok(check_new(policy, role, &password, &inputs))
    })
    .await
}

fn estimate(password: &str, user_inputs: &[&str]) -> zxcvbn::Entropy {
    let words = personal_words(user_inputs);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    zxcvbn::zxcvbn(password, &words)
}

fn grade_of(password: &str, entropy: &zxcvbn::Entropy) -> PasswordGrade {
    let len = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&len) || entropy.score() < STRONG_SCORE {
        PasswordGrade::Basic
    } else if len < PRIVILEGED_MIN_LEN {
        PasswordGrade::Strong
    } else {
        PasswordGrade::Privileged
    }
}

/// What zxcvbn should treat as known to an attacker: each input whole, an email's
/// local part with and without its separators, and each input's words of
/// [`MIN_PERSONAL_WORD`] characters or more (zxcvbn matches whole dictionary entries
/// only, so the email alone would not catch a password made of its local part).
fn personal_words(user_inputs: &[&str]) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut add = |word: &str| {
        let word = word.to_lowercase();
        if !word.is_empty() && !words.contains(&word) {
            words.push(word);
        }
    };
    for input in user_inputs.iter().map(|i| i.trim()) {
        add(input);
        if let Some((local, _domain)) = input.rsplit_once('@') {
            add(local);
            add(&local.chars().filter(|c| c.is_alphanumeric()).collect::<String>());
        }
        for word in input.split(|c: char| !c.is_alphanumeric()) {
            if word.chars().count() >= MIN_PERSONAL_WORD {
                add(word);
            }
        }
    }
    words
}

/// "is too easy to guess: " and zxcvbn's warning and suggestions, as one sentence.
fn refusal(entropy: &zxcvbn::Entropy) -> String {
    let mut reason = String::from("is too easy to guess");
    let Some(feedback) = entropy.feedback() else {
        return reason;
    };
    let clauses: Vec<String> = (feedback.warning().map(|w| w.to_string()).into_iter())
        .chain(feedback.suggestions().iter().map(ToString::to_string))
        .map(|sentence| as_clause(&sentence))
        .filter(|clause| !clause.is_empty())
        .collect();
    if !clauses.is_empty() {
        reason.push_str(": ");
        reason.push_str(&clauses.join("; "));
    }
    reason
}

/// One of zxcvbn's sentences as a clause: "Add another word or two. Uncommon words are
/// better." becomes "add another word or two, uncommon words are better".
fn as_clause(sentence: &str) -> String {
    let parts: Vec<String> = sentence.trim().trim_end_matches('.').split(". ").map(lower_first).collect();
    parts.join(", ")
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Argon2id with the crate's defaults (the OWASP-recommended m=19 MiB, t=2, p=1).
pub async fn hash(password: String) -> Result<String, HashError> {
    hashing(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hash failed: {e}"))
    })
    .await
}

/// A hash of no real password, verified against when the email is unknown so that
/// an unknown email and a wrong password take the same time.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(b"no-such-user-password", &salt).map(|h| h.to_string()).unwrap_or_default()
});

/// Verifies `password` against `stored`, or against a dummy hash when `stored` is None.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, HashError> {
    hashing(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let parsed = PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        let matches = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(known && matches)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_bounds() {
        assert!(check_policy("1234567").is_err());
        assert!(check_policy("12345678").is_ok());
        assert!(check_policy(&"x".repeat(129)).is_err());
    }

    /// Strong-scoring (zxcvbn 4) and 11 characters: one short of Privileged.
    const ELEVEN: &str = "Vq7#mZ2!pLx";
    const EMAIL: &str = "dr.quillfeather@stmarys.example";
    const USERNAME: &str = "quill";

    #[test]
    fn seed_password_passes_basic_and_is_refused_by_strong() {
        for role in Role::ALL {
            assert_eq!(check_new(PasswordPolicy::Basic, role, "12345678", &[]), Ok(PasswordGrade::Basic), "{role:?}");
            let reason = check_new(PasswordPolicy::Strong, role, "12345678", &[]).expect_err("refused");
            if matches!(role, Role::Admin | Role::Auditor) {
                assert_eq!(reason, "must be at least 12 characters for ADMIN and AUDITOR accounts");
            } else {
                assert_eq!(
                    reason,
                    "is too easy to guess: this is a top-10 common password; \
                     add another word or two, uncommon words are better"
                );
            }
        }
        let reason = check_new(PasswordPolicy::Strong, Role::Admin, "123456781234", &[]).expect_err("refused");
        assert!(reason.starts_with("is too easy to guess: "), "{reason}");
        assert!(check_new(PasswordPolicy::Basic, Role::User, "1234567", &[]).is_err());
        assert!(check_new(PasswordPolicy::Basic, Role::User, &"x".repeat(129), &[]).is_err());
    }

    #[test]
    fn passphrase_passes_strong() {
        let inputs = [EMAIL, USERNAME];
        let grade = check_new(PasswordPolicy::Strong, Role::User, "correct-horse-battery-staple-9", &inputs);
        assert_eq!(grade, Ok(PasswordGrade::Privileged));
        assert_eq!(check_new(PasswordPolicy::Strong, Role::Admin, "correct-horse-battery-staple-9", &inputs), grade);
    }

    #[test]
    fn eleven_characters_are_too_short_for_admin_and_auditor_only() {
        assert_eq!(ELEVEN.chars().count(), 11);
        assert_eq!(grade(ELEVEN, &[]), PasswordGrade::Strong);
        for role in Role::ALL {
            let checked = check_new(PasswordPolicy::Strong, role, ELEVEN, &[EMAIL, USERNAME]);
            if matches!(role, Role::Admin | Role::Auditor) {
                assert_eq!(checked, Err("must be at least 12 characters for ADMIN and AUDITOR accounts".into()));
            } else {
                assert_eq!(checked, Ok(PasswordGrade::Strong), "{role:?}");
            }
        }
    }

    #[test]
    fn a_password_made_of_the_email_scores_low() {
        for password in ["dr.quillfeather", "quillfeather1987", "Quillfeather!", "stmarysquill"] {
            // Strong on its own: only the account's email and username make it weak.
            assert!(grade(password, &[]) >= PasswordGrade::Strong, "{password}");
            assert_eq!(grade(password, &[EMAIL, USERNAME]), PasswordGrade::Basic, "{password}");
            let reason =
                check_new(PasswordPolicy::Strong, Role::User, password, &[EMAIL, USERNAME]).expect_err(password);
            assert!(reason.starts_with("is too easy to guess"), "{reason}");
        }
    }

    #[test]
    fn required_grades() {
        use PasswordGrade::*;
        for role in Role::ALL {
            assert_eq!(required_grade(PasswordPolicy::Basic, role), Basic, "{role:?}");
        }
        let strong = [
            (Role::User, Strong),
            (Role::Clinician, Strong),
            (Role::Billing, Strong),
            (Role::Auditor, Privileged),
            (Role::Admin, Privileged),
        ];
        for (role, required) in strong {
            assert_eq!(required_grade(PasswordPolicy::Strong, role), required, "{role:?}");
        }
        // Any other role (PENDING, and roles still to come) needs Strong.
        for role in Role::ALL.into_iter().filter(|r| !matches!(r, Role::Admin | Role::Auditor)) {
            assert_eq!(required_grade(PasswordPolicy::Strong, role), Strong, "{role:?}");
        }
    }

    #[test]
    fn grades_round_trip() {
        for g in PasswordGrade::ALL {
            assert_eq!(g.as_str().parse(), Ok(g));
        }
        assert!(PasswordGrade::Basic < PasswordGrade::Strong && PasswordGrade::Strong < PasswordGrade::Privileged);
        assert!("medium".parse::<PasswordGrade>().is_err());
        assert!("".parse::<PasswordGrade>().is_err());
    }

    #[test]
    fn personal_words_of_an_email() {
        assert_eq!(
            personal_words(&[" Dr.Quillfeather@StMarys.example ", "quill", ""]),
            [
                "dr.quillfeather@stmarys.example",
                "dr.quillfeather",
                "drquillfeather",
                "quillfeather",
                "stmarys",
                "example",
                "quill"
            ]
        );
    }

    #[tokio::test]
    async fn check_new_async_runs_the_check() {
        let checked = check_new_async(PasswordPolicy::Strong, Role::User, "12345678".into(), vec![EMAIL.into()]).await;
        assert!(checked.expect("a slot").is_err());
    }

    #[tokio::test]
    async fn hash_is_argon2id_and_verifies() {
        let h = hash("correct horse".into()).await.expect("hashes");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(h.clone())).await.expect("verifies"));
        assert!(!verify("wrong horse!".into(), Some(h)).await.expect("verifies"));
        assert!(!verify("no-such-user-password".into(), None).await.expect("verifies"));
    }
}
