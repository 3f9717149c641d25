//! `deployer diff`: what a deploy would change, CDK-style.

use std::collections::BTreeMap;

use pulsetrack_stacks::{
    image_repositories_stack,
    pulsetrack::{SERVICES, repository_output},
};

use super::{stacks_for, synthesize, template_source};
use crate::{
    cli::{ImageArgs, StackArgs},
    error::{Error, Result},
    images::registry::RegistryRef,
    internal_tls, publish,
    target::Target,
};

pub async fn run(stack: &StackArgs, target: &Target, fail: bool, images: &ImageArgs, no_images: bool) -> Result<()> {
    let references = if no_images { BTreeMap::new() } else { references(stack, target, images).await? };
    let synthesized = synthesize(stack, Some(target), references).await?;
    let stacks = stacks_for(&stack.stack, target).await;
    let config = target.sdk_config().await;
    let parameters = match internal_tls::current(&config, &stack.stack).await.map_err(Error::Aws)? {
        Some(parameters) => parameters,
        None => {
            eprintln!("note: the services' TLS secrets do not exist yet: `deploy` issues them");
            internal_tls::placeholders(&config, &stack.stack).map_err(Error::Aws)?
        }
    };
    let source = template_source(target, synthesized.template()?).await?.with_parameters(parameters);
    let Some(prepared) = stacks.prepare(&source).await.map_err(Error::Failed)? else {
        println!("There were no differences");
        return Ok(());
    };
    stacks.discard(&prepared.change_set).await;
    for change in &prepared.changes {
        println!("{}", change.line());
    }
    let security = prepared.changes.iter().filter(|c| c.security_relevant()).count();
    println!("\n{} change(s), {security} security-relevant", prepared.changes.len());
    if fail { Err(Error::Found("differences found".into())) } else { Ok(()) }
}

/// The image references a deploy would write, without pushing: the images are built
/// (deterministic, so the digests are the ones `deploy` pushes) and named in the
/// registry `deploy` would use. Before the images stack exists there is no ECR
/// registry yet: the task definitions then keep their tags, and `diff` says so.
async fn references(stack: &StackArgs, target: &Target, images: &ImageArgs) -> Result<BTreeMap<String, String>> {
    let at = match stack.context_value("image-registry") {
        Some(at) => RegistryRef::parse(at).map_err(|e| Error::Usage(format!("{e:#}")))?,
        None => {
            let repositories = image_repositories_stack(&stack.stack);
            let stacks = stacks_for(&repositories.name, target).await;
            if stacks.status().await.map_err(Error::Aws)?.is_none() {
                eprintln!("note: stack {} does not exist yet: images are compared by tag", repositories.name);
                return Ok(BTreeMap::new());
            }
            let outputs = stacks.outputs().await.map_err(Error::Aws)?;
            let uri = outputs
                .iter()
                .find(|(k, _)| *k == repository_output(&SERVICES[0]))
                .and_then(|(_, uri)| uri.rsplit_once('/').map(|(prefix, _)| prefix.to_string()))
                .ok_or_else(|| {
                    Error::Failed(anyhow::anyhow!("stack {} has no repository outputs", repositories.name))
                })?;
            RegistryRef::parse(&uri).map_err(Error::Failed)?
        }
    };
    let template = synthesize(stack, Some(target), BTreeMap::new()).await?.template_json()?;
    let built = publish::publish(&template, &images.options()?, None).await.map_err(Error::Failed)?;
    Ok(built
        .images
        .iter()
        .map(|(service, image)| (service.clone(), at.by_digest(service, &image.manifest.digest)))
        .collect())
}
