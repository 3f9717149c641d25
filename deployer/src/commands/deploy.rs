//! `deployer deploy`: build and publish the images, synthesize with them named by
//! digest, and apply the template through a change set.

use std::{collections::BTreeMap, path::Path, time::Instant};

use pulsetrack_stacks::{
    image_repositories_stack,
    pulsetrack::{SERVICES, repository_output},
};
use serde::Serialize;
use serde_json::json;

use super::{Applied, Apply, outputs_after, print_json, stacks_for, synthesize, template_source};
use crate::{
    assembly,
    cli::{ImageArgs, Output, StackArgs},
    cloudformation::{ResourceChange, Stacks},
    error::{Error, Result},
    images::registry::Registry,
    internal_tls,
    kafka::{self, Synced, Wiring},
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
    let tls = internal_tls(&stack.stack, target).await?;
    let source = template_source(target, template).await?.with_parameters(tls.parameters);
    let applied = apply.run(&stacks, template, &source).await?;
    let outputs = outputs_after(&stacks, &applied, &source, !model.outputs.is_empty(), target).await?;
    let brokers = wire_brokers(&stacks, target).await?;
    let report = Report { stack: &stack.stack, applied: &applied, outputs: &outputs, brokers: &brokers, started };
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
    let source = template_source(target, &template).await?;
    let applied = apply.run(&stacks, &template, &source).await?;
    let outputs = outputs_after(&stacks, &applied, &source, true, target).await?;
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

/// The internal CA and the services' certificates, made or renewed before the change
/// set (see [`crate::internal_tls`]); says what it did.
async fn internal_tls(stack: &str, target: &Target) -> Result<internal_tls::TlsSecrets> {
    let config = target.sdk_config().await;
    let secrets = internal_tls::ensure(&config, stack).await.map_err(Error::Aws)?;
    if secrets.ca_created {
        eprintln!("internal TLS: made the stack's CA ({})", pulsetrack_stacks::pulsetrack::tls::ca_secret_name(stack));
    }
    if secrets.issued.is_empty() {
        eprintln!("internal TLS: every service's certificate is current");
    } else {
        eprintln!("internal TLS: issued certificates for {}", secrets.issued.join(", "));
    }
    Ok(secrets)
}

/// What the bootstrap-broker step did (see [`crate::kafka`]).
#[derive(Debug, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
enum Brokers {
    /// msk=false: the brokers are the `kafka-brokers` context value.
    NotApplicable,
    /// The endpoint lacks what the step needs; `advice` says what to do.
    NotWired {
        advice: String,
    },
    Synced(Synced),
}

/// Runs the bootstrap-broker step on the deployed stack (every deploy: it does
/// nothing when all is right).
async fn wire_brokers(stacks: &Stacks, target: &Target) -> Result<Brokers> {
    let template = stacks.deployed_template().await.map_err(Error::Aws)?;
    let resources = stacks.resources().await.map_err(Error::Aws)?;
    match kafka::wiring(&stacks.name, &template, &resources) {
        Wiring::NotDeclared => Ok(Brokers::NotApplicable),
        Wiring::Gap(gap) => {
            let advice = kafka::gap_advice(&gap, &target.describe(), target.is_moto().await);
            eprintln!("warning: {advice}");
            Ok(Brokers::NotWired { advice })
        }
        Wiring::Ready(wiring) => {
            let config = target.sdk_config().await;
            let synced = kafka::sync(&config, &wiring).await.map_err(Error::Aws)?;
            Ok(Brokers::Synced(synced))
        }
    }
}

impl Brokers {
    fn line(&self) -> Option<String> {
        match self {
            Brokers::NotApplicable => None,
            Brokers::NotWired { .. } => Some("Kafka brokers: NOT WIRED (see the warning above)".into()),
            Brokers::Synced(s) => Some(format!(
                "Kafka brokers: {} ({}{})",
                s.brokers,
                if s.written { "secret written" } else { "secret unchanged" },
                if s.rolled.is_empty() { String::new() } else { format!("; rolled {}", s.rolled.join(", ")) }
            )),
        }
    }
}

/// What a deploy reports.
struct Report<'a> {
    stack: &'a str,
    applied: &'a Applied,
    outputs: &'a [(String, String)],
    brokers: &'a Brokers,
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
                "outputs": self.outputs_json(), "kafkaBrokers": self.brokers,
                "elapsedMs": self.started.elapsed().as_millis() as u64 })),
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
                if let Some(line) = self.brokers.line() {
                    println!("{line}");
                }
                if let Some((_, url)) = self.outputs.iter().find(|(k, _)| k == "GatewayUrl") {
                    println!("\nPulseTrack: {url}");
                }
                Ok(())
            }
        }
    }
}
