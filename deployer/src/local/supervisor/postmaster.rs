//! The private Postgres's supervisor, beside the services': its postmaster is not a
//! child of `up` to wait for (as [`super::Supervised`] waits), so it is a pid to watch,
//! restarted with the same backoff and reported with the same events.

use std::time::{Duration, Instant};

use crate::local::{postgres::PrivateCluster, process::alive};

use super::{Event, Supervision};

/// The private Postgres, in events and the state.
pub(in crate::local) const POSTGRES: &str = "postgres";

/// Supervises the private Postgres as the services are: pg_ctl runs the postmaster
/// apart from `up`, so it is watched by pid; when it is gone (killed, crashed) it is
/// started again with the same backoff, and both are reported.
pub(in crate::local) fn watch_postgres(
    cluster: PrivateCluster,
    supervision: Supervision,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Supervision { events, backoff, .. } = supervision;
        let (mut delay, mut restarts, mut since) = (None, 0, Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let pid = cluster.pid();
            if pid.is_some_and(alive) {
                continue;
            }
            let uptime = since.elapsed();
            let next = backoff.next(delay, uptime);
            delay = Some(next);
            restarts += 1;
            let status = pid.map_or("no postmaster.pid".to_string(), |pid| format!("postmaster {pid} is gone"));
            let _ = events.send(Event::Exited { name: POSTGRES.into(), status, uptime, restart_in: next, restarts });
            let mut wait = next;
            loop {
                tokio::time::sleep(wait).await;
                match cluster.start().await {
                    Ok(()) => break,
                    // Say, the killed postmaster's backends still hold its shared memory.
                    Err(e) => {
                        wait = backoff.next(Some(wait), Duration::ZERO);
                        delay = Some(wait);
                        let error = format!("{e:#}");
                        let _ = events.send(Event::SpawnFailed { name: POSTGRES.into(), error, restart_in: wait });
                    }
                }
            }
            since = Instant::now();
            let _ = events.send(Event::Started { name: POSTGRES.into(), pid: cluster.pid().unwrap_or_default() });
        }
    })
}
