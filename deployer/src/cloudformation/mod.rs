//! Deploy, diff and destroy through CloudFormation change sets. What one change holds,
//! and whether it widens access, is [`change`].

mod change;

pub use self::change::ResourceChange;

use std::{
    collections::BTreeSet,
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};

use crate::error::aws_call_failed;
use anyhow::{Context as _, bail};
use aws_sdk_cloudformation::{
    Client,
    error::ProvideErrorMetadata,
    types::{
        Capability, ChangeAction, ChangeSetStatus, ChangeSetType, Parameter, Replacement, StackEvent, StackStatus,
    },
};
use serde_json::Value;

pub struct Stacks {
    client: Client,
    pub name: String,
}

/// One resource of a deployed stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackResource {
    pub logical_id: String,
    pub resource_type: String,
    /// Empty while the resource is being created.
    pub physical_id: String,
}

/// How a stack operation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    /// `DeleteComplete` when the stack no longer exists.
    pub status: StackStatus,
    /// The resources that failed during this operation, with their reasons.
    pub failures: Vec<String>,
}

impl Settled {
    /// Whether a create or update ended well.
    pub fn succeeded(&self) -> bool {
        matches!(self.status, StackStatus::CreateComplete | StackStatus::UpdateComplete)
    }
}

/// Whether a stack in `status` is still changing.
pub fn in_progress(status: &StackStatus) -> bool {
    status.as_str().ends_with("_IN_PROGRESS")
}

/// Where an operation's stack events begin (see [`Stacks::event_mark`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventMark {
    /// The id of the stack's newest event before the operation.
    pub newest_before: Option<String>,
}

/// Of one page of events (newest first), those after `mark` and not `seen`; and
/// whether the page reached the mark or a seen event (no older page is needed).
fn take_new<'a>(page: &'a [StackEvent], mark: &EventMark, seen: &BTreeSet<String>) -> (Vec<&'a StackEvent>, bool) {
    let mut fresh = Vec::new();
    for event in page {
        let Some(id) = event.event_id() else { continue };
        if mark.newest_before.as_deref() == Some(id) || seen.contains(id) {
            return (fresh, true);
        }
        fresh.push(event);
    }
    (fresh, false)
}

/// Where CloudFormation reads a template: inline up to
/// [`crate::assets::INLINE_TEMPLATE_LIMIT`] bytes, else from S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateLocation {
    Body(String),
    Url(String),
}

/// A template as CloudFormation receives it, with the values of its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSource {
    pub location: TemplateLocation,
    pub parameters: Vec<(String, String)>,
}

impl TemplateSource {
    pub fn new(location: TemplateLocation) -> Self {
        Self { location, parameters: Vec::new() }
    }

    pub fn with_parameters(self, parameters: Vec<(String, String)>) -> Self {
        Self { parameters, ..self }
    }
}

/// `$request` (a CreateChangeSet or UpdateStack) with the template and its parameters.
macro_rules! with_template {
    ($request:expr, $template:expr) => {{
        let request = match &$template.location {
            TemplateLocation::Body(body) => $request.template_body(body),
            TemplateLocation::Url(url) => $request.template_url(url),
        };
        $template.parameters.iter().fold(request, |request, (key, value)| {
            request.parameters(Parameter::builder().parameter_key(key).parameter_value(value).build())
        })
    }};
}

/// What a prepared change set holds.
pub struct Prepared {
    pub change_set: String,
    pub changes: Vec<ResourceChange>,
    pub create: bool,
}

fn is_missing_stack(message: Option<&str>) -> bool {
    message.is_some_and(|m| m.contains("does not exist"))
}

fn is_no_change(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

impl Stacks {
    pub fn new(client: Client, name: &str) -> Self {
        Self { client, name: name.into() }
    }

    /// The stack's status, or `None` when it does not exist.
    pub async fn status(&self) -> anyhow::Result<Option<StackStatus>> {
        match self.client.describe_stacks().stack_name(&self.name).send().await {
            Ok(out) => Ok(out.stacks().first().and_then(|s| s.stack_status()).cloned()),
            Err(e) if is_missing_stack(e.message()) => Ok(None),
            Err(e) => Err(aws_call_failed("DescribeStacks", &e)),
        }
    }

    /// Creates a change set and waits until it is ready. `None`: nothing would change.
    pub async fn prepare(&self, template: &TemplateSource) -> anyhow::Result<Option<Prepared>> {
        let create = match self.status().await? {
            None | Some(StackStatus::ReviewInProgress) => true,
            Some(s) if in_progress(&s) => {
                bail!("stack {} is busy ({}); try again when it settles", self.name, s.as_str())
            }
            Some(StackStatus::RollbackComplete) => {
                bail!(
                    "stack {} is in ROLLBACK_COMPLETE after a failed creation; run `deployer destroy` first",
                    self.name
                )
            }
            Some(_) => false,
        };
        let change_set = format!(
            "pulsetrack-{}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
        );
        let request = self.client.create_change_set().stack_name(&self.name).change_set_name(&change_set);
        let request = with_template!(request, template);
        request
            .change_set_type(if create { ChangeSetType::Create } else { ChangeSetType::Update })
            .capabilities(Capability::CapabilityIam)
            .capabilities(Capability::CapabilityNamedIam)
            .send()
            .await
            .map_err(|e| aws_call_failed("CreateChangeSet", &e))?;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let out = self
                .client
                .describe_change_set()
                .stack_name(&self.name)
                .change_set_name(&change_set)
                .send()
                .await
                .map_err(|e| aws_call_failed("DescribeChangeSet", &e))?;
            match out.status() {
                Some(ChangeSetStatus::CreateComplete) => {
                    let changes = out
                        .changes()
                        .iter()
                        .filter_map(|c| c.resource_change())
                        .map(|r| ResourceChange {
                            action: r.action().map(ChangeAction::as_str).unwrap_or("Modify").to_string(),
                            logical_id: r.logical_resource_id().unwrap_or_default().to_string(),
                            resource_type: r.resource_type().unwrap_or_default().to_string(),
                            replacement: matches!(r.replacement(), Some(Replacement::True)),
                        })
                        .collect::<Vec<_>>();
                    if changes.is_empty() && !create {
                        self.discard(&change_set).await;
                        return Ok(None);
                    }
                    return Ok(Some(Prepared { change_set, changes, create }));
                }
                Some(ChangeSetStatus::Failed) => {
                    let reason = out.status_reason().unwrap_or("no reason given").to_string();
                    self.discard(&change_set).await;
                    if is_no_change(&reason) {
                        return Ok(None);
                    }
                    bail!("the change set failed: {reason}");
                }
                _ if Instant::now() > deadline => bail!("the change set was not ready within 5 minutes"),
                _ => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }

    pub async fn discard(&self, change_set: &str) {
        let _ = self.client.delete_change_set().stack_name(&self.name).change_set_name(change_set).send().await;
        // A CREATE change set leaves an empty REVIEW_IN_PROGRESS stack behind.
        if let Ok(Some(StackStatus::ReviewInProgress)) = self.status().await {
            let _ = self.client.delete_stack().stack_name(&self.name).send().await;
        }
    }

    pub async fn execute(&self, change_set: &str) -> anyhow::Result<()> {
        self.client
            .execute_change_set()
            .stack_name(&self.name)
            .change_set_name(change_set)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_call_failed("ExecuteChangeSet", &e))
    }

    /// Where the next operation's events begin: the stack's newest event now (none
    /// when the stack does not exist or has no events). [`Stacks::wait`] reports only
    /// events newer than it.
    pub async fn event_mark(&self) -> anyhow::Result<EventMark> {
        match self.client.describe_stack_events().stack_name(&self.name).send().await {
            Ok(out) => Ok(EventMark {
                newest_before: out.stack_events().first().and_then(|e| e.event_id()).map(str::to_string),
            }),
            Err(e) if is_missing_stack(e.message()) => Ok(EventMark::default()),
            Err(e) => Err(aws_call_failed("DescribeStackEvents", &e)),
        }
    }

    /// The events after `mark` not in `seen`, oldest first: DescribeStackEvents is
    /// read page by page (newest first) until the mark, an event already seen (all
    /// older ones were seen with it), or the stack's first event.
    async fn new_events(&self, mark: &EventMark, seen: &BTreeSet<String>) -> anyhow::Result<Vec<StackEvent>> {
        let mut fresh = Vec::new();
        let mut token = None;
        loop {
            let out =
                match self.client.describe_stack_events().stack_name(&self.name).set_next_token(token).send().await {
                    Ok(out) => out,
                    Err(e) if is_missing_stack(e.message()) => break,
                    Err(e) => return Err(aws_call_failed("DescribeStackEvents", &e)),
                };
            let (page, reached) = take_new(out.stack_events(), mark, seen);
            fresh.extend(page.into_iter().cloned());
            token = out.next_token().map(str::to_string);
            if reached || token.is_none() {
                break;
            }
        }
        fresh.reverse();
        Ok(fresh)
    }

    /// Follows the stack until it leaves `*_IN_PROGRESS`, printing each event of this
    /// operation (those after `mark`, each once); returns the final status and the
    /// resources that failed in this operation, with their reasons.
    pub async fn wait(&self, timeout: Duration, progress: &mut Progress, mark: EventMark) -> anyhow::Result<Settled> {
        let started = Instant::now();
        let mut seen = BTreeSet::new();
        let mut failures = Vec::new();
        loop {
            // The status first: when it says settled, the events read after it hold
            // the operation's last ones.
            let status = self.status().await?;
            for event in self.new_events(&mark, &seen).await? {
                seen.insert(event.event_id().unwrap_or_default().to_string());
                let status = event.resource_status().map(|s| s.as_str()).unwrap_or_default();
                let reason = event.resource_status_reason().unwrap_or_default();
                let (kind, id) =
                    (event.resource_type().unwrap_or_default(), event.logical_resource_id().unwrap_or_default());
                if status.ends_with("FAILED") {
                    failures.push(format!("{id} ({kind}): {reason}"));
                }
                progress.event(format!("{status} {kind} {id} {reason}").trim_end());
            }
            match status {
                None => return Ok(Settled { status: StackStatus::DeleteComplete, failures }),
                Some(status) if !in_progress(&status) => {
                    progress.done();
                    return Ok(Settled { status, failures });
                }
                Some(status) => progress.tick(status.as_str(), started.elapsed()),
            }
            if started.elapsed() > timeout {
                bail!("stack {} did not settle within {}s", self.name, timeout.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub async fn outputs(&self) -> anyhow::Result<Vec<(String, String)>> {
        let out = self.client.describe_stacks().stack_name(&self.name).send().await.context("DescribeStacks")?;
        let mut outputs: Vec<(String, String)> = out
            .stacks()
            .first()
            .map(|s| {
                s.outputs()
                    .iter()
                    .map(|o| {
                        (
                            o.output_key().unwrap_or_default().to_string(),
                            o.output_value().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        outputs.sort();
        Ok(outputs)
    }

    /// The deployed template (`Null` when the stack does not exist yet).
    pub async fn deployed_template(&self) -> anyhow::Result<Value> {
        match self.client.get_template().stack_name(&self.name).send().await {
            Ok(out) => match out.template_body() {
                Some(body) => serde_json::from_str(body).context("the deployed template is not JSON"),
                None => Ok(Value::Null),
            },
            Err(e) if is_missing_stack(e.message()) => Ok(Value::Null),
            Err(e) => Err(aws_call_failed("GetTemplate", &e)),
        }
    }

    /// moto computes a stack's outputs on CreateStack/UpdateStack but not when a change
    /// set executes; an UpdateStack with the same template makes it compute them.
    /// Real CloudFormation reports outputs after a change set, so this never runs there
    /// (and would only answer "No updates are to be performed").
    /// The parameters are left out: moto keeps the stack's values then, and given the
    /// same values it answers "No updates are to be performed" without computing them.
    pub async fn refresh_outputs(&self, template: &TemplateSource) -> anyhow::Result<()> {
        let request = self.client.update_stack().stack_name(&self.name);
        let request = with_template!(request, TemplateSource::new(template.location.clone()));
        let result =
            request.capabilities(Capability::CapabilityIam).capabilities(Capability::CapabilityNamedIam).send().await;
        match result {
            Ok(_) => {}
            Err(e) if e.message().is_some_and(is_no_change) => return Ok(()),
            Err(e) => return Err(aws_call_failed("UpdateStack", &e)),
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.status().await?.is_some_and(|s| in_progress(&s)) {
            if Instant::now() > deadline {
                bail!("the output refresh did not settle");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Ok(())
    }

    /// Every resource in the stack.
    pub async fn resources(&self) -> anyhow::Result<Vec<StackResource>> {
        let out = self
            .client
            .describe_stack_resources()
            .stack_name(&self.name)
            .send()
            .await
            .context("DescribeStackResources")?;
        Ok(out
            .stack_resources()
            .iter()
            .map(|r| StackResource {
                logical_id: r.logical_resource_id().unwrap_or_default().to_string(),
                resource_type: r.resource_type().unwrap_or_default().to_string(),
                physical_id: r.physical_resource_id().unwrap_or_default().to_string(),
            })
            .collect())
    }

    pub async fn delete(&self) -> anyhow::Result<()> {
        self.client
            .delete_stack()
            .stack_name(&self.name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_call_failed("DeleteStack", &e))
    }
}

/// Live progress: an updating line on a terminal, plain event lines otherwise (or
/// when `CI` is set), nothing at all for `--output json` (events go to stderr).
pub struct Progress {
    interactive: bool,
    quiet: bool,
    line_open: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let interactive = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        Self { interactive, quiet, line_open: false }
    }

    fn event(&mut self, line: &str) {
        if self.quiet {
            return;
        }
        if self.line_open {
            eprint!("\r\x1b[2K");
            self.line_open = false;
        }
        eprintln!("  {line}");
    }

    fn tick(&mut self, status: &str, elapsed: Duration) {
        if self.interactive && !self.quiet {
            let spinner = ["|", "/", "-", "\\"][(elapsed.as_millis() / 500 % 4) as usize];
            eprint!("\r\x1b[2K{spinner} {status} ({}s)", elapsed.as_secs());
            let _ = std::io::stderr().flush();
            self.line_open = true;
        }
    }

    fn done(&mut self) {
        if self.line_open {
            eprint!("\r\x1b[2K");
            self.line_open = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(ids: &[&str]) -> Vec<StackEvent> {
        ids.iter().map(|id| StackEvent::builder().event_id(*id).build()).collect()
    }

    fn ids(events: &[&StackEvent]) -> Vec<String> {
        events.iter().filter_map(|e| e.event_id()).map(str::to_string).collect()
    }

    #[test]
    fn only_events_after_the_mark_and_unseen_are_new() {
        // Newest first: e5, e4 are this operation's; e3 is the newest from before it.
        let page = events(&["e5", "e4", "e3", "e2-failed-earlier", "e1"]);
        let mark = EventMark { newest_before: Some("e3".into()) };
        let (fresh, reached) = take_new(&page, &mark, &BTreeSet::new());
        assert_eq!(ids(&fresh), ["e5", "e4"]);
        assert!(reached, "no older page is read");
        // A later poll: e4 was reported already, e6 is new.
        let page = events(&["e6", "e5", "e4", "e3"]);
        let seen: BTreeSet<String> = ["e5".to_string(), "e4".to_string()].into();
        let (fresh, reached) = take_new(&page, &mark, &seen);
        assert_eq!(ids(&fresh), ["e6"]);
        assert!(reached);
    }

    #[test]
    fn a_page_without_the_mark_asks_for_the_next() {
        // The operation wrote more events than one page holds: the mark is further on.
        let page = events(&["e9", "e8"]);
        let mark = EventMark { newest_before: Some("e3".into()) };
        let (fresh, reached) = take_new(&page, &mark, &BTreeSet::new());
        assert_eq!(ids(&fresh), ["e9", "e8"]);
        assert!(!reached);
        // Without a mark (a new stack) every event is the operation's.
        let (fresh, _) = take_new(&page, &EventMark::default(), &BTreeSet::new());
        assert_eq!(fresh.len(), 2);
    }

    #[test]
    fn no_change_reasons_are_recognised() {
        assert!(is_no_change(
            "The submitted information didn't contain changes. Submit different information to create a change set."
        ));
        assert!(!is_no_change("Template error: unresolved reference"));
    }
}
