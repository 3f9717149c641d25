//! `deployer synth`: write the cloud assembly, or check a committed one for drift.

use std::{collections::BTreeMap, path::Path, time::Instant};

use super::synthesize;
use crate::{
    assembly,
    cli::StackArgs,
    error::{Error, Result},
};

pub async fn run(stack: &StackArgs, out: &Path, check: Option<&Path>) -> Result<()> {
    let started = Instant::now();
    let synthesized = synthesize(stack, None, BTreeMap::new()).await?;
    let model = &synthesized.model;
    for warning in model.warnings() {
        eprintln!("warning: {warning}");
    }
    if let Some(dir) = check {
        let drifted = assembly::drift(dir, &synthesized.files);
        if drifted.is_empty() {
            eprintln!("{}: up to date ({} resources)", dir.display(), model.resources.len());
            return Ok(());
        }
        let list: Vec<String> = drifted.iter().map(|p| format!("drift: {}", p.display())).collect();
        return Err(Error::Found(format!(
            "{}\nrun `deployer synth --out {}` and commit the result",
            list.join("\n"),
            dir.display()
        )));
    }
    assembly::write(out, &synthesized.files).map_err(|e| Error::Io(format!("{e:#}")))?;
    eprintln!(
        "synthesized {}: {} resources, {} outputs -> {} in {:.1} ms",
        stack.stack,
        model.resources.len(),
        model.outputs.len(),
        out.join(assembly::template_file(&stack.stack)).display(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
