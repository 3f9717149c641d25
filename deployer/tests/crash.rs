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

use pulsetrack_common::testing::{Storage, TestBroker};
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
        Self::start_with(tag, &[])
    }

    /// With extra arguments for `up` (an external broker).
    fn start_with(tag: &str, extra: &[String]) -> Self {
        assert!(bin_dir().join("patient-service").is_file(), "build the services first (scripts/test.sh does)");
        let data = std::env::temp_dir().join(format!("pulsetrack-crash-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let offset = port_offset();
        let up = Up::start_with(&data, offset, extra);
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
    // Emails differ between the loads of one test (an email is unique).
    static LOADS: AtomicUsize = AtomicUsize::new(0);
    let run = LOADS.fetch_add(1, Ordering::Relaxed);
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
                        let body = json!({ "name": "Crash Test", "email": format!("p{run}-{worker}-{n}@crash.example"),
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

/// Runs the load for `duration`; returns the ids that got 201.
fn load_for(system: &System, duration: Duration) -> BTreeSet<String> {
    let stop = Arc::new(AtomicBool::new(false));
    let load = load(system, stop.clone());
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let (created, failed) = load.join().expect("load");
    assert!(created.len() >= 20, "too few creates to judge ({} created, {failed} failed)", created.len());
    created.into_iter().collect()
}

/// Polls the databases until every patient of `created` has its billing account and,
/// among them, every one of `with_event` its event (or [`RECOVERY`] has passed);
/// checks on the way that nothing is duplicated or dead.
fn settled(system: &System, created: &BTreeSet<String>, with_event: &BTreeSet<String>) -> (Tally, Tally) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let deadline = Instant::now() + RECOVERY;
    loop {
        let read = runtime.block_on(async {
            Ok::<_, sqlx::Error>((tally(system, created).await?, tally(system, with_event).await?))
        });
        let (all, evented) = match read {
            Ok(tallies) => tallies,
            Err(e) if Instant::now() < deadline => {
                eprintln!("databases not readable yet: {e}");
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
            Err(e) => panic!("the databases did not come back: {e}"),
        };
        assert_eq!(all.missing_patients, 0, "a patient that got 201 is not in the database: {all:?}");
        assert!(all.duplicated.is_empty(), "duplicated downstream: {all:?}");
        assert_eq!(all.dead_outbox_rows, 0, "outbox rows went dead: {all:?}");
        if all.missing_accounts + evented.missing_events == 0 || Instant::now() >= deadline {
            return (all, evented);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// How the patient topic is lost under load.
enum TopicLoss {
    /// Deleted from the (durable) broker `up` runs, as an operator's mistake would.
    Deleted,
    /// With the broker: tansu on memory storage, given to `up` as an external broker,
    /// SIGKILLed and started again without its topics, messages, producer state or the
    /// group's offsets.
    EmptyBroker(Box<TestBroker>),
}

/// The patient topic vanishes while creates run. The events the old topic held that
/// analytics had not consumed yet are gone with it; everything else must heal:
/// patient-service's producer and its outbox (it recreates the topic), and
/// analytics-service, whose consumer ends its process when its topic vanishes, so that
/// `up` starts a fresh one that reads the new topic from its beginning. Afterwards every
/// patient has its account, every patient created before the loss or after the
/// recovery its event, and nothing is duplicated.
fn survives_topic_loss(tag: &str, mut loss: TopicLoss) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let extra = match &loss {
        TopicLoss::Deleted => vec![],
        TopicLoss::EmptyBroker(broker) => vec!["--kafka-brokers".to_string(), broker.brokers()],
    };
    let system = System::start_with(tag, &extra);
    let before = load_for(&system, Duration::from_secs(2));
    let (all, _) = settled(&system, &before, &before);
    assert_eq!((all.missing_accounts, all.missing_events), (0, 0), "before the loss: {all:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let around = load(&system, stop.clone());
    std::thread::sleep(Duration::from_secs(1));
    let lost = Instant::now();
    match &mut loss {
        TopicLoss::Deleted => runtime.block_on(delete_patient_topic(&system.state()["kafka_brokers"], &system.data)),
        TopicLoss::EmptyBroker(broker) => {
            broker.kill9();
            std::thread::sleep(Duration::from_secs(1));
            runtime.block_on(broker.restart());
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let (around, _) = around.join().expect("load");
    // The crash-only path: analytics-service ended itself and `up` started it again.
    let exited = system.up.wait_for("analytics-service exited", RECOVERY);
    assert!(exited.contains("restart #1"), "{exited}");
    system.up.wait_for("analytics-service started", RECOVERY);
    let restarted = lost.elapsed();

    let after = load_for(&system, Duration::from_secs(2));
    let everyone: BTreeSet<String> = before.iter().chain(&around).chain(&after).cloned().collect();
    let evented: BTreeSet<String> = before.iter().chain(&after).cloned().collect();
    let (mut all, evented_tally) = settled(&system, &everyone, &evented);
    assert_eq!(all.missing_accounts, 0, "patients without a billing account: {all:?}");
    assert_eq!(
        evented_tally.missing_events, 0,
        "patients created before the loss or after the recovery without their event: {evented_tally:?}"
    );
    // Events of the patients created around the loss may still be on their way: lost
    // are those still missing once the count has stopped moving.
    loop {
        std::thread::sleep(Duration::from_secs(3));
        let now = runtime.block_on(tally(&system, &everyone)).expect("databases");
        if now.missing_events == all.missing_events {
            break;
        }
        all = now;
    }
    assert!(all.duplicated.is_empty(), "duplicated downstream: {all:?}");
    eprintln!(
        "CRASH-RESULT fault={tag} created={} restarted_s={:.1} all_delivered_s={:.1} \
         events_lost_with_the_topic={} duplicated=0",
        everyone.len(),
        restarted.as_secs_f64(),
        lost.elapsed().as_secs_f64(),
        all.missing_events
    );
}

/// Deletes the patient topic, as an operator's `kafka-topics --delete` would (logged
/// in as patient-service: the private broker serves only clients that log in).
async fn delete_patient_topic(brokers: &Value, data: &std::path::Path) {
    use pulsetrack_common::{config::Secret, kafka};
    use rdkafka::admin::{AdminClient, AdminOptions};
    let brokers = brokers.as_str().expect("the state names the brokers");
    let file = deployer::local::tansu_scram::password_file(data, "patient-service");
    let password = std::fs::read_to_string(&file).expect("patient-service's broker password").trim().to_string();
    let login = kafka::ScramLogin { username: "patient-service".into(), password: Secret::new(password) };
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        kafka::KafkaConfig::local(brokers).with_login(login).client_config().create().expect("admin client");
    let deleted = admin
        .delete_topics(&[pulsetrack_common::kafka::PATIENT_TOPIC], &AdminOptions::new())
        .await
        .expect("delete topics");
    assert!(deleted.iter().all(Result::is_ok), "the topic was not deleted: {deleted:?}");
}

// Passes alone (3 of 3 runs on 2026-12-05: 1,772-1,848 patients, analytics restarted
// 2.2 s after the loss, 0-4 events lost with the deleted topic, nothing duplicated), but
// not reliably beside the whole suite: there, once, tansu 0.6's SQLite storage
// panicked on a fetch racing the deletion ("more or less than one row",
// tansu-storage lite.rs:503) and kept running with its storage gone (every request
// "UnableToSend"), so no client ever heard that the topic was missing. That is the
// broker's defect (`up` now kills and restarts a tansu that logs a panic, which has not
// been seen to race this test since); the consumer's side is tested deterministically
// in analytics-service's `a_requested_reset_reads_the_topic_from_its_beginning`.
#[test]
#[ignore = "tansu 0.6's SQLite storage can panic on a fetch racing a topic deletion (see the comment)"]
fn a_deleted_topic_is_recreated_and_followed_by_a_fresh_consumer() {
    survives_topic_loss("deleted-topic", TopicLoss::Deleted);
}

// Fails because of the broker: after tansu 0.6 restarts on memory storage, its new
// topic serves the same offsets more than once (a fresh consumer from offset 0 of one
// partition read offsets 1, 2, 3 twice, 396 records for a high watermark of 203, on
// 2026-12-05), so a consumer's position runs past the high watermark and the records
// appended next, below it, are never fetched. Our side of the recovery happens (the
// consumer ends, `up` restarts it, the successor reads from the beginning: visible in
// this test's output); `up` and the tests run tansu on SQLite, whose offsets are sane.
#[test]
#[ignore = "tansu 0.6's memory storage repeats offsets after a restart (see the comment)"]
fn a_broker_that_comes_back_empty_is_followed_by_a_fresh_consumer() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let broker = runtime.block_on(TestBroker::start_direct(Storage::Memory));
    survives_topic_loss("empty-broker", TopicLoss::EmptyBroker(Box::new(broker)));
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
    // The same halves `settled` waited on (its two tallies are read one after the
    // other: events that arrive between the reads are missing from the first only).
    let (accounts, events) = settled(&system, &created, &created);
    assert_eq!(
        (accounts.missing_accounts, events.missing_events),
        (0, 0),
        "within {}s, of {} created patients some have no billing account or no event: {accounts:?} {events:?}",
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
