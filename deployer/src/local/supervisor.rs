//! Runs one process the way ECS runs a task: start it, prefix its log lines with its
//! name, restart it with exponential backoff when it exits on its own, and stop it
//! with SIGTERM (then SIGKILL after a grace period).

pub mod postmaster;

use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use nix::{sys::signal, unistd::Pid};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::{Child, Command},
    sync::{mpsc, watch},
    task::JoinHandle,
};

/// Variables a child inherits from `up`'s own environment; everything else comes from
/// its task definition, as in a container.
const INHERITED: [&str; 6] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "RUST_BACKTRACE"];

/// What to run.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where its output goes instead of `up`'s own (appended), for chatty helpers.
    pub log_file: Option<PathBuf>,
    /// Its working directory (default: `up`'s).
    pub cwd: Option<PathBuf>,
    /// A text that, in one of its output lines, means it is broken although it keeps
    /// running: it is killed (SIGKILL) and so restarted like a crash. tansu's is a
    /// panic: a panicked storage task leaves a broker that accepts connections and
    /// answers every request with an error.
    pub fatal_line: Option<&'static str>,
}

impl ProcessSpec {
    /// `program` with `args` and `env`, its output on `up`'s, in `up`'s folder.
    pub fn new(name: impl Into<String>, program: PathBuf, args: Vec<String>, env: Vec<(String, String)>) -> Self {
        Self { name: name.into(), program, args, env, log_file: None, cwd: None, fatal_line: None }
    }
}

/// What the supervisors report to `up`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started {
        name: String,
        pid: u32,
    },
    /// The process ended on its own; it is restarted after `restart_in`.
    Exited {
        name: String,
        status: String,
        uptime: Duration,
        restart_in: Duration,
        restarts: u32,
    },
    SpawnFailed {
        name: String,
        error: String,
        restart_in: Duration,
    },
}

/// Restart delays: 1 s doubling to 30 s; back to 1 s after a minute of running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub stable_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { initial: Duration::from_secs(1), max: Duration::from_secs(30), stable_after: Duration::from_secs(60) }
    }
}

impl Backoff {
    /// The delay before the next start, given the previous delay and how long the
    /// process ran.
    pub fn next(&self, previous: Option<Duration>, uptime: Duration) -> Duration {
        match previous {
            Some(previous) if uptime < self.stable_after => (previous * 2).min(self.max),
            _ => self.initial,
        }
    }
}

/// Writes children's lines as `name | line`, names padded and (on a terminal) coloured.
#[derive(Debug, Clone)]
pub struct Printer {
    width: usize,
    color: bool,
}

impl Printer {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let width = names.into_iter().map(str::len).max().unwrap_or(8).max(8);
        Self { width, color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() }
    }

    pub fn color(&self) -> bool {
        self.color
    }

    pub fn format(&self, name: &str, index: usize, line: &str) -> String {
        if self.color {
            let code = [36, 33, 32, 35, 34, 31, 96, 93][index % 8];
            format!("\x1b[{code}m{name:>width$} |\x1b[0m {line}", width = self.width)
        } else {
            format!("{name:>width$} | {line}", width = self.width)
        }
    }

    pub fn line(&self, name: &str, index: usize, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", self.format(name, index, line));
    }
}

/// How processes are supervised: where their lines and events go, restart delays,
/// and how long a process may take to stop after SIGTERM.
#[derive(Debug, Clone)]
pub struct Supervision {
    pub printer: Printer,
    pub events: mpsc::UnboundedSender<Event>,
    pub backoff: Backoff,
    pub grace: Duration,
}

/// A supervised process.
pub struct Supervised {
    pub name: String,
    stop: watch::Sender<bool>,
    pid: watch::Receiver<Option<u32>>,
    task: JoinHandle<()>,
}

impl Supervised {
    /// Starts `spec`; `index` picks its colour.
    pub fn start(spec: ProcessSpec, index: usize, supervision: &Supervision) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let (pid_tx, pid) = watch::channel(None);
        let name = spec.name.clone();
        let task = tokio::spawn(supervise(spec, index, supervision.clone(), stop_rx, pid_tx));
        Self { name, stop, pid, task }
    }

    pub fn pid(&self) -> Option<u32> {
        *self.pid.borrow()
    }

    /// SIGTERM, wait up to the grace period, SIGKILL; no restart afterwards.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn supervise(
    spec: ProcessSpec,
    index: usize,
    supervision: Supervision,
    mut stop: watch::Receiver<bool>,
    pid: watch::Sender<Option<u32>>,
) {
    let Supervision { printer, events, backoff, grace } = supervision;
    let mut delay: Option<Duration> = None;
    let mut restarts = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let started = Instant::now();
        let wait = match spawn(&spec, index, &printer) {
            Ok(mut child) => {
                let child_pid = child.id().unwrap_or_default();
                let _ = pid.send(Some(child_pid));
                let _ = events.send(Event::Started { name: spec.name.clone(), pid: child_pid });
                tokio::select! {
                    status = child.wait() => {
                        let _ = pid.send(None);
                        let uptime = started.elapsed();
                        let next = backoff.next(delay, uptime);
                        restarts += 1;
                        let status = status.map_or_else(|e| e.to_string(), |s| describe(&s));
                        let _ = events.send(Event::Exited { name: spec.name.clone(), status, uptime, restart_in: next, restarts });
                        next
                    }
                    () = stopped(&mut stop) => {
                        terminate(&mut child, grace).await;
                        let _ = pid.send(None);
                        return;
                    }
                }
            }
            Err(e) => {
                let next = backoff.next(delay, Duration::ZERO);
                let _ =
                    events.send(Event::SpawnFailed { name: spec.name.clone(), error: e.to_string(), restart_in: next });
                next
            }
        };
        delay = Some(wait);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopped(&mut stop) => return,
        }
    }
}

/// Resolves once a stop was requested (or the sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

fn spawn(spec: &ProcessSpec, index: usize, printer: &Printer) -> std::io::Result<Child> {
    let mut command = Command::new(&spec.program);
    command.args(&spec.args).env_clear();
    if let Some(dir) = &spec.cwd {
        command.current_dir(dir);
    }
    for key in INHERITED {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    command.envs(spec.env.iter().map(|(k, v)| (k, v)));
    command.stdin(Stdio::null()).kill_on_drop(true);
    match &spec.log_file {
        Some(path) => {
            let log = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            command.stdout(log.try_clone()?).stderr(log);
        }
        None => {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
    }
    // Its own process group: a terminal's Ctrl-C reaches `up` alone, which then stops
    // the services in reverse dependency order instead of all at once.
    command.process_group(0);
    let mut child = command.spawn()?;
    let fatal = spec.fatal_line.zip(child.id().and_then(|p| i32::try_from(p).ok()));
    if let Some(out) = child.stdout.take() {
        forward(out, spec.name.clone(), index, printer.clone(), fatal);
    }
    if let Some(err) = child.stderr.take() {
        forward(err, spec.name.clone(), index, printer.clone(), fatal);
    }
    Ok(child)
}

/// Prints the lines of `stream`; kills the process `fatal` names when a line holds its text.
fn forward(
    stream: impl AsyncRead + Unpin + Send + 'static,
    name: String,
    index: usize,
    printer: Printer,
    fatal: Option<(&'static str, i32)>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            printer.line(&name, index, &line);
            if let Some((text, pid)) = fatal
                && line.contains(text)
            {
                printer.line(&name, index, &format!("(up) {text:?} in its output: killing it for a restart"));
                let _ = signal::kill(Pid::from_raw(pid), signal::Signal::SIGKILL);
            }
        }
    });
}

/// SIGTERM, then SIGKILL if it is still running after `grace`.
pub async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = signal::kill(Pid::from_raw(pid), signal::Signal::SIGTERM);
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

pub fn describe(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => {
            let name = signal::Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.as_str().to_string());
            format!("signal {name}")
        }
        _ => status.to_string(),
    }
}

/// Resident memory of a process in KiB (`VmRSS` of /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_after_a_stable_run() {
        let b = Backoff::default();
        let mut delay = None;
        let mut seen = Vec::new();
        for _ in 0..7 {
            let next = b.next(delay, Duration::from_millis(10));
            seen.push(next.as_secs());
            delay = Some(next);
        }
        assert_eq!(seen, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.next(delay, Duration::from_secs(61)), Duration::from_secs(1));
    }

    fn shell(name: &str, script: &str) -> ProcessSpec {
        ProcessSpec::new(name, "/bin/sh".into(), vec!["-c".into(), script.into()], vec![])
    }

    #[test]
    fn lines_carry_the_padded_name() {
        let printer = Printer { width: 15, color: false };
        assert_eq!(printer.format("auth-service", 0, "listening"), "   auth-service | listening");
    }

    /// Supervises `spec` with short restart delays until it has ended twice; returns
    /// how each ended and its restart count, then stops it.
    async fn two_exits(spec: ProcessSpec) -> Vec<(String, u32)> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let backoff =
            Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(20), stable_after: Duration::MAX };
        let supervision = Supervision {
            printer: Printer { width: 8, color: false },
            events: tx,
            backoff,
            grace: Duration::from_secs(1),
        };
        let supervised = Supervised::start(spec, 0, &supervision);
        let mut exits = Vec::new();
        while exits.len() < 2 {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("no exit").expect("events") {
                Event::Exited { status, restarts, .. } => exits.push((status, restarts)),
                Event::Started { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        supervised.stop().await;
        exits
    }

    #[tokio::test]
    async fn a_process_that_exits_is_restarted_and_stop_ends_it() {
        let exits = two_exits(shell("short", "echo hi; exit 3")).await;
        assert_eq!(exits, [("exit code 3".to_string(), 1), ("exit code 3".to_string(), 2)]);
    }

    /// A process that says it is broken but keeps running is killed and restarted.
    #[tokio::test]
    async fn a_fatal_line_gets_a_running_process_restarted() {
        let mut spec = shell("wedged", "echo 'thread panicked at storage'; while true; do sleep 0.05; done");
        spec.fatal_line = Some("panicked at");
        let exits = two_exits(spec).await;
        assert_eq!(exits, [("signal SIGKILL".to_string(), 1), ("signal SIGKILL".to_string(), 2)]);
    }

    #[tokio::test]
    async fn stop_sends_sigterm_to_a_running_process() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let spec = shell("long", "trap 'exit 0' TERM; while true; do sleep 0.05; done");
        let supervision = Supervision {
            printer: Printer { width: 8, color: false },
            events: tx,
            backoff: Backoff::default(),
            grace: Duration::from_secs(5),
        };
        let supervised = Supervised::start(spec, 0, &supervision);
        let Some(Event::Started { pid, .. }) = rx.recv().await else { panic!("not started") };
        assert!(rss_kib(pid).is_some());
        assert_eq!(supervised.pid(), Some(pid));
        supervised.stop().await;
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists() || rss_kib(pid).is_none());
    }
}
