//! docker-compose.yml ships no well-known secret: every secret is required (no
//! default), `docker-compose config` refuses the file without them and names the way
//! out (scripts/compose-secrets.sh), and the gateway is published on 127.0.0.1 unless
//! `PULSETRACK_PUBLISH_ADDRESS` says otherwise. Compose runs no services here, so the
//! file is checked with `config`, which resolves it as `up` would.

mod support;

use std::{path::Path, process::Command};

use serde_yaml_ng::Value;
use support::{missing, root, run, scratch};

/// Every secret the compose file reads from the caller's environment or `.env`.
const SECRETS: [&str; 14] = [
    "POSTGRES_PASSWORD",
    "AUTH_DB_PASSWORD",
    "PATIENT_DB_PASSWORD",
    "BILLING_DB_PASSWORD",
    "ANALYTICS_DB_PASSWORD",
    "PULSETRACK_ADMIN_PASSWORD",
    "JWT_SIGNING_SECRET",
    "MFA_ENCRYPTION_KEY",
    "BILLING_GRPC_SECRET",
    "GATEWAY_AUDIT_SECRET",
    "AUTH_AUDIT_KEY",
    "PATIENT_AUDIT_KEY",
    "BILLING_AUDIT_KEY",
    "ANALYTICS_AUDIT_KEY",
];

const PUBLISH: &str = "PULSETRACK_PUBLISH_ADDRESS";

/// Compose v2 as a docker plugin, else the standalone docker-compose (Debian's package).
fn compose() -> Option<(&'static str, Vec<&'static str>)> {
    if run("docker", &["compose", "version"]).is_some_and(|o| o.status.success()) {
        Some(("docker", vec!["compose"]))
    } else if run("docker-compose", &["version"]).is_some_and(|o| o.status.success()) {
        Some(("docker-compose", vec![]))
    } else {
        None
    }
}

/// `config` of docker-compose.yml with only `env_file` and `extra` as its variables.
fn config(env_file: &Path, extra: &[(&str, &str)]) -> Option<std::process::Output> {
    let Some((program, args)) = compose() else {
        missing("docker compose (or docker-compose)");
        return None;
    };
    let mut command = Command::new(program);
    command.args(args).arg("--env-file").arg(env_file).args(["-f", "docker-compose.yml", "config"]);
    for var in SECRETS.iter().chain([&PUBLISH]) {
        command.env_remove(var);
    }
    Some(command.envs(extra.iter().copied()).current_dir(root()).output().expect("compose runs"))
}

/// scripts/compose-secrets.sh's `.env`, written into `dir`.
fn generated_env(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("generated.env");
    let out = Command::new(root().join("scripts/compose-secrets.sh")).arg(&file).output().expect("script runs");
    assert!(out.status.success(), "compose-secrets.sh: {}", String::from_utf8_lossy(&out.stderr));
    file
}

/// The values a `.env` file sets.
fn values(file: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(file).expect("env file");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).expect("KEY=value"))
        .collect()
}

#[test]
fn every_secret_is_required_and_none_has_a_default() {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).expect("compose file");
    for secret in SECRETS {
        let uses: Vec<&str> = text.match_indices(&format!("${{{secret}")).map(|(i, _)| &text[i..]).collect();
        assert!(!uses.is_empty(), "{secret} is not used");
        for used in uses {
            let rest = &used[secret.len() + 2..];
            assert!(rest.starts_with(":?"), "{secret} has a default or is optional: ${{{secret}{}", &rest[..20]);
        }
    }
    assert!(!text.contains("change-me"), "a well-known placeholder secret");
}

#[test]
fn compose_refuses_to_start_without_each_secret() {
    let dir = scratch("compose-missing");
    let all = values(&generated_env(&dir));
    assert_eq!(all.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), SECRETS, "the script writes each secret");
    for (left_out, _) in &all {
        let file = dir.join(format!("without-{left_out}.env"));
        let lines: Vec<String> = all.iter().filter(|(k, _)| k != left_out).map(|(k, v)| format!("{k}={v}")).collect();
        std::fs::write(&file, lines.join("\n")).expect("write");
        let Some(out) = config(&file, &[]) else { return };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "config succeeded without {left_out}");
        assert!(stderr.contains("scripts/compose-secrets.sh"), "without {left_out}: {stderr}");
    }
    let empty = dir.join("empty.env");
    std::fs::write(&empty, "").expect("write");
    assert!(config(&empty, &[]).is_some_and(|o| !o.status.success()), "config succeeded without any secret");
    std::fs::remove_dir_all(dir).ok();
}

/// The host addresses a compose service is published on (either `ports` form).
fn published(doc: &Value, service: &str) -> Vec<String> {
    let ports = doc["services"][service]["ports"].as_sequence().cloned().unwrap_or_default();
    ports
        .iter()
        .map(|p| match p {
            Value::String(short) => short.split(':').next().unwrap_or_default().to_string(),
            long => long["host_ip"].as_str().unwrap_or("(every interface)").to_string(),
        })
        .collect()
}

#[test]
fn with_generated_secrets_the_gateway_is_published_on_loopback_unless_told_otherwise() {
    let dir = scratch("compose-generated");
    let env = generated_env(&dir);
    let Some(out) = config(&env, &[]) else { return };
    assert!(out.status.success(), "config: {}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_yaml_ng::from_slice(&out.stdout).expect("resolved YAML");
    assert_eq!(published(&doc, "api-gateway"), ["127.0.0.1"]);
    let services = doc["services"].as_mapping().expect("services");
    for (name, _) in services.iter().filter(|(name, _)| name.as_str() != Some("api-gateway")) {
        assert!(published(&doc, name.as_str().expect("name")).is_empty(), "{name:?} is published");
    }
    // The generated values are what the services get.
    let signing = values(&env).into_iter().find(|(k, _)| k == "JWT_SIGNING_SECRET").expect("generated").1;
    assert_eq!(signing.len(), 64);
    assert_eq!(doc["services"]["auth-service"]["environment"]["JWT_SIGNING_SECRET"].as_str(), Some(signing.as_str()));
    assert_eq!(doc["services"]["auth-service"]["environment"]["SIGNUP_MODE"].as_str(), Some("approval"));

    let Some(out) = config(&env, &[(PUBLISH, "0.0.0.0")]) else { return };
    let doc: Value = serde_yaml_ng::from_slice(&out.stdout).expect("resolved YAML");
    assert_eq!(published(&doc, "api-gateway"), ["0.0.0.0"]);
    std::fs::remove_dir_all(dir).ok();
}
