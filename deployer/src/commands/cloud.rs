//! What the commands that call AWS share: the CloudFormation client of a stack, the
//! assets bucket, where a template goes, and applying it through a change set (asking
//! before changes that widen access). Built with the `aws` feature only.

use std::{
    io::{BufRead, IsTerminal, Write},
    time::Duration,
};

use crate::{
    assets::{AssetsBucket, Bootstrapped, INLINE_TEMPLATE_LIMIT},
    cli::{Approval, Output},
    cloudformation::{Progress, ResourceChange, Stacks, TemplateLocation, TemplateSource},
    error::{Error, Result},
    target::Target,
};

pub async fn stacks_for(name: &str, target: &Target) -> Stacks {
    let config = target.sdk_config().await;
    Stacks::new(aws_sdk_cloudformation::Client::new(&config), name)
}

/// The assets bucket of the target's account and region.
pub async fn assets_bucket(target: &Target) -> Result<AssetsBucket> {
    let config = target.sdk_config().await;
    let (path_style, over_tls) = match target {
        Target::Aws => (false, true),
        Target::Endpoint(url) => (true, url.starts_with("https://")),
    };
    AssetsBucket::for_config(&config, path_style, over_tls).await.map_err(Error::Aws)
}

/// Says when the TLS-only policy was left out (a plain-HTTP endpoint).
pub fn note_policy(bucket: &AssetsBucket, done: Bootstrapped) {
    if !done.tls_policy {
        eprintln!(
            "note: the endpoint is plain HTTP, so {} has no TLS-only bucket policy (it would refuse the deployer's own requests)",
            bucket.name
        );
    }
}

/// How `template` goes to CloudFormation: inline when it fits the inline limit, else
/// stored in the assets bucket (bootstrapped first when missing) by content hash.
/// What is done is said on stderr.
pub async fn template_source(target: &Target, template: &str) -> Result<TemplateSource> {
    if template.len() <= INLINE_TEMPLATE_LIMIT {
        return Ok(TemplateSource::new(TemplateLocation::Body(template.to_string())));
    }
    let bucket = assets_bucket(target).await?;
    if !bucket.exists().await.map_err(Error::Aws)? {
        eprintln!(
            "the template is {} bytes, over CloudFormation's inline limit of {INLINE_TEMPLATE_LIMIT}: \
             bootstrapping the assets bucket {} (encrypted, versioned, public access blocked, TLS only)",
            template.len(),
            bucket.name
        );
        let done = bucket.bootstrap().await.map_err(Error::Aws)?;
        note_policy(&bucket, done);
    }
    let stored = bucket.store_template(template).await.map_err(Error::Aws)?;
    eprintln!(
        "template ({} bytes) via S3: s3://{}/{} ({})",
        template.len(),
        bucket.name,
        stored.key,
        if stored.uploaded { "uploaded" } else { "already there" }
    );
    Ok(TemplateSource::new(TemplateLocation::Url(stored.url)))
}

fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() || std::env::var_os("CI").is_some() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

/// How a template is applied: through a change set, asking before broadening changes.
pub struct Apply {
    pub timeout: Duration,
    pub output: Output,
    pub require_approval: Approval,
}

/// What applying a template did.
pub enum Applied {
    /// The change set held no change.
    Unchanged,
    /// The stack settled at `status` (`CREATE_COMPLETE` or `UPDATE_COMPLETE`).
    Changed { status: String, changes: Vec<ResourceChange> },
}

impl Apply {
    /// Applies `template`, which CloudFormation receives as `source`.
    pub async fn run(&self, stacks: &Stacks, template: &str, source: &TemplateSource) -> Result<Applied> {
        // Read before the change set exists: it is what the change is measured against.
        let old = stacks.deployed_template().await.map_err(Error::Aws)?;
        let Some(prepared) = stacks.prepare(source).await.map_err(Error::Failed)? else {
            return Ok(Applied::Unchanged);
        };
        if self.output == Output::Text {
            for change in &prepared.changes {
                eprintln!("  {}", change.line());
            }
        }
        let new: serde_json::Value =
            serde_json::from_str(template).map_err(|e| Error::Failed(anyhow::anyhow!("template: {e}")))?;
        let broadening: Vec<_> = prepared.changes.iter().filter(|c| c.broadening(&old, &new)).collect();
        if self.require_approval == Approval::Broadening
            && !broadening.is_empty()
            && !confirm(&format!("{} security-relevant change(s) widen access. Deploy?", broadening.len()))
        {
            stacks.discard(&prepared.change_set).await;
            let list: Vec<String> = broadening.iter().map(|c| format!("  {}", c.line())).collect();
            return Err(Error::ApprovalRefused(format!(
                "{} broadening change(s) need approval: confirm on a terminal, or pass --require-approval never\n{}",
                broadening.len(),
                list.join("\n")
            )));
        }
        let mark = stacks.event_mark().await.map_err(Error::Aws)?;
        stacks.execute(&prepared.change_set).await.map_err(Error::Failed)?;
        let mut progress = Progress::new(self.output == Output::Json);
        let settled = stacks.wait(self.timeout, &mut progress, mark).await.map_err(Error::Failed)?;
        if !settled.succeeded() {
            let reasons = if settled.failures.is_empty() {
                "no resource reported a reason".into()
            } else {
                settled.failures.join("\n  ")
            };
            return Err(Error::Failed(anyhow::anyhow!(
                "deploy of {} ended {}:\n  {reasons}",
                stacks.name,
                settled.status.as_str()
            )));
        }
        Ok(Applied::Changed { status: settled.status.as_str().to_string(), changes: prepared.changes })
    }
}

/// The stack's outputs after `applied`. moto computes outputs only on UpdateStack, so
/// when a stack that declares outputs reports none, they are refreshed (and it is said).
pub async fn outputs_after(
    stacks: &Stacks,
    applied: &Applied,
    template: &TemplateSource,
    declares_outputs: bool,
    target: &Target,
) -> Result<Vec<(String, String)>> {
    let outputs = stacks.outputs().await.map_err(Error::Aws)?;
    if matches!(applied, Applied::Unchanged) || !outputs.is_empty() || !declares_outputs {
        return Ok(outputs);
    }
    eprintln!(
        "note: {} reported no outputs of {} after the change set (moto computes them only on UpdateStack); refreshing them",
        target.describe(),
        stacks.name
    );
    stacks.refresh_outputs(template).await.map_err(Error::Aws)?;
    stacks.outputs().await.map_err(Error::Aws)
}
