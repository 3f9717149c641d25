//! The typed resource types agree with CloudFormation's resource schemas (as cfn-lint
//! ships them): every type the stack uses exists, every attribute a handle can read is
//! one the type has, and every property the synthesized stacks set, at any depth
//! (`BrokerNodeGroupInfo.StorageInfo.EBSStorageInfo`), is one the schema defines there.
//! The check returns findings, so a test shows that a wrong name is caught.

use std::{collections::BTreeMap, process::Command};

use pulsetrack_stacks::{Context, image_repositories_stack, pulsetrack_stack, resources};
use serde_json::{Value, json};

/// Per type: its attributes (`Endpoint.Address`) and the rendered properties of each
/// resource of the type.
type Uses = BTreeMap<String, (Vec<String>, Vec<Value>)>;

fn uses(templates: &[Value]) -> Uses {
    let mut uses: Uses = resources::ALL
        .iter()
        .map(|(name, attrs)| (name.to_string(), (attrs.iter().map(|a| a.to_string()).collect(), Vec::new())))
        .collect();
    for template in templates {
        for resource in template["Resources"].as_object().into_iter().flat_map(|r| r.values()) {
            let ty = resource["Type"].as_str().unwrap_or_default().to_string();
            uses.entry(ty).or_default().1.push(resource["Properties"].clone());
        }
    }
    uses
}

/// What cfn-lint's schemas say is wrong with `uses`, one line per problem.
fn check(uses: &Uses) -> Vec<String> {
    const SCRIPT: &str = r#"
import json, sys
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER as schemas
problems = []
for name, (attrs, props) in json.load(sys.stdin).items():
    try:
        schema = schemas.get_resource_schema("us-east-1", name).schema
    except Exception as e:
        problems.append(f"{name}: no such resource type ({type(e).__name__})")
        continue
    read_only = set(schema.get("readOnlyProperties", []))
    for attr in attrs:
        if "/properties/" + attr.replace(".", "/") not in read_only:
            problems.append(f"{name}: no attribute {attr}")

    def resolve(node):
        while "$ref" in node:
            node = schema["definitions"][node["$ref"].split("/")[-1]]
        return node

    def walk(value, node, path):
        node = resolve(node)
        if isinstance(value, dict):
            if len(value) == 1 and next(iter(value)) in ("Ref", "Fn::GetAtt", "Fn::Sub", "Fn::Join", "Fn::Select"):
                return
            known = node.get("properties")
            if known is None:
                return  # free-form (policy documents, log options)
            for key, inner in value.items():
                if key not in known:
                    problems.append(f"{name}: no property {path}{key}")
                else:
                    walk(inner, known[key], f"{path}{key}.")
        elif isinstance(value, list) and "items" in node:
            for item in value:
                walk(item, node["items"], path)

    for props in props:
        walk(props or {}, schema, "")
print(json.dumps(sorted(set(problems))))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let input = serde_json::to_vec(uses).expect("json");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), &input).expect("write");
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("python3 ends");
    assert!(
        out.status.success(),
        "cfn-lint's schemas are needed (scripts/ensure-python-tools.sh installs cfn-lint): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON list")
}

const CERTIFICATE: &str = "arn:aws:acm:us-east-1:123456789012:certificate/0f4b9e8a-2d3c-4e5f-8a9b-0c1d2e3f4a5b";

fn templates() -> Vec<Value> {
    let ctx = |pairs: &[(&str, &str)]| Context::from_pairs(pairs.iter().copied()).expect("context");
    vec![
        pulsetrack_stack("PulseTrack", &ctx(&[])).synth().expect("default"),
        pulsetrack_stack("PulseTrack", &ctx(&[("msk", "false"), ("kafka-brokers", "10.0.0.1:9092")]))
            .synth()
            .expect("without MSK"),
        pulsetrack_stack("PulseTrack", &ctx(&[("service-discovery", "false")])).synth().expect("without Cloud Map"),
        pulsetrack_stack("PulseTrack", &ctx(&[("profile", "production"), ("certificate-arn", CERTIFICATE)]))
            .synth()
            .expect("production (HTTPS)"),
        image_repositories_stack("PulseTrack").synth().expect("images stack"),
    ]
}

#[test]
fn every_type_attribute_and_property_exists_in_the_resource_schemas() {
    let uses = uses(&templates());
    assert_eq!(uses.len(), resources::ALL.len(), "every type in the templates is a typed resource type");
    let problems = check(&uses);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_wrong_type_attribute_or_property_is_caught() {
    let mut uses = uses(&templates());
    uses.insert("AWS::RDS::DBInstanz".into(), (vec![], vec![]));
    if let Some(db) = uses.get_mut("AWS::RDS::DBInstance") {
        db.0.push("Endpoint.Adress".into());
        db.1.push(json!({ "MultiAz": true }));
    }
    if let Some(msk) = uses.get_mut("AWS::MSK::Cluster") {
        msk.1.push(json!({ "BrokerNodeGroupInfo": { "StorageInfo": { "EbsStorageInfo": { "VolumeSize": 1 } } } }));
    }
    if let Some(task) = uses.get_mut("AWS::ECS::TaskDefinition") {
        task.1.push(json!({ "ContainerDefinitions": [{ "Name": "a", "PortMappings": [{ "ContainerPorts": 1 }] }] }));
    }
    let problems = check(&uses);
    for expected in [
        "AWS::RDS::DBInstanz: no such",
        "DBInstance: no attribute Endpoint.Adress",
        "DBInstance: no property MultiAz",
        "MSK::Cluster: no property BrokerNodeGroupInfo.StorageInfo.EbsStorageInfo",
        "TaskDefinition: no property ContainerDefinitions.PortMappings.ContainerPorts",
    ] {
        assert!(problems.iter().any(|p| p.contains(expected)), "{expected} not in {problems:#?}");
    }
    assert_eq!(json!(problems.len()), json!(5), "{problems:#?}");
}
