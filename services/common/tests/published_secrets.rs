//! Every literal secret in PulseTrack's docs and deployment files is one the services
//! refuse: README, CHANGELOG, docs/, docker-compose.yml, scripts/, bench/ and
//! Dockerfiles/ are scanned for `JWT_SIGNING_SECRET`, `MFA_ENCRYPTION_KEY` and
//! `BILLING_GRPC_SECRET` given a literal value (`=`, `: ` or a compose default `:-`),
//! and each such value must be in `PUBLISHED_SECRETS`.

use std::path::{Path, PathBuf};

use pulsetrack_common::published_secrets::{PUBLISHED_SECRETS, refuse_published};

const VARIABLES: [&str; 3] = ["JWT_SIGNING_SECRET", "MFA_ENCRYPTION_KEY", "BILLING_GRPC_SECRET"];

/// Shorter values are not secrets the services would take (they want 32 characters).
const SHORTEST: usize = 16;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The text files under `dir` (recursively), or `dir` itself when it is a file.
fn files(path: &Path, found: &mut Vec<PathBuf>) {
    if path.is_file() {
        found.push(path.to_path_buf());
    } else if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            files(&entry.path(), found);
        }
    }
}

/// The literal values `text` gives the secret variables.
fn literal_secrets(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for var in VARIABLES {
        for (at, _) in text.match_indices(var) {
            let rest = &text[at + var.len()..];
            let Some(value) = [":-", "=", ": "].iter().find_map(|sep| rest.strip_prefix(sep)) else { continue };
            let value = value.trim_start_matches(['"', '\'']);
            let literal: String =
                value.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).collect();
            if literal.len() >= SHORTEST {
                found.push(literal);
            }
        }
    }
    found
}

#[test]
fn the_scanner_finds_literal_secrets_and_skips_generated_ones() {
    let text = "JWT_SIGNING_SECRET=abcdefghijklmnopqrstuvwxyz0123456789 x\n\
                MFA_ENCRYPTION_KEY: ${MFA_ENCRYPTION_KEY:-a-compose-default-of-some-length}\n\
                BILLING_GRPC_SECRET=\"quoted-literal-secret-value\"\n\
                JWT_SIGNING_SECRET=\"$(head -c 48 /dev/urandom | base64)\"\n\
                BILLING_GRPC_SECRET: ${BILLING_GRPC_SECRET:?run scripts/compose-secrets.sh}\n\
                JWT_SIGNING_SECRET=short";
    assert_eq!(
        literal_secrets(text),
        ["abcdefghijklmnopqrstuvwxyz0123456789", "a-compose-default-of-some-length", "quoted-literal-secret-value"]
    );
}

#[test]
fn every_secret_the_docs_and_deployment_files_spell_out_is_refused() {
    let root = root();
    let mut paths = Vec::new();
    for part in ["README.md", "CHANGELOG.md", "docs/src", "docker-compose.yml", "scripts", "bench", "Dockerfiles"] {
        files(&root.join(part), &mut paths);
    }
    assert!(paths.len() > 20, "the scan found the repository's files: {paths:?}");
    let mut unlisted = Vec::new();
    for path in &paths {
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        for secret in literal_secrets(&text) {
            if refuse_published(&secret).is_ok() {
                unlisted.push(format!("{}: {secret}", path.display()));
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "literal secrets the services would take; add them to PUBLISHED_SECRETS or generate them: {unlisted:#?}"
    );
    assert!(PUBLISHED_SECRETS.iter().all(|s| s.len() >= 32), "each listed value is long enough to be taken");
}
