//! cfn-lint and checkov on the synthesized templates of both profiles. cfn-lint must
//! find nothing; checkov's failed checks on the production template must be exactly
//! the ones docs/src/deploying.md's "Accepted checkov findings" table explains. Both tools run when
//! installed (scripts/ensure-python-tools.sh installs them); under CI they must be.

use std::{collections::BTreeSet, path::Path, process::Command};

mod support;

use pulsetrack_stacks::{Context, pulsetrack_stack};
use serde_json::Value;
use support::{installed, scratch};

/// The production template's accepted checkov findings (docs/src/deploying.md, "Accepted checkov findings").
const ACCEPTED: [&str; 2] = ["CKV_AWS_18", "CKV_AWS_260"];

const CERTIFICATE: &str = "arn:aws:acm:us-east-1:123456789012:certificate/0f4b9e8a-2d3c-4e5f-8a9b-0c1d2e3f4a5b";

fn template(pairs: &[(&str, &str)]) -> Value {
    let ctx = Context::from_pairs(pairs.iter().copied()).expect("context");
    pulsetrack_stack("PulseTrack", &ctx).synth().expect("valid stack")
}

/// The templates to lint: the default profile, and production (which requires HTTPS).
fn templates() -> Vec<(&'static str, Value)> {
    vec![
        ("default", template(&[])),
        ("default-https", template(&[("certificate-arn", CERTIFICATE)])),
        ("without-cloud-map", template(&[("service-discovery", "false")])),
        ("production", template(&[("profile", "production"), ("certificate-arn", CERTIFICATE)])),
    ]
}

fn write(dir: &Path, name: &str, template: &Value) -> String {
    let path = dir.join(format!("{name}.template.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(template).expect("json")).expect("write template");
    path.display().to_string()
}

/// checkov's failed check ids (with the resources) on one template.
fn checkov_failures(path: &str) -> Vec<(String, String)> {
    let output = Command::new("checkov")
        .args(["--quiet", "--compact", "--framework", "cloudformation", "--output", "json", "-f", path])
        .output()
        .expect("checkov runs");
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("checkov output is not JSON ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    // One framework: a report object; several: a list of them.
    let reports = match report {
        Value::Array(reports) => reports,
        report => vec![report],
    };
    reports
        .iter()
        .flat_map(|r| r["results"]["failed_checks"].as_array().cloned().unwrap_or_default())
        .map(|c| (c["check_id"].as_str().unwrap_or("?").to_string(), c["resource"].as_str().unwrap_or("?").to_string()))
        .collect()
}

#[test]
fn cfn_lint_finds_nothing_in_either_profile() {
    if !installed("cfn-lint") {
        return;
    }
    let dir = scratch("lint-cfn");
    for (name, template) in templates() {
        let path = write(&dir, name, &template);
        let output = Command::new("cfn-lint").args(["--format", "parseable", "--", &path]).output().expect("cfn-lint");
        assert!(
            output.status.success(),
            "cfn-lint on the {name} template:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn checkov_fails_the_production_template_only_on_the_accepted_checks() {
    if !installed("checkov") {
        return;
    }
    let dir = scratch("lint-checkov");
    let mut counts = Vec::new();
    for (name, template) in templates() {
        let failures = checkov_failures(&write(&dir, name, &template));
        counts.push(format!("{name}: {} failed", failures.len()));
        if name == "production" {
            let ids: BTreeSet<&str> = failures.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(ids, BTreeSet::from(ACCEPTED), "production failures: {failures:#?}");
        }
    }
    eprintln!("checkov: {}", counts.join(", "));
    std::fs::remove_dir_all(dir).ok();
}
