//! `deployer synth` as a user runs it, the committed snapshot, cfn-lint, and a real
//! CloudFormation deploy on a moto server.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

mod support;

use deployer::assembly;
use pulsetrack_stacks::{Context, pulsetrack_stack};
use support::Moto;

fn deployer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_deployer"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pt-deployer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stacks/synth")
}

fn default_assembly() -> assembly::Assembly {
    let ctx = Context::from_pairs([]).expect("default context");
    assembly::synthesize(&pulsetrack_stack("PulseTrack", &ctx)).expect("valid stack")
}

#[test]
fn the_committed_snapshot_matches_the_model() {
    let drift = assembly::drift(&snapshot_dir(), &default_assembly());
    assert!(
        drift.is_empty(),
        "stacks/synth is out of date ({drift:?}); run `cargo run -p deployer -- synth --out stacks/synth` and review the diff"
    );
}

#[test]
fn synth_writes_the_assembly_and_check_detects_drift() {
    let dir = temp_dir("check");
    let status = deployer().args(["synth", "--out"]).arg(&dir).status().expect("runs");
    assert!(status.success());
    for file in ["PulseTrack.template.json", "manifest.json", "tree.json"] {
        assert!(dir.join(file).is_file(), "{file} written");
    }
    // Byte-identical from run to run.
    let first = std::fs::read(dir.join("PulseTrack.template.json")).expect("read");
    assert!(deployer().args(["synth", "--out"]).arg(&dir).status().expect("runs").success());
    assert_eq!(first, std::fs::read(dir.join("PulseTrack.template.json")).expect("read"));

    let check = || deployer().args(["synth", "--check"]).arg(&dir).stderr(Stdio::null()).status().expect("runs");
    assert_eq!(check().code(), Some(0));
    std::fs::write(dir.join("tree.json"), "{}").expect("write");
    assert_eq!(check().code(), Some(1), "drift exits 1");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_context_is_a_clear_error_with_exit_code_2() {
    let output =
        deployer().args(["synth", "--out", "/nonexistent", "-c", "desired-count=many"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("desired-count"), "{stderr}");
    let output = deployer().args(["synth", "-c", "novalue"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(2), "clap usage error");
}

#[test]
fn cfn_lint_finds_no_errors_or_warnings() {
    let dir = temp_dir("lint");
    assembly::write(&dir, &default_assembly()).expect("write");
    let template = dir.join("PulseTrack.template.json");
    let output = Command::new(std::env::var("CFN_LINT").unwrap_or_else(|_| "cfn-lint".into()))
        .arg(&template)
        .output()
        .unwrap_or_else(|e| panic!("cfn-lint is needed (pip install cfn-lint): {e}"));
    let findings = String::from_utf8_lossy(&output.stdout);
    // Exit code bits: 2 errors, 4 warnings, 8 informational.
    assert_eq!(output.status.code().map(|c| c & 6), Some(0), "cfn-lint findings:\n{findings}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A version id of Secrets Manager's form (a UUID), made from `seed`.
fn uuid_like(seed: &str) -> String {
    let hex: String = seed.bytes().cycle().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

fn xml_value<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + end])
}

#[test]
fn the_template_deploys_to_create_complete_on_moto() {
    // moto has no Cloud Map in CloudFormation: synthesize without it, as a user
    // targeting moto does (`-c service-discovery=false`).
    let ctx = Context::from_pairs([("service-discovery", "false")]).expect("context");
    let files = assembly::synthesize(&pulsetrack_stack("PulseTrack", &ctx)).expect("valid");
    let template = &files["PulseTrack.template.json"];
    let moto = Moto::start();
    // The services' TLS secrets are parameters (the deployer issues them before a change
    // set); any secret ARN and version of the right form will do for CloudFormation.
    let mut parameters = Vec::new();
    for def in &pulsetrack_stacks::pulsetrack::SERVICES {
        let (arn, version) = pulsetrack_stacks::pulsetrack::tls::parameter_ids(def);
        let secret = format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:tls-{}-AbCdEf", def.name);
        parameters.push((arn, secret));
        parameters.push((version, uuid_like(def.name)));
    }
    let keys: Vec<(String, String)> = parameters
        .iter()
        .enumerate()
        .flat_map(|(i, (key, value))| {
            [
                (format!("Parameters.member.{}.ParameterKey", i + 1), key.clone()),
                (format!("Parameters.member.{}.ParameterValue", i + 1), value.clone()),
            ]
        })
        .collect();
    let mut request = vec![
        ("Action", "CreateStack"),
        ("StackName", "PulseTrack"),
        ("TemplateBody", template.as_str()),
        ("Capabilities.member.1", "CAPABILITY_IAM"),
    ];
    request.extend(keys.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let created = support::cloudformation(&moto, &request);
    assert!(created.contains("<StackId>"), "CreateStack failed: {created}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let described = loop {
        let described = support::cloudformation(&moto, &[("Action", "DescribeStacks"), ("StackName", "PulseTrack")]);
        let status = xml_value(&described, "StackStatus").unwrap_or_default().to_string();
        if !status.ends_with("IN_PROGRESS") {
            break described;
        }
        assert!(Instant::now() < deadline, "stack still {status}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(xml_value(&described, "StackStatus"), Some("CREATE_COMPLETE"), "{described}");
    assert!(described.contains("<OutputKey>GatewayUrl</OutputKey>"), "{described}");
    let url_start = described.find("<OutputKey>GatewayUrl</OutputKey>").expect("output");
    assert!(described[url_start..].contains(":4004</OutputValue>"), "{described}");
}

#[test]
fn synth_warns_on_stderr_when_the_public_entry_is_plain_http() {
    let dir = temp_dir("warn");
    let output = deployer().args(["synth", "--out"]).arg(&dir).output().expect("runs");
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("warning:") && stderr.contains("plain HTTP on :4004"), "{stderr}");
    let certificate =
        "certificate-arn=arn:aws:acm:us-east-1:123456789012:certificate/0f4b9e8a-2d3c-4e5f-8a9b-0c1d2e3f4a5b";
    let output = deployer().args(["synth", "--out"]).arg(&dir).args(["-c", certificate]).output().expect("runs");
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("warning:"), "HTTPS: no warning: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
