//! `deployer destroy`: delete the stack, wait, and report what the endpoint kept.

use std::time::Duration;

use aws_sdk_cloudformation::types::StackStatus;

use super::stacks_for;
use crate::{
    cloudformation::Progress,
    error::{Error, Result},
    internal_tls, status,
    target::Target,
};

pub async fn run(stack: &str, target: &Target, timeout: Duration, moto_reset: bool) -> Result<()> {
    let stacks = stacks_for(stack, target).await;
    let moto = target.is_moto().await;
    if moto_reset && !moto {
        return Err(Error::Usage(format!("--moto-reset: {} is not moto", target.describe())));
    }
    if stacks.status().await.map_err(Error::Aws)?.is_none() {
        println!("stack {stack} does not exist on {}", target.describe());
        if moto_reset {
            reset(target).await?;
        }
        return Ok(());
    }
    let before = stacks.resources().await.map_err(Error::Aws)?;
    let mark = stacks.event_mark().await.map_err(Error::Aws)?;
    match stacks.delete().await {
        // moto may fail part-way (it does not order dependencies) yet drop the stack.
        Err(e) if !moto || stacks.status().await.map_err(Error::Aws)?.is_some() => return Err(Error::Failed(e)),
        Err(e) => eprintln!("note: moto's delete-stack failed part-way: {e:#}"),
        Ok(()) => {
            let mut progress = Progress::new(false);
            let settled = stacks.wait(timeout, &mut progress, mark).await.map_err(Error::Failed)?;
            if settled.status != StackStatus::DeleteComplete {
                return Err(Error::Failed(anyhow::anyhow!(
                    "destroy ended {}:\n  {}",
                    settled.status.as_str(),
                    settled.failures.join("\n  ")
                )));
            }
        }
    }
    let config = target.sdk_config().await;
    let left = status::left_behind(&config, &before).await;
    println!("destroyed {stack}");
    let deleted = internal_tls::delete(&config, stack).await.map_err(Error::Aws)?;
    if !deleted.is_empty() {
        println!("deleted its internal TLS secrets: {}", deleted.join(", "));
    }
    if !left.present.is_empty() {
        println!("{} of its resources are still on {}:", left.present.len(), target.describe());
        for item in &left.present {
            println!("  {item}");
        }
    }
    if moto_reset {
        reset(target).await?;
    } else if moto && !left.present.is_empty() {
        println!("moto keeps resources after delete-stack; `deployer destroy --moto-reset` wipes the emulator");
    }
    if !left.unknown.is_empty() {
        return Err(Error::Aws(anyhow::anyhow!(
            "could not check whether {} of its resources are gone:\n  {}",
            left.unknown.len(),
            left.unknown.join("\n  ")
        )));
    }
    Ok(())
}

async fn reset(target: &Target) -> Result<()> {
    target.moto_reset().await.map_err(Error::Failed)?;
    println!("reset the moto emulator (POST /moto-api/reset)");
    Ok(())
}
