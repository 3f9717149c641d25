//! With `--containers`: each container's task-definition health check, run as ECS runs
//! it, so that a container that runs but does not answer is replaced as on AWS.

use std::time::Duration;

use pulsetrack_stacks::ecs::HealthCheck;

use super::{containers::Engine, supervisor::Printer};

/// Runs a container's task-definition health check as ECS does: after the start
/// period, every interval; after `retries` failures in a row the container is stopped,
/// and its supervisor starts a new one.
pub(super) fn monitor_health(
    engine: Engine,
    container: String,
    service: String,
    check: HealthCheck,
    printer: Printer,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (interval, start) =
            (Duration::from_secs(u64::from(check.interval)), Duration::from_secs(u64::from(check.start_period)));
        tokio::time::sleep(start).await;
        let mut failures = 0;
        loop {
            tokio::time::sleep(interval).await;
            if engine.check(&container, &check).await {
                failures = 0;
                continue;
            }
            failures += 1;
            if failures >= check.retries {
                printer.line("up", 7, &format!("{service} failed its health check {failures} times: replacing it"));
                engine.stop(&container, Duration::from_secs(10)).await;
                failures = 0;
                tokio::time::sleep(start).await;
            }
        }
    })
}
