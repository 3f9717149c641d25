//! `deployer deploy / diff / status / destroy` as a user runs them, against a real
//! moto server (the LocalStack-compatible endpoint), never a mocked SDK.

mod support;

use std::process::{Command, Output};

use serde_json::Value;
use support::Moto;

fn deployer(moto: &Moto, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .args(["--endpoint", &moto.url])
        .env("CI", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("deployer runs");
    eprintln!(
        "$ deployer {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn deploy_redeploy_update_diff_status_and_destroy_on_moto() {
    let moto = Moto::start();
    let outputs_file = std::env::temp_dir().join(format!("pt-outputs-{}.json", std::process::id()));
    let outputs_arg = outputs_file.to_string_lossy().to_string();

    // A first deploy adds security groups and IAM statements: in CI it needs approval.
    let refused = deployer(&moto, &["deploy"]);
    assert_eq!(refused.status.code(), Some(5));
    assert!(stderr(&refused).contains("--require-approval never"), "{}", stderr(&refused));
    let nothing = deployer(&moto, &["status"]);
    assert_eq!(nothing.status.code(), Some(1), "a refused deploy leaves no stack behind");

    // First deploy: creates the stack, prints the :4004 URL, writes the outputs.
    let first = deployer(&moto, &["deploy", "--require-approval", "never", "--outputs-file", &outputs_arg]);
    assert_eq!(first.status.code(), Some(0));
    assert!(stdout(&first).contains("CREATE_COMPLETE"));
    assert!(stderr(&first).contains("service-discovery=false"), "moto is detected and said so");
    let url_line = stdout(&first).lines().find(|l| l.starts_with("PulseTrack: http://")).map(str::to_string);
    assert!(url_line.is_some_and(|l| l.ends_with(":4004")), "{}", stdout(&first));
    let outputs: Value =
        serde_json::from_str(&std::fs::read_to_string(&outputs_file).expect("outputs file")).expect("json");
    assert!(outputs["GatewayUrl"].as_str().is_some_and(|u| u.ends_with(":4004")));

    // No-op redeploy.
    let again = deployer(&moto, &["deploy"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(stdout(&again).contains("no changes"), "{}", stdout(&again));

    // diff shows one modification and --fail turns it into exit 1.
    let diff = deployer(&moto, &["diff", "-c", "desired-count=2", "--fail"]);
    assert_eq!(diff.status.code(), Some(1));
    assert!(stdout(&diff).contains("[~] AWS::ECS::Service"), "{}", stdout(&diff));
    let same = deployer(&moto, &["diff"]);
    assert_eq!(same.status.code(), Some(0));
    assert!(stdout(&same).contains("no differences"));

    // An update with one change, machine-readable.
    let update = deployer(&moto, &["deploy", "-c", "desired-count=2", "--output", "json"]);
    assert_eq!(update.status.code(), Some(0));
    let result: Value = serde_json::from_str(&stdout(&update)).expect("json result");
    assert_eq!(result["status"], "UPDATE_COMPLETE");
    assert!(result["changes"].as_array().is_some_and(|c| c.iter().any(|c| c["resourceType"] == "AWS::ECS::Service")));

    // A failing deploy: forcing Cloud Map on an endpoint without it.
    let failing = deployer(&moto, &["deploy", "-c", "service-discovery=true"]);
    assert_eq!(failing.status.code(), Some(1));
    assert!(stderr(&failing).contains("error:"), "{}", stderr(&failing));
    assert!(
        stderr(&failing).to_lowercase().contains("discovery"),
        "the failing resource is named: {}",
        stderr(&failing)
    );

    // Status, text and JSON; MSK's gap is reported, not hidden.
    let text = deployer(&moto, &["status"]);
    assert_eq!(text.status.code(), Some(0));
    let text = stdout(&text);
    assert!(text.contains("ECS") && text.contains("api-gateway") && text.contains("DATABASES"), "{text}");
    let json = deployer(&moto, &["status", "--output", "json"]);
    let report: Value = serde_json::from_str(&stdout(&json)).expect("json status");
    assert_eq!(report["status"], "UPDATE_COMPLETE");
    let sections = report["sections"].as_array().expect("sections");
    let ecs = sections.iter().find(|s| s["name"] == "ecs").expect("ecs section");
    assert_eq!(ecs["items"].as_array().map(Vec::len), Some(5));
    assert!(ecs["items"].as_array().into_iter().flatten().all(|s| s["desired"] == 2));
    let kafka = sections.iter().find(|s| s["name"] == "kafka").expect("kafka section");
    assert!(kafka["unavailable"].is_string());

    // Destroy: moto's delete-stack cannot order the VPC's dependencies; the user is
    // told so and how to wipe the emulator, which then removes everything.
    let destroy = deployer(&moto, &["destroy"]);
    assert_eq!(destroy.status.code(), Some(0));
    let out = stdout(&destroy);
    assert!(out.contains("destroyed PulseTrack"), "{out}");
    assert!(out.contains("AWS::EC2::VPC") && out.contains("--moto-reset"), "leftovers are reported: {out}");
    let gone = deployer(&moto, &["status"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(stderr(&gone).contains("does not exist"));
    let reset = deployer(&moto, &["destroy", "--moto-reset"]);
    assert_eq!(reset.status.code(), Some(0));
    assert!(stdout(&reset).contains("reset the moto emulator"));
    // After the reset nothing of the stack is left: a fresh deploy creates it again.
    let fresh = deployer(&moto, &["deploy", "--require-approval", "never"]);
    assert_eq!(fresh.status.code(), Some(0), "{}", stderr(&fresh));
    assert!(stdout(&fresh).contains("CREATE_COMPLETE"));
    let _ = std::fs::remove_file(&outputs_file);
}
