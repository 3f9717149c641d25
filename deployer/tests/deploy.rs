//! `deployer deploy / diff / status / destroy` as a user runs them, against a real
//! moto server (the LocalStack-compatible endpoint), never a mocked SDK.

mod support;

use std::{
    path::PathBuf,
    process::{Command, Output},
};

use serde_json::Value;
use support::{ImageRegistry, Moto, system};

/// Where `deploy` and `diff` get their images: the workspace's binaries, a local
/// registry (moto has ECR's API but no registry), an image layout of the test's own.
struct Images {
    registry: ImageRegistry,
    store: PathBuf,
    bin_dir: PathBuf,
}

impl Images {
    fn new() -> Self {
        let store = std::env::temp_dir().join(format!("pt-deploy-store-{}", std::process::id()));
        Self { registry: ImageRegistry::start(), store, bin_dir: system::bin_dir() }
    }

    /// The arguments a command gets, unless it gives its own `--bin-dir`.
    fn args(&self, given: &[&str]) -> Vec<String> {
        let mut args = vec![
            "-c".into(),
            format!("image-registry={}/pulsetrack", self.registry.addr),
            "--image-store".into(),
            self.store.display().to_string(),
        ];
        if !given.contains(&"--bin-dir") {
            args.extend(["--bin-dir".into(), self.bin_dir.display().to_string()]);
        }
        args
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// `deployer ARGS --endpoint <moto>`, with the images' arguments for deploy and diff.
fn deployer_with(moto: &Moto, images: Option<&Images>, args: &[&str]) -> Output {
    let image_args = match images {
        Some(images) if matches!(args.first(), Some(&"deploy" | &"diff")) => images.args(args),
        _ => Vec::new(),
    };
    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .args(&image_args)
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

fn template_body(moto: &Moto, stack: &str) -> String {
    support::cloudformation(moto, &[("Action", "GetTemplate"), ("StackName", stack)])
}

#[test]
fn deploy_redeploy_update_diff_status_and_destroy_on_moto() {
    let moto = Moto::start();
    let images = Images::new();
    let deployer = |moto: &Moto, args: &[&str]| deployer_with(moto, Some(&images), args);
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
    assert!(stderr(&first).contains("warning:") && stderr(&first).contains("plain HTTP"), "no certificate-arn: warned");
    // The internal CA and every service's certificate are made before the change set
    // (so by the refused deploy already); the deploy after it finds them current.
    assert!(stderr(&refused).contains("internal TLS: made the stack's CA"), "{}", stderr(&refused));
    let issued = "internal TLS: issued certificates for billing-service, analytics-service, auth-service, \
                  patient-service, api-gateway";
    assert!(stderr(&refused).contains(issued), "{}", stderr(&refused));
    assert!(stderr(&first).contains("internal TLS: every service's certificate is current"), "{}", stderr(&first));
    let url_line = stdout(&first).lines().find(|l| l.starts_with("PulseTrack: http://")).map(str::to_string);
    assert!(url_line.is_some_and(|l| l.ends_with(":4004")), "{}", stdout(&first));
    let outputs: Value =
        serde_json::from_str(&std::fs::read_to_string(&outputs_file).expect("outputs file")).expect("json");
    assert!(outputs["GatewayUrl"].as_str().is_some_and(|u| u.ends_with(":4004")));

    // The task definitions name the pushed images by digest.
    let template = template_body(&moto, "PulseTrack");
    assert!(template.contains("\"TlsSecretPatientService\"") && template.contains("TlsSecretVersionApiGateway"));
    for service in system::SERVICES {
        assert!(
            template.contains(&format!("{}/pulsetrack/{service}@sha256:", images.registry.addr)),
            "{service}'s task definition names its pushed image"
        );
    }

    // No-op redeploy: the images are rebuilt to the same digests.
    let again = deployer(&moto, &["deploy"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(stdout(&again).contains("no changes"), "{}", stdout(&again));
    assert!(stderr(&again).contains("every service's certificate is current"), "{}", stderr(&again));

    // After a change to one service's code, a deploy rolls exactly that service.
    let changed = system::binaries_with_changed("billing-service");
    let changed_arg = changed.display().to_string();
    let roll = deployer(&moto, &["deploy", "--output", "json", "--bin-dir", &changed_arg]);
    assert_eq!(roll.status.code(), Some(0), "{}", stderr(&roll));
    let result: Value = serde_json::from_str(&stdout(&roll)).expect("json result");
    let changed_ids: Vec<&str> =
        result["changes"].as_array().into_iter().flatten().filter_map(|c| c["logicalId"].as_str()).collect();
    assert!(!changed_ids.is_empty(), "{result}");
    assert!(
        changed_ids.iter().all(|id| id.starts_with("BillingService")),
        "only billing-service rolls: {changed_ids:?}"
    );
    let back = deployer(&moto, &["deploy"]);
    assert_eq!(back.status.code(), Some(0), "{}", stderr(&back));
    let _ = std::fs::remove_dir_all(&changed);

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

    // A failing deploy: forcing Cloud Map on an endpoint without it (which also swaps
    // the internal NLB's rules for direct ones: broadening, so approved up front).
    let failing = deployer(&moto, &["deploy", "-c", "service-discovery=true", "--require-approval", "never"]);
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
    assert!(out.contains("deleted its internal TLS secrets: pulsetrack/PulseTrack/tls/billing-service"), "{out}");
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
    assert!(stderr(&fresh).contains("internal TLS: made the stack's CA"), "a new CA after destroy");
    let _ = std::fs::remove_file(&outputs_file);
}

#[test]
fn without_a_registry_deploy_declares_ecr_repositories_and_names_moto_s_gap() {
    let moto = Moto::start();
    let out = deployer_with(&moto, None, &["deploy", "--require-approval", "never"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("moto") && err.contains("no image registry") && err.contains("image-registry="), "{err}");
    // The repositories stack exists, with one immutable, scanned repository per service.
    let template = template_body(&moto, "PulseTrackImages");
    assert_eq!(template.matches("AWS::ECR::Repository").count(), system::SERVICES.len(), "{template}");
    assert!(template.contains("IMMUTABLE") && template.contains("ScanOnPush"));
    let described = support::cloudformation(&moto, &[("Action", "DescribeStacks"), ("StackName", "PulseTrack")]);
    assert!(described.contains("does not exist"), "no main stack without images: {described}");
    assert!(!err.contains("via S3") && !err.contains("assets bucket"), "a small template goes inline: {err}");
}

/// `deployer synth ARGS` into a fresh folder; the stack's template text.
fn synthesized_template(args: &[&str]) -> String {
    let out = std::env::temp_dir().join(format!("pt-synth-{}-{}", std::process::id(), args.join("_")));
    let status = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["synth", "--out", &out.display().to_string()])
        .args(args)
        .status()
        .expect("synth runs");
    assert!(status.success());
    let text = std::fs::read_to_string(out.join("PulseTrack.template.json")).expect("template");
    let _ = std::fs::remove_dir_all(&out);
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_template_goes_through_the_assets_bucket_and_moto_s_msk_gap_is_named() {
    use sha2::Digest as _;
    let moto = Moto::start();
    let deploy = |extra: &[&str]| {
        let args: Vec<&str> = [&["deploy", "--no-images", "--require-approval", "never"], extra].concat();
        deployer_with(&moto, None, &args)
    };
    let template = synthesized_template(&["-c", "service-discovery=false"]);
    assert!(template.len() > deployer::assets::INLINE_TEMPLATE_LIMIT, "{} bytes", template.len());
    let key = format!("templates/{:x}.json", sha2::Sha256::digest(template.as_bytes()));
    let bucket = "pulsetrack-assets-123456789012-us-east-1";

    let first = deploy(&["--output", "json"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let err = stderr(&first);
    assert!(err.contains(&format!("bootstrapping the assets bucket {bucket}")), "{err}");
    assert!(err.contains(&format!("s3://{bucket}/{key} (uploaded)")), "{err}");
    // moto has no MSK: said on stderr and in the result, not a silent success.
    assert!(err.contains("warning: Kafka bootstrap brokers NOT wired"), "{err}");
    let result: Value = serde_json::from_str(&stdout(&first)).expect("json result");
    assert_eq!(result["status"], "CREATE_COMPLETE");
    assert_eq!(result["kafkaBrokers"]["state"], "notWired", "{result}");
    let advice = result["kafkaBrokers"]["advice"].as_str().unwrap_or_default();
    assert!(advice.contains("GetBootstrapBrokers") && advice.contains("-c msk=false -c kafka-brokers="), "{advice}");

    // The bucket as `cdk bootstrap` leaves it, read back from moto's S3.
    let config = deployer::target::Target::Endpoint(moto.url.clone()).sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    let encryption = s3.get_bucket_encryption().bucket(bucket).send().await.expect("GetBucketEncryption");
    let rule = encryption
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .map(|d| d.sse_algorithm().as_str().to_string());
    assert_eq!(rule.as_deref(), Some("AES256"));
    // moto answers GetBucketVersioning with a root element the SDK rejects
    // (GetBucketVersioningResponse, not VersioningConfiguration): read it raw.
    let versioning = reqwest::Client::new()
        .get(format!("{}/{bucket}?versioning", moto.url))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        )
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("GetBucketVersioning");
    let versioning = versioning.text().await.expect("body");
    assert!(versioning.contains("<Status>Enabled</Status>"), "{versioning}");
    let block = s3.get_public_access_block().bucket(bucket).send().await.expect("GetPublicAccessBlock");
    let block = block.public_access_block_configuration().expect("a public access block");
    assert_eq!(
        [
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ],
        [Some(true); 4]
    );
    // Over moto's plain HTTP a TLS-only policy would refuse the deployer's own
    // requests (moto enforces bucket Deny statements): it is left out, and said.
    assert!(err.contains("plain HTTP") && err.contains("no TLS-only bucket policy"), "{err}");
    assert!(s3.get_bucket_policy().bucket(bucket).send().await.is_err(), "no policy on a plain-HTTP endpoint");
    let stored = s3.get_object().bucket(bucket).key(&key).send().await.expect("GetObject");
    let body = stored.body.collect().await.expect("body").into_bytes();
    assert_eq!(body.as_ref(), template.as_bytes(), "the object is the synthesized template");
    let versions = |s3: aws_sdk_s3::Client| async move {
        let out = s3.list_object_versions().bucket(bucket).prefix("templates/").send().await.expect("versions");
        let versioned = out.versions().iter().all(|v| v.version_id().is_some_and(|id| id != "null"));
        assert!(versioned, "objects of a versioned bucket have version ids: {out:?}");
        out.versions().iter().map(|v| v.key().unwrap_or_default().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(versions(s3.clone()).await, std::slice::from_ref(&key));

    // The same template again: not uploaded again (same key, still one version).
    let again = deploy(&[]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(stdout(&again).contains("no changes"), "{}", stdout(&again));
    assert!(stderr(&again).contains(&format!("s3://{bucket}/{key} (already there)")), "{}", stderr(&again));
    assert!(!stderr(&again).contains("bootstrapping"), "{}", stderr(&again));
    assert!(stdout(&again).contains("Kafka brokers: NOT WIRED"), "{}", stdout(&again));
    assert_eq!(versions(s3.clone()).await, std::slice::from_ref(&key));

    // `deployer bootstrap` on a prepared account applies the settings again.
    let bootstrap = deployer_with(&moto, None, &["bootstrap"]);
    assert_eq!(bootstrap.status.code(), Some(0));
    assert!(stdout(&bootstrap).contains(&format!("assets bucket {bucket}")), "{}", stdout(&bootstrap));
    assert!(stdout(&bootstrap).contains("already existed"));

    // status names the gap in its Kafka section.
    let status = deployer_with(&moto, None, &["status", "--output", "json"]);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    let report: Value = serde_json::from_str(&stdout(&status)).expect("json status");
    let kafka = report["sections"].as_array().into_iter().flatten().find(|s| s["name"] == "kafka").expect("kafka");
    assert!(kafka["unavailable"].as_str().is_some_and(|u| u.contains("NOT wired")), "{kafka}");
}

#[test]
fn after_a_failed_deploy_the_next_reports_only_its_own_events() {
    let moto = Moto::start();
    let deploy = |extra: &[&str]| {
        let args: Vec<&str> = [&["deploy", "--no-images", "--require-approval", "never"], extra].concat();
        deployer_with(&moto, None, &args)
    };
    assert_eq!(deploy(&[]).status.code(), Some(0));
    // moto's CloudFormation has no Cloud Map: forcing service discovery on fails the
    // update part-way, leaving its UPDATE_IN_PROGRESS event without an end.
    let failed = deploy(&["-c", "service-discovery=true"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(stderr(&failed).to_lowercase().contains("discovery"), "{}", stderr(&failed));
    let next = deploy(&["-c", "desired-count=2"]);
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    let err = stderr(&next);
    let events: Vec<&str> =
        err.lines().map(str::trim).filter(|l| l.contains("AWS::CloudFormation::Stack PulseTrack")).collect();
    assert_eq!(
        events,
        [
            "UPDATE_IN_PROGRESS AWS::CloudFormation::Stack PulseTrack",
            "UPDATE_COMPLETE AWS::CloudFormation::Stack PulseTrack"
        ],
        "only this deploy's events: {err}"
    );
    assert!(!err.contains("FAILED") && !err.contains("undefined resource"), "no earlier failure: {err}");
    // The earlier operations' events are there to be misreported: the failed update's
    // UPDATE_IN_PROGRESS (without an end) and the create's.
    let all = support::cloudformation(&moto, &[("Action", "DescribeStackEvents"), ("StackName", "PulseTrack")]);
    assert!(all.matches("<ResourceStatus>UPDATE_IN_PROGRESS</ResourceStatus>").count() >= 3, "{all}");
}

#[test]
fn with_msk_false_the_broker_step_does_not_run() {
    let moto = Moto::start();
    let args = [
        "deploy",
        "--no-images",
        "--require-approval",
        "never",
        "--output",
        "json",
        "-c",
        "msk=false",
        "-c",
        "kafka-brokers=10.0.9.9:9092",
    ];
    let out = deployer_with(&moto, None, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let result: Value = serde_json::from_str(&stdout(&out)).expect("json result");
    assert_eq!(result["kafkaBrokers"]["state"], "notApplicable", "{result}");
    assert!(!stderr(&out).contains("Kafka bootstrap brokers"), "{}", stderr(&out));
    assert!(template_body(&moto, "PulseTrack").contains("10.0.9.9:9092"), "the brokers come from the context");
}
