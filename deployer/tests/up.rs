//! End to end: `deployer up` from an empty data folder (private Postgres via initdb,
//! private tansu, the five service binaries), the seed's flow through the gateway,
//! billing and analytics receiving the patient, the seed's load script (scenario 3)
//! through the gateway without an error, a crashed service restarted, `deployer
//! down`, and the data still there after a second `up`.

mod support;

use std::{process::Command, sync::Arc, time::Duration};

use reqwest::blocking::Client;
use serde_json::{Value, json};
use support::system::{
    Flow, SERVICES, Up, bin_dir, deployer, eventually, get, login, patient_flow, port_offset, run, state,
};

#[test]
fn up_runs_the_whole_system_and_keeps_its_data_across_restarts() {
    for name in SERVICES {
        assert!(
            bin_dir().join(name).is_file(),
            "{name} is not built in {}: run `cargo build --workspace --bins` first (scripts/test.sh does)",
            bin_dir().display()
        );
    }
    let data = std::env::temp_dir().join(format!("pulsetrack-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let offset = port_offset();
    let base = format!("http://127.0.0.1:{}", 4004 + offset);
    let client = Client::builder().timeout(Duration::from_secs(10)).build().expect("client");

    let up = Up::start(&data, offset);
    up.assert_quiet_start();
    assert!(data.join("postgres/PG_VERSION").is_file(), "a private cluster was initialized");
    let (ok, status) = run(&["status", "--local"], &data);
    assert!(ok, "{status}");
    for name in SERVICES.iter().chain(&["postgres", "tansu"]) {
        assert!(status.contains(name), "status lists {name}:\n{status}");
    }
    assert!(!status.contains("NOT READY"), "{status}");
    assert!(status.contains("MiB"), "status shows resident memory:\n{status}");
    assert!(status.contains("patient-event: ") && status.contains(" dead"), "status shows the outbox:\n{status}");

    // The seed's flow through the gateway.
    let admin_password =
        std::fs::read_to_string(data.join("admin-password")).expect("admin password").trim().to_string();
    let Flow { email, id, patient_email, .. } = patient_flow(&client, &base, &admin_password, "up");
    the_seed_s_load_script_runs_without_errors(&base);
    services_use_their_own_roles_over_verified_tls(&data);
    no_service_holds_the_admin_role(&data, &up);
    wal_segments_are_recycled_not_zero_filled(&data);
    top_shows_every_service_from_its_metrics(&client, &base, &data);
    // One consumer on one machine: the topic was made with one partition.
    let brokers = state(&data)["kafka_brokers"].as_str().expect("brokers").to_string();
    let patient_login = broker_login(&data, "patient-service");
    let logged_in = pulsetrack_common::kafka::KafkaConfig::local(&brokers).with_login(patient_login.clone());
    assert_eq!(topic_partitions(logged_in.client_config(), pulsetrack_common::kafka::PATIENT_TOPIC), Some(1));
    // The broker serves only clients that log in (each Kafka service has its own login).
    let anonymous = pulsetrack_common::kafka::KafkaConfig::local(&brokers);
    assert_eq!(topic_partitions(anonymous.client_config(), pulsetrack_common::kafka::PATIENT_TOPIC), None);

    // auth-service's signing secret: generated into the data folder, private from its
    // first byte, and a token issued now must still be accepted after a restart.
    let secret_file = data.join("jwt-signing-secret");
    let jwt_secret = std::fs::read_to_string(&secret_file).expect("the JWT signing secret file");
    assert_eq!(jwt_secret.trim().len(), 64, "64 generated characters");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&secret_file).expect("meta").permissions());
    assert_eq!(mode & 0o777, 0o600, "the secret file is private");
    // The billing gRPC hop's secret likewise (the billing account of the flow above
    // shows that patient-service and billing-service were given the same one).
    let grpc_secret_file = data.join(deployer::local::BILLING_GRPC_SECRET_FILE);
    let grpc_secret = std::fs::read_to_string(&grpc_secret_file).expect("the billing gRPC secret file");
    assert_eq!(grpc_secret.trim().len(), 64, "64 generated characters");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&grpc_secret_file).expect("meta").permissions());
    assert_eq!(mode & 0o777, 0o600, "the secret file is private");
    let token_before_restart = login(&client, &base, &email, "correct-horse-battery");

    // Given addresses are used instead of private ones: a second system on the first
    // one's Postgres and broker starts neither, and shares their data.
    {
        let state: Value = state(&data);
        let port = state["postgres"].as_str().and_then(|p| p.rsplit(':').next()).expect("postgres port");
        let password = std::fs::read_to_string(data.join("postgres-password")).expect("password");
        let url = format!("postgres://pulsetrack:{}@127.0.0.1:{port}", password.trim());
        let brokers = state["kafka_brokers"].as_str().expect("brokers").to_string();
        let second_data = data.with_extension("second");
        let second_offset = port_offset();
        // Its trails are the first one's (the same tables): it must seal them with the
        // same keys, as two deployments on one database would share their secrets.
        std::fs::create_dir_all(&second_data).expect("second data folder");
        for service in AUDITED {
            let key = deployer::local::audit_key_file(service);
            std::fs::copy(data.join(&key), second_data.join(&key)).expect("the audit key");
        }
        // The given broker's login: the password only in the environment.
        let password = patient_login.password.expose().clone();
        let second = Up::start_with_env(
            &second_data,
            second_offset,
            &[
                "--database-url".into(),
                url,
                "--kafka-brokers".into(),
                brokers.clone(),
                "--kafka-username".into(),
                patient_login.username.clone(),
            ],
            &[("KAFKA_SASL_PASSWORD", password.as_str())],
        );
        assert!(second.lines().iter().any(|l| l.contains(&format!("using Kafka brokers {brokers}"))));
        assert!(!second_data.join("postgres").exists(), "no private cluster when DATABASE_URL is given");
        let (ok, status) = run(&["status", "--local"], &second_data);
        assert!(ok && !status.contains("tansu") && !status.contains("postgres "), "{status}");
        let second_base = format!("http://127.0.0.1:{}", 4004 + second_offset);
        let token = login(&client, &second_base, &email, "correct-horse-battery");
        assert!(get(&client, &format!("{second_base}/api/patients/{id}"), &token).is_some(), "shared database");
        let (ok, out) = run(&["down"], &second_data);
        assert!(ok, "{out}");
        assert!(second.wait_exit());
        let _ = std::fs::remove_dir_all(&second_data);
    }

    // A crashed service is restarted, as ECS would.
    let state: Value = state(&data);
    let billing_pid = state["processes"]["billing-service"]["pid"].as_i64().expect("billing pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(billing_pid as i32), nix::sys::signal::Signal::SIGKILL)
        .expect("kill billing");
    let line = up.wait_for("billing-service exited", Duration::from_secs(30));
    assert!(line.contains("SIGKILL") && line.contains("restart #1"), "{line}");
    up.wait_for("billing-service started (pid", Duration::from_secs(30));
    let billing = format!("http://127.0.0.1:{}/ready", 4001 + offset);
    eventually("billing-service back", || {
        client.get(&billing).send().ok().filter(|r| r.status() == 200).map(|_| json!(1))
    });

    let (ok, out) = run(&["down"], &data);
    assert!(ok, "{out}");
    assert!(up.wait_exit(), "up exits 0 after down");
    for port in [4000u16, 4001, 4002, 4004, 4005, 9001] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port + offset)).is_ok(),
            "port {} still bound",
            port + offset
        );
    }
    assert!(!data.join("postgres/postmaster.pid").exists(), "postgres stopped");
    assert!(!data.join("up.json").exists(), "state removed");

    // Second start on the same folder: the user, the patient and the account are there.
    let up = Up::start(&data, offset);
    assert_eq!(std::fs::read_to_string(&secret_file).expect("secret"), jwt_secret, "the secret is reused");
    assert!(
        get(&client, &format!("{base}/api/patients/{id}"), &token_before_restart).is_some(),
        "a token from before the restart is still valid"
    );
    let token = login(&client, &base, &email, "correct-horse-battery");
    let patient = get(&client, &format!("{base}/api/patients/{id}"), &token).expect("patient after restart");
    assert_eq!(patient["email"], patient_email.as_str());
    let admin = login(&client, &base, "admin@pulsetrack.local", &admin_password);
    assert!(get(&client, &format!("{base}/api/billing/accounts/{id}"), &admin).is_some(), "account after restart");
    // The broker kept its topics and offsets in the data folder (SQLite): the pipeline
    // runs on them after the restart.
    assert!(data.join("tansu.db").is_file(), "the broker stores in the data folder");
    assert!(
        deployer::local::tansu_db::has_header_index(&data.join("tansu.db")).expect("tansu.db readable"),
        "up indexed tansu's headers"
    );
    let again = patient_flow(&client, &base, &admin_password, "up-again");
    assert_ne!(again.id, id);
    trails_are_sealed_and_anchored_across_restarts(&client, &base, &admin, &data);

    // Ctrl-C: only `up` gets it (the services have their own process groups) and stops
    // them in reverse dependency order, none of them seen as crashed.
    up.ctrl_c();
    let output = Arc::clone(&up.output);
    assert!(up.wait_exit(), "up exits 0 on Ctrl-C");
    let lines = output.lock().expect("lock").clone();
    assert!(!lines.iter().any(|l| l.contains(" exited (")), "a service was seen crashing: {lines:#?}");
    let stopped: Vec<&String> = lines.iter().filter(|l| l.contains("| stopped ")).collect();
    let position = |name: &str| {
        stopped
            .iter()
            .position(|l| l.ends_with(&format!("stopped {name}")))
            .unwrap_or_else(|| panic!("{name} not stopped: {stopped:#?}"))
    };
    assert!(position("api-gateway") < position("patient-service"), "{stopped:#?}");
    assert!(position("patient-service") < position("billing-service"), "{stopped:#?}");
    assert!(position("billing-service") < position("postgres"), "{stopped:#?}");
    assert!(!data.join("postgres/postmaster.pid").exists(), "postgres stopped");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn ctrl_c_during_start_up_stops_what_was_started() {
    let data = std::env::temp_dir().join(format!("pulsetrack-interrupted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let up = Up::spawn(&data, port_offset(), &[]);
    up.wait_for("tansu ready", Duration::from_secs(120));
    // The state file is written from the first process on, so `down` could find them.
    let state: Value = state(&data);
    let tansu = state["processes"]["tansu"]["pid"].as_u64().expect("tansu's pid") as i32;
    assert!(data.join("postgres/postmaster.pid").is_file(), "postgres runs");
    up.ctrl_c();
    let output = Arc::clone(&up.output);
    assert!(!up.wait_exit(), "an interrupted start-up exits non-zero");
    let lines = output.lock().expect("lock").clone();
    assert!(lines.iter().any(|l| l.contains("interrupted by Ctrl-C")), "{lines:#?}");
    assert!(!data.join("postgres/postmaster.pid").exists(), "postgres stopped");
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(tansu), None).is_err(), "tansu stopped");
    assert!(!data.join("up.json").exists(), "state removed");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_sigkilled_up_takes_everything_it_started_with_it() {
    let data = std::env::temp_dir().join(format!("pulsetrack-killed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let offset = port_offset();
    let mut up = Up::start(&data, offset);
    let state: Value = state(&data);
    let mut pids: Vec<(String, i32)> = state["processes"]
        .as_object()
        .expect("processes")
        .iter()
        .map(|(name, p)| (name.clone(), p["pid"].as_i64().expect("pid") as i32))
        .collect();
    pids.push(("postgres".into(), state["postgres_pid"].as_i64().expect("postgres pid") as i32));
    assert_eq!(pids.len(), 7, "{pids:?}");
    up.child.kill().expect("SIGKILL to up");
    let _ = up.child.wait();
    let started = std::time::Instant::now();
    let running = |pids: &[(String, i32)]| -> Vec<String> {
        pids.iter()
            .filter(|(_, pid)| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
                })
            })
            .map(|(name, _)| name.clone())
            .collect()
    };
    while !running(&pids).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "still running after up was killed: {:?}", running(&pids));
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("all 7 processes gone {:.1}s after up was SIGKILLed", started.elapsed().as_secs_f64());
    assert!(std::net::TcpListener::bind(("127.0.0.1", 4004 + offset)).is_ok(), "the gateway's port is free");
    // The guard removes the state file once everything has stopped.
    while data.join("up.json").exists() {
        assert!(started.elapsed() < Duration::from_secs(60), "the state file is still there");
        std::thread::sleep(Duration::from_millis(100));
    }
    let guard_log = std::fs::read_to_string(data.join("guard.log")).unwrap_or_default();
    assert!(guard_log.contains("ended without stopping"), "{guard_log}");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn down_without_up_says_so() {
    let data = std::env::temp_dir().join(format!("pulsetrack-down-{}", std::process::id()));
    let (ok, out) = run(&["down"], &data);
    assert!(ok, "{out}");
    assert!(out.contains("nothing runs"), "{out}");
    let (ok, out) = run(&["status", "--local"], &data);
    assert!(!ok && out.contains("no `deployer up` runs"), "{out}");
}

#[test]
fn up_refuses_missing_binaries_before_starting_anything() {
    let data = std::env::temp_dir().join(format!("pulsetrack-nobin-{}", std::process::id()));
    let empty = std::env::temp_dir().join(format!("pulsetrack-nobin-bin-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("dir");
    let out = Command::new(deployer())
        .args(["up", "--kafka-brokers", "127.0.0.1:1", "--database-url", "postgres://x@127.0.0.1:1"])
        .arg("--data-dir")
        .arg(&data)
        .arg("--bin-dir")
        .arg(&empty)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("missing in") && text.contains("api-gateway"), "{text}");
    assert!(!data.join("postgres").exists(), "nothing was started");
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&empty);
}

/// The seed's load script through the gateway at `base`, as the workspace's `loadtest`
/// replays it with the script's own bodies (scenario 3: 2 USER signups and logins, 400
/// creates at 100 connections, 600 lists at 120): every request of every phase answered
/// 2xx. The latencies are printed for the CI log, never asserted: benchmarks measure
/// them (bench/run.sh), a timed assertion on a shared machine would only be flaky.
fn the_seed_s_load_script_runs_without_errors(base: &str) {
    let loadtest = bin_dir().join("loadtest");
    assert!(
        loadtest.is_file(),
        "loadtest is not built in {}: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        bin_dir().display()
    );
    let out = Command::new(&loadtest)
        .args(["--base-url", base, "--scenario", "3", "--json", "--no-progress"])
        .output()
        .expect("run loadtest");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "loadtest failed ({}):\n{stderr}{stdout}", out.status);
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("loadtest's JSON report: {e}\n{stdout}"));
    assert_eq!(report["mode"], "gateway", "{report}");
    assert_eq!(report["scenario"], 3, "{report}");
    let phases = report["phases"].as_array().expect("the report's phases");
    eprintln!("seed load script, scenario 3, through {base}:");
    for phase in phases {
        eprintln!(
            "  {:<15} {:>4} requests at {:>3}: p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms",
            phase["name"].as_str().unwrap_or("?"),
            phase["requests"].as_u64().unwrap_or_default(),
            phase["concurrency"].as_u64().unwrap_or_default(),
            phase["p50_ms"].as_f64().unwrap_or(f64::NAN),
            phase["p95_ms"].as_f64().unwrap_or(f64::NAN),
            phase["p99_ms"].as_f64().unwrap_or(f64::NAN),
        );
    }
    let expected = [("signup", 2, 1), ("login", 2, 1), ("create patient", 400, 100), ("list patients", 600, 120)];
    let names: Vec<&str> = phases.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, expected.map(|(name, _, _)| name), "the phases, in order");
    for (phase, (name, count, concurrency)) in phases.iter().zip(expected) {
        assert_eq!(
            (phase["via"].as_str(), phase["concurrency"].as_u64()),
            (Some("gateway"), Some(concurrency)),
            "{name}"
        );
        // 2xx, 4xx, 5xx and transport failures ("other") are counted apart.
        let outcomes = ["requests", "ok", "client_errors", "server_errors", "other"].map(|key| phase[key].as_u64());
        assert_eq!(outcomes, [Some(count), Some(count), Some(0), Some(0), Some(0)], "{name}: {phase}");
    }
}

/// How many partitions `topic` has (`Some(0)`: no such topic), asked by a client with
/// `config`; `None` when the broker answers no metadata within 10 s.
fn topic_partitions(config: rdkafka::ClientConfig, topic: &str) -> Option<usize> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let client: BaseConsumer = config.create().expect("Kafka client");
    let metadata = client.fetch_metadata(Some(topic), Duration::from_secs(10)).ok()?;
    Some(metadata.topics().iter().find(|t| t.name() == topic).map_or(0, |t| t.partitions().len()))
}

/// The login `up` generated for `service` at its private broker (a private file).
fn broker_login(data: &std::path::Path, service: &str) -> pulsetrack_common::kafka::ScramLogin {
    use std::os::unix::fs::PermissionsExt;
    let file = deployer::local::tansu_scram::password_file(data, service);
    let password = std::fs::read_to_string(&file).expect("the broker password file").trim().to_string();
    assert_eq!(password.len(), 32, "32 generated characters");
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the password file is private");
    pulsetrack_common::kafka::ScramLogin {
        username: service.into(),
        password: pulsetrack_common::config::Secret::new(password),
    }
}

/// As on AWS: every service's connections are its own role's, over TLS (the services
/// run with verify-full against the cluster's CA), and the roles' passwords are private files.
fn services_use_their_own_roles_over_verified_tls(data: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let sessions: Vec<(String, String, bool)> = query_cluster(
        data,
        "SELECT a.datname::text, a.usename::text, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.datname LIKE '%_service'",
    );
    for database in ["auth_service", "patient_service", "billing_service", "analytics_service"] {
        let role = format!("{database}_app");
        let of: Vec<_> = sessions.iter().filter(|(d, _, _)| d == database).collect();
        assert!(!of.is_empty(), "{database} has connections: {sessions:?}");
        assert!(of.iter().all(|(_, user, ssl)| *user == role && *ssl), "{database}: {of:?}");
        let file = data.join(format!("{role}-password"));
        let mode = std::fs::metadata(&file).expect("role password file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

/// Migrations ran as a step of their own (`<service> migrate`, whose line `up` prints);
/// no service process has the admin role's credentials in its environment, and those
/// with a database only check the migrations.
fn no_service_holds_the_admin_role(data: &std::path::Path, up: &Up) {
    let state = state(data);
    for name in SERVICES {
        let pid = state["processes"][name]["pid"].as_i64().unwrap_or_else(|| panic!("{name}'s pid"));
        let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("the process's environment");
        let vars: Vec<String> = environ.split(|b| *b == 0).map(|v| String::from_utf8_lossy(v).into_owned()).collect();
        let has = |prefix: &str| vars.iter().any(|v| v.starts_with(prefix));
        assert!(!has("DATABASE_ADMIN_USER=") && !has("DATABASE_ADMIN_PASSWORD="), "{name} holds the admin role");
        let database = name != "api-gateway";
        assert_eq!(has("DATABASE_MIGRATIONS=check"), database, "{name}");
        if database {
            let said = format!("{name}: database {}", name.replace('-', "_"));
            assert!(up.lines().iter().any(|l| l.contains(&said) && l.contains("migrated")), "{said}");
        }
    }
}

/// The services that keep an audit trail.
const AUDITED: [&str; 4] = ["auth-service", "patient-service", "billing-service", "analytics-service"];

/// Every trail verifies through the gateway after a restart (its key is kept in the
/// data folder, 0600, and reused), and each service has anchored its head into its
/// own append-only file there.
fn trails_are_sealed_and_anchored_across_restarts(client: &Client, base: &str, admin: &str, data: &std::path::Path) {
    for service in AUDITED {
        let key = data.join(deployer::local::audit_key_file(service));
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).expect("key").permissions());
        assert_eq!(mode & 0o777, 0o600, "{service}'s audit key is private");
    }
    let anchors = data.join(deployer::local::AUDIT_ANCHORS_DIR);
    eventually("every trail anchored", || {
        AUDITED.iter().all(|s| anchors.join(format!("{s}.jsonl")).is_file()).then(|| json!(1))
    });
    let report = get(client, &format!("{base}/api/audit/verify"), admin).expect("the trails verified");
    assert_eq!(report["intact"], true, "{report}");
    for trail in report["trails"].as_array().expect("trails") {
        assert!(trail["entries"].as_i64() > Some(0) && trail["anchor"]["seq"].as_i64() > Some(0), "{trail}");
    }
}

/// The private cluster makes a WAL segment without writing 16 MB of zeros first and keeps
/// used ones to recycle: the backend that needed a new segment zero-filled it inside its
/// commit, which stalled batches of creates during checkpoints (bench/ISSUE17.md).
fn wal_segments_are_recycled_not_zero_filled(data: &std::path::Path) {
    let settings: Vec<(String, String)> = query_cluster(
        data,
        "SELECT name, setting || coalesce(unit, '') FROM pg_settings \
         WHERE name IN ('wal_init_zero', 'min_wal_size') ORDER BY name",
    );
    let expected = [("min_wal_size", "1024MB"), ("wal_init_zero", "off")].map(|(n, v)| (n.to_string(), v.to_string()));
    assert_eq!(settings, expected);
}

/// Rows of `sql`, run in the private cluster's `postgres` database as the cluster's user.
fn query_cluster<T>(data: &std::path::Path, sql: &'static str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let state: Value = state(data);
    let port = state["postgres"].as_str().and_then(|p| p.rsplit(':').next()).expect("postgres port").to_string();
    let password = std::fs::read_to_string(data.join("postgres-password")).expect("password");
    let url = format!("postgres://pulsetrack:{}@127.0.0.1:{port}/postgres", password.trim());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect as the cluster's user");
        sqlx::query_as(sql).fetch_all(&mut conn).await.expect(sql)
    })
}

/// `deployer top` (not on a terminal: plain lines) reads every service's /metrics; the
/// gateway's requests during the view show up as a rate.
fn top_shows_every_service_from_its_metrics(client: &Client, base: &str, data: &std::path::Path) {
    let traffic = {
        let (client, base) = (client.clone(), base.to_string());
        std::thread::spawn(move || {
            for _ in 0..40 {
                let _ = client.get(format!("{base}/api/patients")).send();
                std::thread::sleep(Duration::from_millis(25));
            }
        })
    };
    let (ok, view) = run(&["top", "--count", "1", "--interval", "1"], data);
    traffic.join().expect("traffic");
    assert!(ok, "{view}");
    assert!(view.lines().any(|l| l.contains("SERVICE") && l.contains("REQ/S") && l.contains("P99")), "{view}");
    for name in SERVICES {
        assert!(view.lines().any(|l| l.split_whitespace().nth(1) == Some(name)), "top shows {name}:\n{view}");
    }
    let gateway = view.lines().find(|l| l.split_whitespace().nth(1) == Some("api-gateway")).expect("gateway row");
    let rate: f64 = gateway.split_whitespace().nth(2).and_then(|r| r.parse().ok()).expect("a rate");
    assert!(rate > 0.0, "the gateway's requests show as a rate:\n{view}");
    let patients = view.lines().find(|l| l.split_whitespace().nth(1) == Some("patient-service")).expect("row");
    assert!(!patients.contains("unreachable"), "{view}");
}

/// `up --prometheus`: Prometheus (Debian's package) scrapes every service, one job per
/// service named after it, and their metrics are queryable through its API.
#[test]
fn up_with_prometheus_scrapes_every_service() {
    if support::system::on_path("prometheus").is_none() {
        assert!(std::env::var_os("CI").is_none(), "prometheus is missing: scripts/test.sh installs Debian's package");
        eprintln!("prometheus not installed: skipped (apt-get install prometheus)");
        return;
    }
    let data = std::env::temp_dir().join(format!("pulsetrack-up-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let offset = port_offset();
    let _up = Up::start_with(&data, offset, &["--prometheus".to_string()]);
    let config = std::fs::read_to_string(data.join("prometheus/prometheus.yml")).expect("the generated config");
    for name in SERVICES {
        assert!(config.contains(&format!("job_name: {name}\n")), "{config}");
    }
    let client = Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let api = format!("http://127.0.0.1:{}/api/v1", 9090 + offset);
    // Scraped every 5 s: every target up, and the gateway's request counter there.
    eventually("every service scraped and up", || {
        let targets: Value = client.get(format!("{api}/targets")).send().ok()?.json().ok()?;
        let active = targets["data"]["activeTargets"].as_array()?.clone();
        let up = active.iter().filter(|t| t["health"] == "up").count();
        (active.len() == SERVICES.len() && up == SERVICES.len()).then_some(targets)
    });
    eventually("the gateway's requests in Prometheus", || {
        let query = "http_server_requests_total{job=\"api-gateway\"}";
        let result: Value = client.get(format!("{api}/query")).query(&[("query", query)]).send().ok()?.json().ok()?;
        (!result["data"]["result"].as_array()?.is_empty()).then_some(result)
    });
    let (ok, status) = run(&["status", "--local"], &data);
    assert!(ok && status.contains("prometheus") && !status.contains("NOT READY"), "{status}");
}

#[test]
fn alarms_are_recognised_in_every_format_up_prints() {
    let alarms = [
        "patient-service | 2026-12-06T19:58:00.1Z  WARN patient_service::outbox: cannot create topics yet",
        "tansu | \u{1b}[2m2026-12-06T19:58:00Z\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m tansu_broker: TopicAlreadyExists",
        "postgres | 2026-12-06 19:58:00.123 UTC [42] WARNING:  could not flush dirty data",
        "registry | time=\"2026-12-06T19:58:00Z\" level=warning msg=\"No HTTP secret provided\"",
        "analytics-service | {\"level\":\"ERROR\",\"message\":\"response failed\"}",
    ];
    let quiet = ["api-gateway | 2026-12-06T19:58:00Z  INFO api_gateway: listening", "PulseTrack is up in 3.1s"];
    for line in alarms {
        assert!(support::system::is_alarm(line), "{line}");
    }
    for line in quiet {
        assert!(!support::system::is_alarm(line), "{line}");
    }
    let lines: Vec<String> = [quiet[0], alarms[0], quiet[1], alarms[1]].map(String::from).to_vec();
    assert_eq!(support::system::alarms_before_up(&lines), [alarms[0]]);
}
