//! `deployer deploy`: build and publish the images, synthesize with them named by
//! digest, and apply the template through a change set.

use std::{collections::BTreeMap, path::Path, time::Instant};

use pulsetrack_stacks::{
    image_repositories_stack,
    pulsetrack::{SERVICES, repository_output},
};
use serde_json::json;

use super::{Applied, Apply, outputs_after, print_json, stacks_for, synthesize};
use crate::{
    assembly,
    cli::{ImageArgs, Output, StackArgs},
    cloudformation::ResourceChange,
    error::{Error, Result},
    images::registry::Registry,
    publish,
    target::Target,
};

pub async fn run(
    stack: &StackArgs,
    target: &Target,
    apply: &Apply,
    images: &ImageArgs,
    no_images: bool,
    outputs_file: Option<&Path>,
) -> Result<()> {
    let started = Instant::now();
    let references = if no_images {
        eprintln!(
            "warning: --no-images: no image is built or pushed; the task definitions name {}/<service>:<tag>",
            stack.context_value("image-registry").unwrap_or("pulsetrack")
        );
        BTreeMap::new()
    } else {
        let registry = registry(stack, target, apply).await?;
        let template = synthesize(stack, Some(target), BTreeMap::new()).await?.template_json()?;
        let published =
            publish::publish(&template, &images.options()?, Some(&registry)).await.map_err(Error::Failed)?;
        if apply.output == Output::Text {
            eprint!("{}", published.render());
        }
        published.references()
    };
    let synthesized = synthesize(stack, Some(target), references).await?;
    let (model, template) = (&synthesized.model, synthesized.template()?);
    let stacks = stacks_for(&stack.stack, target).await;
    eprintln!("deploying {} ({} resources) to {}", stack.stack, model.resources.len(), target.describe());
    for warning in model.warnings() {
        eprintln!("warning: {warning}");
    }
    let applied = apply.run(&stacks, template).await?;
    let outputs = outputs_after(&stacks, &applied, template, !model.outputs.is_empty(), target).await?;
    let report = Report { stack: &stack.stack, applied: &applied, outputs: &outputs, started };
    report.write_outputs(outputs_file)?;
    report.print(apply.output)
}

/// Where `deploy` pushes the images: `-c image-registry`, else the ECR repositories of
/// the images stack (`<Stack>Images`), which is deployed first.
async fn registry(stack: &StackArgs, target: &Target, apply: &Apply) -> Result<Registry> {
    if let Some(at) = stack.context_value("image-registry") {
        return publish::explicit_registry(at).map_err(|e| Error::Usage(format!("{e:#}")));
    }
    let repositories = image_repositories_stack(&stack.stack);
    let files = assembly::synthesize(&repositories)?;
    let template = files.get(&assembly::template_file(&repositories.name)).cloned().unwrap_or_default();
    let stacks = stacks_for(&repositories.name, target).await;
    eprintln!("image repositories: stack {} on {}", repositories.name, target.describe());
    let applied = apply.run(&stacks, &template).await?;
    let outputs = outputs_after(&stacks, &applied, &template, true, target).await?;
    let uris: Vec<String> = SERVICES
        .iter()
        .filter_map(|def| outputs.iter().find(|(k, _)| *k == repository_output(def)).map(|(_, v)| v.clone()))
        .collect();
    if uris.len() != SERVICES.len() {
        return Err(Error::Failed(anyhow::anyhow!(
            "stack {} reports {} of {} repository URIs",
            repositories.name,
            uris.len(),
            SERVICES.len()
        )));
    }
    let config = target.sdk_config().await;
    let registry = publish::ecr_registry(&config, &uris).await.map_err(Error::Aws)?;
    if target.is_moto().await {
        return Err(Error::Failed(anyhow::anyhow!(
            "{} is moto, which has ECR's API but no image registry to push to ({}): \
             pass -c image-registry=host:port/path (a local registry), or --no-images",
            target.describe(),
            registry.at.host
        )));
    }
    Ok(registry)
}

/// What a deploy reports.
struct Report<'a> {
    stack: &'a str,
    applied: &'a Applied,
    outputs: &'a [(String, String)],
    started: Instant,
}

impl Report<'_> {
    fn outputs_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.outputs.iter().map(|(k, v)| (k.clone(), json!(v))).collect()
    }

    fn write_outputs(&self, path: Option<&Path>) -> Result<()> {
        let Some(path) = path else { return Ok(()) };
        let text = serde_json::to_string_pretty(&self.outputs_json())
            .map_err(|e| Error::Io(format!("cannot render the outputs: {e}")))?;
        std::fs::write(path, text + "\n").map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))
    }

    fn print(&self, output: Output) -> Result<()> {
        let (status, changes): (&str, &[ResourceChange]) = match self.applied {
            Applied::Unchanged => ("NO_CHANGES", &[]),
            Applied::Changed { status, changes } => (status, changes),
        };
        match output {
            Output::Json => print_json(&json!({ "stack": self.stack, "status": status, "changes": changes,
                "outputs": self.outputs_json(), "elapsedMs": self.started.elapsed().as_millis() as u64 })),
            Output::Text => {
                match self.applied {
                    Applied::Unchanged => println!("{}: no changes", self.stack),
                    Applied::Changed { .. } => {
                        println!("{}: {status} in {:.1}s", self.stack, self.started.elapsed().as_secs_f64())
                    }
                }
                for (k, v) in self.outputs {
                    println!("  {k} = {v}");
                }
                if let Some((_, url)) = self.outputs.iter().find(|(k, _)| k == "GatewayUrl") {
                    println!("\nPulseTrack: {url}");
                }
                Ok(())
            }
        }
    }
}
