//! `deployer images build [--push]`: the five service images from the workspace.

use std::collections::BTreeMap;

use serde_json::json;

use super::{print_json, synthesize};
use crate::{
    cli::{ImageArgs, Output, StackArgs},
    error::{Error, Result},
    publish,
};

pub async fn build(stack: &StackArgs, images: &ImageArgs, push: bool, output: Output) -> Result<()> {
    let template = synthesize(stack, None, BTreeMap::new()).await?.template_json()?;
    let registry = match (push, stack.context_value("image-registry")) {
        (false, _) => None,
        (true, Some(at)) => Some(publish::explicit_registry(at).map_err(|e| Error::Usage(format!("{e:#}")))?),
        (true, None) => return Err(Error::Usage("--push needs -c image-registry=host[:port]/path".into())),
    };
    let published = publish::publish(&template, &images.options()?, registry.as_ref()).await.map_err(Error::Failed)?;
    match output {
        Output::Text => {
            print!("{}", published.render());
            Ok(())
        }
        Output::Json => {
            let images: serde_json::Map<String, serde_json::Value> = published
                .images
                .iter()
                .map(|(service, image)| {
                    let reference = published.pushed.get(service).map(|p| p.reference.clone());
                    let entry =
                        json!({ "digest": image.manifest.digest, "size": image.size(), "reference": reference });
                    (service.clone(), entry)
                })
                .collect();
            print_json(&json!({ "images": images, "buildMs": published.build_time.as_millis() as u64,
                "pushMs": published.push_time.as_millis() as u64 }))
        }
    }
}
