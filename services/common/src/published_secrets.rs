//! Secret values PulseTrack has ever published: the development defaults that
//! docker-compose.yml once had, and the examples in its docs. Whoever has read the
//! repository, or its history, knows them, so no service takes one as a secret that
//! keys are derived from (`JWT_SIGNING_SECRET`, `MFA_ENCRYPTION_KEY`,
//! `BILLING_GRPC_SECRET`). `tests/published_secrets.rs` scans the docs and deployment
//! files for literal secrets and fails on any that is missing here.

/// Every secret value ever published with PulseTrack.
pub const PUBLISHED_SECRETS: &[&str] = &[
    "change-me-jwt-signing-secret-for-development-only",
    "change-me-mfa-encryption-key-for-development-only",
    "change-me-billing-grpc-secret-for-development-only-shared-by-two",
    "a-development-secret-of-at-least-32-characters",
];

/// Refuses a secret PulseTrack has published; the reason, for the setting's error.
pub fn refuse_published(secret: &str) -> Result<(), &'static str> {
    if PUBLISHED_SECRETS.contains(&secret.trim()) {
        return Err("is a value published in PulseTrack's repository or docs, which anyone can read: \
                    generate a secret of your own");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_values_are_refused_and_others_taken() {
        for published in PUBLISHED_SECRETS {
            assert!(refuse_published(published).is_err(), "{published}");
            assert!(refuse_published(&format!(" {published}\n")).is_err(), "{published} with spaces");
        }
        assert!(refuse_published("Zq3uV9xk2LmP8rT4wY6bN1cD5fG7hJ0aS2eR4tU6").is_ok());
    }
}
