//! The cloud assembly `deployer synth` writes, as `cdk.out` does: the template,
//! `manifest.json` and `tree.json`. Rendering is deterministic (sorted maps, fixed
//! formatting), so the same model gives byte-identical files.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use pulsetrack_stacks::Stack;
use serde_json::{Map, Value, json};

/// File name → contents.
pub type Assembly = BTreeMap<String, String>;

pub fn template_file(stack: &str) -> String {
    format!("{stack}.template.json")
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Synthesizes `stack` into its assembly files.
pub fn synthesize(stack: &Stack) -> Result<Assembly, pulsetrack_stacks::ValidationErrors> {
    let template = stack.synth()?;
    let mut files = Assembly::new();
    files.insert(
        "manifest.json".into(),
        pretty(&json!({
            "version": "pulsetrack-assembly-1",
            "artifacts": {
                stack.name.clone(): {
                    "type": "aws:cloudformation:stack",
                    "environment": "aws://unknown-account/unknown-region",
                    "properties": { "templateFile": template_file(&stack.name) },
                    "resourceCount": stack.resources.len(),
                },
                "Tree": { "type": "pulsetrack:tree", "properties": { "file": "tree.json" } },
            },
        })),
    );
    files.insert("tree.json".into(), pretty(&tree(stack)));
    files.insert(template_file(&stack.name), pretty(&template));
    Ok(files)
}

/// The construct tree: nested by path, each leaf naming its logical id and type.
fn tree(stack: &Stack) -> Value {
    let mut root = Map::new();
    for (logical_id, resource) in &stack.resources {
        let mut node = &mut root;
        let parts: Vec<&str> = resource.path.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let path = parts[..=i].join("/");
            let entry =
                node.entry(part.to_string()).or_insert_with(|| json!({ "id": part, "path": path, "children": {} }));
            if i + 1 == parts.len() {
                entry["attributes"] = json!({ "logicalId": logical_id, "type": resource.resource_type() });
            }
            let Some(children) = entry.get_mut("children").and_then(Value::as_object_mut) else { break };
            node = children;
        }
    }
    json!({ "version": "tree-0.1", "tree": { "id": "App", "path": "", "children": root } })
}

pub fn write(dir: &Path, files: &Assembly) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, contents) in files {
        let path = dir.join(name);
        fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The files of `dir` that differ from `files` (missing ones included).
pub fn drift(dir: &Path, files: &Assembly) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|(name, contents)| fs::read_to_string(dir.join(name)).ok().as_deref() != Some(contents.as_str()))
        .map(|(name, _)| dir.join(name))
        .collect()
}
