//! A running `deployer up` for the tests, and the requests they make through its
//! gateway.

use std::{
    io::{BufRead, BufReader},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::blocking::Client;
use serde_json::{Value, json};

pub const SERVICES: [&str; 5] =
    ["auth-service", "patient-service", "billing-service", "analytics-service", "api-gateway"];

pub fn deployer() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_deployer"))
}

pub fn bin_dir() -> PathBuf {
    deployer().parent().expect("target folder").to_path_buf()
}

/// podman's settings for this machine (runc, cgroupfs, lower ulimits): the caller's
/// CONTAINERS_CONF, else the repository's.
pub fn containers_conf() -> String {
    std::env::var("CONTAINERS_CONF")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/containers.conf").to_string())
}

/// The offsets [`port_offset`] chooses from: 10,000 + 100 × k for k below this. Two
/// offsets 5,000 apart would share a port (one's 9001 is the other's 4001), so no two
/// may be that far apart.
const OFFSETS: u16 = 50;

/// Ports 4000..4005 and 9001 shifted below the ephemeral range, away from other runs:
/// an offset whose ports are free and that no other test process holds. A free port
/// alone is not enough: a test that found its ports free may bind them a minute later
/// (the containers test builds its images first), and another test could take them
/// meanwhile.
pub fn port_offset() -> u16 {
    let locks = std::env::temp_dir().join("pulsetrack-test-ports");
    std::fs::create_dir_all(&locks).expect("the port locks' folder");
    let free = |o: u16| {
        [4000u16, 4001, 4002, 4004, 4005, 9001]
            .iter()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", p + o)).is_ok())
    };
    let start = (std::process::id() % u32::from(OFFSETS)) as u16;
    (0..OFFSETS)
        .map(|i| 10_000 + ((start + i) % OFFSETS) * 100)
        .find(|&o| hold(&locks.join(o.to_string())) && free(o))
        .expect("a free port range")
}

/// Locks `path` for the rest of this process (the kernel drops the lock when it ends,
/// however it ends); false when another process, or an earlier call of this one,
/// holds it.
fn hold(path: &Path) -> bool {
    let Ok(file) = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path) else {
        return false;
    };
    if file.try_lock().is_err() {
        return false;
    }
    std::mem::forget(file);
    true
}

pub struct Up {
    pub child: Child,
    pub output: Arc<Mutex<Vec<String>>>,
}

impl Up {
    pub fn start(data: &Path, offset: u16) -> Self {
        Self::start_with(data, offset, &[])
    }

    /// With extra arguments, e.g. an existing Postgres and broker.
    pub fn start_with(data: &Path, offset: u16, extra: &[String]) -> Self {
        Self::start_with_env(data, offset, extra, &[])
    }

    /// With extra arguments and environment variables (a secret goes in the environment).
    pub fn start_with_env(data: &Path, offset: u16, extra: &[String], env: &[(&str, &str)]) -> Self {
        let up = Self::spawn_with_env(data, offset, extra, env);
        up.wait_for(UP_LINE, Duration::from_secs(240));
        up
    }

    /// Starts `deployer up` without waiting for it to be up.
    pub fn spawn(data: &Path, offset: u16, extra: &[String]) -> Self {
        Self::spawn_with_env(data, offset, extra, &[])
    }

    fn spawn_with_env(data: &Path, offset: u16, extra: &[String], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(deployer())
            .args(["up", "--ready-timeout", "120", "--port-offset", &offset.to_string()])
            .args(extra)
            .arg("--data-dir")
            .arg(data)
            .arg("--bin-dir")
            .arg(bin_dir())
            .env_remove("DATABASE_URL")
            .env_remove("KAFKA_BROKERS")
            .env_remove("KAFKA_SASL_USERNAME")
            .env_remove("KAFKA_SASL_PASSWORD")
            .env_remove("PULSETRACK_ADMIN_PASSWORD")
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            // `up` finds podman's settings itself (README's commands export nothing).
            .env_remove("CONTAINERS_CONF")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // As in a terminal: `up` leads its own process group, which Ctrl-C signals.
            .process_group(0)
            .spawn()
            .expect("start deployer up");
        let output = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        collect_lines(stdout, Arc::clone(&output));
        collect_lines(stderr, Arc::clone(&output));
        Self { child, output }
    }

    /// A healthy start prints no ERROR or WARN line, from `up` itself or from anything
    /// it started, before it says that PulseTrack is up.
    pub fn assert_quiet_start(&self) {
        let lines = self.lines();
        assert!(lines.iter().any(|l| l.contains(UP_LINE)), "not up yet");
        let alarms = alarms_before_up(&lines);
        assert!(alarms.is_empty(), "a healthy start printed alarms:\n{}", alarms.join("\n"));
    }

    pub fn lines(&self) -> Vec<String> {
        self.output.lock().expect("lock").clone()
    }

    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            assert!(started.elapsed() < timeout, "no line with {needle:?} after {timeout:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What a terminal's Ctrl-C does: SIGINT to the foreground process group.
    pub fn ctrl_c(&self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGINT).expect("SIGINT to the group");
    }

    /// Waits for `up` to exit after `deployer down`; returns whether it exited cleanly.
    pub fn wait_exit(mut self) -> bool {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.success();
            }
            if started.elapsed() > Duration::from_secs(90) {
                let _ = self.child.kill();
                panic!("deployer up did not exit after down");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// What `up` prints once every service is ready.
pub const UP_LINE: &str = "PulseTrack is up";

fn collect_lines(stream: impl std::io::Read + Send + 'static, sink: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            eprintln!("{line}");
            sink.lock().expect("lock").push(line);
        }
    });
}

/// The lines before [`UP_LINE`] that report a problem (see [`is_alarm`]).
pub fn alarms_before_up(lines: &[String]) -> Vec<String> {
    lines.iter().take_while(|l| !l.contains(UP_LINE)).filter(|l| is_alarm(l)).cloned().collect()
}

/// Whether a log line reports an error or a warning, in the formats of what `up` runs:
/// tracing's (the services, tansu: `ERROR`, `WARN`), Postgres's (`ERROR:`, `WARNING:`,
/// `FATAL:`, `PANIC:`), logrus's (the registry: `level=error`, `level=warning`) and
/// JSON logs (`"level":"WARN"`). Terminal colours are ignored.
pub fn is_alarm(line: &str) -> bool {
    let plain = strip_ansi(line);
    let words = ["ERROR", "WARN", "ERROR:", "WARNING:", "FATAL:", "PANIC:"];
    let fields =
        ["level=error", "level=warning", "level=warn", "level=fatal", "\"level\":\"ERROR\"", "\"level\":\"WARN\""];
    plain.split_whitespace().any(|w| words.contains(&w)) || fields.iter().any(|f| plain.contains(f))
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, ending with a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Drop for Up {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

pub fn run(args: &[&str], data: &Path) -> (bool, String) {
    let out = Command::new(deployer()).args(args).arg("--data-dir").arg(data).output().expect("run deployer");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

pub fn eventually(what: &str, mut check: impl FnMut() -> Option<Value>) -> Value {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{what} did not happen within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn login(client: &Client, base: &str, email: &str, password: &str) -> String {
    let response = client
        .post(format!("{base}/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .expect("login");
    assert_eq!(response.status(), 200, "login of {email}");
    response.json::<Value>().expect("json")["token"].as_str().expect("token").to_string()
}

pub fn get(client: &Client, url: &str, token: &str) -> Option<Value> {
    let response = client.get(url).bearer_auth(token).send().ok()?;
    response.status().is_success().then(|| response.json().ok()).flatten()
}

/// The status of a GET with `token`.
pub fn get_status(client: &Client, url: &str, token: &str) -> u16 {
    client.get(url).bearer_auth(token).send().map(|r| r.status().as_u16()).expect("request")
}

/// The state file of the `up` running on `data`.
pub fn state(data: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(data.join("up.json")).expect("state file")).expect("state json")
}

/// Signs `email` up (password `correct-horse-battery`) and logs in: the user's token.
/// `up` runs the `open` signup mode: the account is a USER at once. A public signup
/// answers 202 whether or not the address was free (no account details).
pub fn signup(client: &Client, base: &str, email: &str) -> String {
    let signup = client
        .post(format!("{base}/auth/signup"))
        .json(&json!({ "email": email, "username": "upper", "password": "correct-horse-battery" }))
        .send()
        .expect("signup");
    assert_eq!(signup.status(), 202, "signup");
    login(client, base, email, "correct-horse-battery")
}

/// What [`patient_flow`] made.
pub struct Flow {
    pub email: String,
    pub token: String,
    pub id: String,
    pub patient_email: String,
}

/// The seed's flow through the gateway at `base`: signup, login, create, list; then
/// the billing account (over gRPC) and the analytics event (over Kafka) arrive.
pub fn patient_flow(client: &Client, base: &str, admin_password: &str, tag: &str) -> Flow {
    let email = format!("{tag}-{}@example.com", std::process::id());
    let token = signup(client, base, &email);
    let patient_email = format!("grace-{tag}-{}@example.com", std::process::id());
    let created = client
        .post(format!("{base}/api/patients"))
        .bearer_auth(&token)
        .json(&json!({ "name": "Grace Hopper", "email": patient_email, "address": "Arlington, VA",
                       "dateOfBirth": "1906-12-09", "registeredDate": "2026-11-27" }))
        .send()
        .expect("create");
    assert_eq!(created.status(), 201, "create");
    let id = created.json::<Value>().expect("json")["id"].as_str().expect("id").to_string();
    let listed = get(client, &format!("{base}/api/patients?search=grace-"), &token).expect("list");
    assert!(listed.to_string().contains(&id), "list holds the new patient: {listed}");

    // Billing accounts are for BILLING and ADMIN; the USER who created the patient
    // does not see them.
    let admin = login(client, base, "admin@pulsetrack.local", admin_password);
    assert_eq!(get_status(client, &format!("{base}/api/billing/accounts/{id}"), &token), 403, "a USER's billing read");
    let account = eventually("billing account", || get(client, &format!("{base}/api/billing/accounts/{id}"), &admin));
    assert_eq!(account["patientId"], id.as_str());
    let events = eventually("analytics event", || {
        get(client, &format!("{base}/api/analytics/patients/{id}/events"), &admin).filter(|v| {
            v.as_array().is_some_and(|a| !a.is_empty()) || v["events"].as_array().is_some_and(|a| !a.is_empty())
        })
    });
    assert!(events.to_string().contains(&id), "{events}");
    Flow { email, token, id, patient_email }
}

/// A copy of the service binaries in which `service`'s differs, as after a change to
/// its code.
pub fn binaries_with_changed(service: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pt-bins-{service}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    for name in SERVICES {
        std::fs::copy(bin_dir().join(name), dir.join(name)).expect("copy binary");
    }
    let mut bytes = std::fs::read(dir.join(service)).expect("read");
    bytes.extend_from_slice(b"\0changed");
    std::fs::write(dir.join(service), bytes).expect("write");
    dir
}

/// `name` on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}
