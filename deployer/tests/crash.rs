//! The crash suite: `deployer up` under load, one process killed with SIGKILL, then
//! the invariant over the databases once it has recovered: every patient whose create
//! got 201 has exactly one billing account and exactly one `PATIENT_CREATED` event in
//! analytics, no patient has more than one of either, and no outbox row is dead. One
//! test per process: the broker, Postgres, and each of the five services.
//! `scripts/crash-suite.sh` runs the same faults longer and reports the numbers.

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use reqwest::blocking::Client;
use serde_json::{Value, json};
use support::system::{Up, bin_dir, port_offset, signup, state};

/// Concurrent clients creating patients, as in the runs.
const CLIENTS: usize = 8;
/// The load runs this long before the kill and (by default) this long after it;
/// `scripts/crash-suite.sh` sets `PULSETRACK_CRASH_LOAD_SECS` for a longer run.
const BEFORE_KILL: Duration = Duration::from_secs(3);
const AFTER_KILL: Duration = Duration::from_secs(5);

fn after_kill() -> Duration {
    std::env::var("PULSETRACK_CRASH_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(AFTER_KILL, Duration::from_secs)
}
/// How long the system has to deliver everything after the load ends.
const RECOVERY: Duration = Duration::from_secs(120);

struct System {
    up: Up,
    data: PathBuf,
    base: String,
    token: String,
}

impl System {
    fn start(tag: &str) -> Self {
        assert!(bin_dir().join("patient-service").is_file(), "build the services first (scripts/test.sh does)");
        let data = std::env::temp_dir().join(format!("pulsetrack-crash-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let offset = port_offset();
        let up = Up::start(&data, offset);
        let base = format!("http://127.0.0.1:{}", 4004 + offset);
        let token = signup(&client(), &base, &format!("crash-{tag}@example.com"));
        Self { up, data, base, token }
    }

    fn state(&self) -> Value {
        state(&self.data)
    }

    /// The pid of `name` (a process `up` runs, or the private Postgres).
    fn pid(&self, name: &str) -> i32 {
        let state = self.state();
        let pid = match name {
            "postgres" => state["postgres_pid"].as_i64(),
            _ => state["processes"][name]["pid"].as_i64(),
        };
        i32::try_from(pid.unwrap_or_else(|| panic!("no pid of {name} in {state}"))).expect("pid")
    }

    fn database_url(&self, database: &str) -> String {
        let state = self.state();
        let address = state["postgres"].as_str().expect("postgres address");
        let address = address.rsplit('@').next().unwrap_or(address);
        let password = std::fs::read_to_string(self.data.join("postgres-password")).expect("password");
        format!("postgres://pulsetrack:{}@{address}/{database}", password.trim())
    }
}

impl Drop for System {
    fn drop(&mut self) {
        let _ = support::system::run(&["down"], &self.data);
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

/// Creates patients from `CLIENTS` threads until `stop`; returns the ids that got 201
/// and how many requests failed otherwise.
fn load(system: &System, stop: Arc<AtomicBool>) -> JoinHandle<(Vec<String>, usize)> {
    let (base, token) = (system.base.clone(), system.token.clone());
    std::thread::spawn(move || {
        let failed = Arc::new(AtomicUsize::new(0));
        let workers: Vec<JoinHandle<Vec<String>>> = (0..CLIENTS)
            .map(|worker| {
                let (base, token, stop, failed) = (base.clone(), token.clone(), stop.clone(), failed.clone());
                std::thread::spawn(move || {
                    let client = client();
                    let mut created = Vec::new();
                    for n in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let body = json!({ "name": "Crash Test", "email": format!("p{worker}-{n}@crash.example"),
                            "address": "1 Test Street", "dateOfBirth": "1980-01-01", "registeredDate": "2026-11-27" });
                        let response =
                            client.post(format!("{base}/api/patients")).bearer_auth(&token).json(&body).send();
                        match response {
                            Ok(r) if r.status() == 201 => {
                                let id = r.json::<Value>().ok().and_then(|v| v["id"].as_str().map(String::from));
                                created.push(id.expect("a created patient has an id"));
                            }
                            _ => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                    created
                })
            })
            .collect();
        let created = workers.into_iter().flat_map(|w| w.join().expect("worker")).collect();
        (created, failed.load(Ordering::Relaxed))
    })
}

/// `key → count` of a grouped query.
async fn counts(db: &sqlx::PgPool, query: &'static str) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(query).fetch_all(db).await?;
    Ok(rows.into_iter().collect())
}

/// What the databases say about the created patients.
#[derive(Debug)]
struct Tally {
    missing_patients: usize,
    missing_accounts: usize,
    missing_events: usize,
    duplicated: Vec<String>,
    dead_outbox_rows: i64,
}

async fn tally(system: &System, created: &BTreeSet<String>) -> Result<Tally, sqlx::Error> {
    let connect = |database: &str| sqlx::PgPool::connect_lazy(&system.database_url(database));
    let (patient_db, billing_db, analytics_db) =
        (connect("patient_service")?, connect("billing_service")?, connect("analytics_service")?);
    let patients = counts(&patient_db, "SELECT id::text, 1::bigint FROM patients").await?;
    let dead =
        counts(&patient_db, "SELECT destination, count(*) FROM outbox WHERE dead_at IS NOT NULL GROUP BY destination")
            .await?;
    let accounts =
        counts(&billing_db, "SELECT patient_id::text, count(*) FROM billing_accounts GROUP BY patient_id").await?;
    let events = counts(
        &analytics_db,
        "SELECT patient_id::text, count(*) FROM patient_events WHERE event_type = 'PATIENT_CREATED' GROUP BY patient_id",
    )
    .await?;
    for db in [patient_db, billing_db, analytics_db] {
        db.close().await;
    }
    let missing = |map: &BTreeMap<String, i64>| created.iter().filter(|id| !map.contains_key(*id)).count();
    let duplicated = accounts.iter().chain(&events).filter(|(_, n)| **n > 1).map(|(id, _)| id.clone()).collect();
    Ok(Tally {
        missing_patients: missing(&patients),
        missing_accounts: missing(&accounts),
        missing_events: missing(&events),
        duplicated,
        dead_outbox_rows: dead.values().sum(),
    })
}

/// Kills `target` with SIGKILL during the load and checks the invariant afterwards.
fn survives_sigkill_of(target: &str) {
    let system = System::start(target);
    let stop = Arc::new(AtomicBool::new(false));
    let load = load(&system, stop.clone());
    std::thread::sleep(BEFORE_KILL);
    let pid = system.pid(target);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).expect("SIGKILL");
    let killed = Instant::now();
    let exited = system.up.wait_for(&format!("{target} exited"), Duration::from_secs(30));
    assert!(exited.contains("restart #1"), "{exited}");
    system.up.wait_for(&format!("{target} started"), Duration::from_secs(60));
    let restart = killed.elapsed();
    std::thread::sleep(after_kill().saturating_sub(killed.elapsed()));
    stop.store(true, Ordering::Relaxed);
    let (created, failed) = load.join().expect("load");
    let load_ended = killed.elapsed();
    let created: BTreeSet<String> = created.into_iter().collect();
    assert!(created.len() >= 20, "too few creates to judge ({} created, {failed} failed)", created.len());

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // How far behind the pipeline was when the load stopped (delayed, not lost).
    let behind = runtime.block_on(tally(&system, &created)).ok();
    let deadline = Instant::now() + RECOVERY;
    let tally = loop {
        let tally = match runtime.block_on(tally(&system, &created)) {
            Ok(tally) => tally,
            Err(e) if Instant::now() < deadline => {
                eprintln!("databases not readable yet: {e}");
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
            Err(e) => panic!("the databases did not come back: {e}"),
        };
        assert_eq!(tally.missing_patients, 0, "a patient that got 201 is not in the database: {tally:?}");
        assert!(tally.duplicated.is_empty(), "duplicated downstream: {tally:?}");
        assert_eq!(tally.dead_outbox_rows, 0, "outbox rows went dead: {tally:?}");
        if tally.missing_accounts + tally.missing_events == 0 || Instant::now() >= deadline {
            break tally;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        (tally.missing_accounts, tally.missing_events),
        (0, 0),
        "after {}s, of {} created patients some have no billing account or no event: {tally:?}",
        RECOVERY.as_secs(),
        created.len()
    );
    // One line per fault, which scripts/crash-suite.sh collects.
    eprintln!(
        "CRASH-RESULT fault={target} created={} failed_requests={failed} restarted_s={:.1} load_after_kill_s={:.1} \
         behind_accounts={} behind_events={} all_delivered_s={:.1} lost=0 duplicated=0",
        created.len(),
        restart.as_secs_f64(),
        load_ended.as_secs_f64(),
        behind.as_ref().map_or(-1, |t| t.missing_accounts as i64),
        behind.as_ref().map_or(-1, |t| t.missing_events as i64),
        killed.elapsed().as_secs_f64()
    );
}

#[test]
fn sigkill_of_the_broker_loses_nothing() {
    survives_sigkill_of("tansu");
}

#[test]
fn sigkill_of_postgres_loses_nothing() {
    survives_sigkill_of("postgres");
}

#[test]
fn sigkill_of_patient_service_loses_nothing() {
    survives_sigkill_of("patient-service");
}

#[test]
fn sigkill_of_billing_service_loses_nothing() {
    survives_sigkill_of("billing-service");
}

#[test]
fn sigkill_of_analytics_service_loses_nothing() {
    survives_sigkill_of("analytics-service");
}

#[test]
fn sigkill_of_auth_service_loses_nothing() {
    survives_sigkill_of("auth-service");
}

#[test]
fn sigkill_of_the_gateway_loses_nothing() {
    survives_sigkill_of("api-gateway");
}
