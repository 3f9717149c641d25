//! `deployer status`: what runs of a deployed stack.

use serde_json::json;

use super::{print_json, stacks_for};
use crate::{
    cli::Output,
    error::{Error, Result},
    kafka, status,
    target::Target,
};

pub async fn run(stack: &str, target: &Target, output: Output) -> Result<()> {
    let stacks = stacks_for(stack, target).await;
    let Some(stack_status) = stacks.status().await.map_err(Error::Aws)? else {
        return Err(Error::Failed(anyhow::anyhow!("stack {stack} does not exist on {}", target.describe())));
    };
    let resources = stacks.resources().await.map_err(Error::Aws)?;
    let template = stacks.deployed_template().await.map_err(Error::Aws)?;
    let wiring = kafka::wiring(stack, &template, &resources);
    let config = target.sdk_config().await;
    let sections = status::report(&config, &resources, &wiring, target).await;
    let outputs = stacks.outputs().await.map_err(Error::Aws)?;
    let failed = status::errors(&sections);
    match output {
        Output::Json => print_json(&json!({ "stack": stack, "status": stack_status.as_str(),
            "outputs": outputs.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "sections": sections })),
        Output::Text => {
            println!("STACK {stack}  {}", stack_status.as_str());
            for (k, v) in &outputs {
                println!("  {k} = {v}");
            }
            print!("{}", status::render(&sections));
            Ok(())
        }
    }?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Aws(anyhow::anyhow!("{} call(s) of the report failed:\n  {}", failed.len(), failed.join("\n  "))))
    }
}
