//! `loadtest`: the seed's load method (sign up 2 users, log in, create patients
//! concurrently, list patients concurrently) against a running PulseTrack, plus the
//! end-to-end delay from a create response to the billing account and the analytics
//! event existing.

mod stats;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{StreamExt, stream};
use reqwest::{Client, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use stats::{Recorder, Summary};

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The gateway.
    #[arg(long, env = "LOADTEST_BASE_URL", default_value = "http://127.0.0.1:4004")]
    base_url: String,
    /// One of the seed's scenarios: 1 (500 creates at 10, 1000 lists at 20),
    /// 2 (200 at 20, 400 at 40), 3 (400 at 100, 600 at 120). Overrides the counts.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3))]
    scenario: Option<u8>,
    #[arg(long, default_value_t = 500)]
    creates: usize,
    #[arg(long, default_value_t = 10)]
    create_concurrency: usize,
    #[arg(long, default_value_t = 1000)]
    lists: usize,
    #[arg(long, default_value_t = 20)]
    list_concurrency: usize,
    /// Sequential creates whose billing account and analytics event are awaited (0: skip).
    #[arg(long, default_value_t = 0)]
    e2e: usize,
    /// An ADMIN account, needed to read analytics in the e2e phase.
    #[arg(long, env = "PULSETRACK_ADMIN_EMAIL")]
    admin_email: Option<String>,
    #[arg(long, env = "PULSETRACK_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Phase {
    name: &'static str,
    #[serde(flatten)]
    summary: Summary,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    match args.scenario {
        Some(1) => (args.creates, args.create_concurrency, args.lists, args.list_concurrency) = (500, 10, 1000, 20),
        Some(2) => (args.creates, args.create_concurrency, args.lists, args.list_concurrency) = (200, 20, 400, 40),
        Some(3) => (args.creates, args.create_concurrency, args.lists, args.list_concurrency) = (400, 100, 600, 120),
        _ => {}
    }
    if args.create_concurrency == 0 || args.list_concurrency == 0 {
        bail!("concurrency must be at least 1");
    }
    let client = Client::builder().pool_max_idle_per_host(256).timeout(Duration::from_secs(30)).build()?;
    let base = args.base_url.trim_end_matches('/').to_string();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut phases = Vec::new();

    // Signup and login: 2 users, as the seed's script.
    let mut signup = Recorder::default();
    let mut login = Recorder::default();
    let started = Instant::now();
    let mut token = None;
    for i in 0..2 {
        let email = format!("load-{run}-{i}@example.com");
        let body = json!({"email": email, "username": format!("load{i}"), "password": "load-test-password"});
        let (status, _, latency) = send(client.post(format!("{base}/auth/signup")).json(&body)).await;
        signup.record(status, latency);
        let body = json!({"email": email, "password": "load-test-password"});
        let (status, body, latency) = send(client.post(format!("{base}/auth/login")).json(&body)).await;
        login.record(status, latency);
        if token.is_none() {
            token = body.and_then(|b| b["token"].as_str().map(str::to_string));
        }
    }
    let wall = started.elapsed();
    phases.push(Phase { name: "signup", summary: signup.summary(wall) });
    phases.push(Phase { name: "login", summary: login.summary(wall) });
    let token = token.context("login returned no token; is the system up?")?;

    let creates = run_phase(args.creates, args.create_concurrency, |i| {
        client.post(format!("{base}/api/patients")).bearer_auth(&token).json(&patient(&run, i))
    })
    .await;
    phases.push(Phase { name: "create patient", summary: creates });
    let lists = run_phase(args.lists, args.list_concurrency, |_| {
        client.get(format!("{base}/api/patients?size=100")).bearer_auth(&token)
    })
    .await;
    phases.push(Phase { name: "list patients", summary: lists });

    if args.e2e > 0 {
        let (Some(email), Some(password)) = (&args.admin_email, &args.admin_password) else {
            bail!("--e2e needs --admin-email and --admin-password (or PULSETRACK_ADMIN_EMAIL/PASSWORD)");
        };
        let body = json!({"email": email, "password": password});
        let (_, body, _) = send(client.post(format!("{base}/auth/login")).json(&body)).await;
        let admin = body.and_then(|b| b["token"].as_str().map(str::to_string)).context("admin login failed")?;
        let (billing, analytics) = e2e_phase(&client, &base, &token, &admin, &run, args.e2e).await?;
        phases.push(Phase { name: "create → billing account", summary: billing });
        phases.push(Phase { name: "create → analytics event", summary: analytics });
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&phases)?);
    } else {
        print_table(&phases);
    }
    Ok(())
}

/// Sends a request; returns its status (None on transport error), JSON body and latency.
async fn send(request: reqwest::RequestBuilder) -> (Option<u16>, Option<Value>, Duration) {
    let started = Instant::now();
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.json::<Value>().await.ok();
            (Some(status), body, started.elapsed())
        }
        Err(_) => (None, None, started.elapsed()),
    }
}

fn patient(run: &str, i: usize) -> Value {
    json!({
        "name": format!("Load Patient {i}"),
        "email": format!("patient-{run}-{i}@example.com"),
        "address": "1 Load Street",
        "dateOfBirth": "1985-03-14",
        "registeredDate": "2026-11-27"
    })
}

/// Sends `count` requests built by `make`, at most `concurrency` at a time.
async fn run_phase(count: usize, concurrency: usize, make: impl Fn(usize) -> reqwest::RequestBuilder) -> Summary {
    let started = Instant::now();
    let results: Vec<_> = stream::iter(0..count).map(|i| send(make(i))).buffer_unordered(concurrency).collect().await;
    let wall = started.elapsed();
    let mut recorder = Recorder::default();
    for (status, _, latency) in results {
        recorder.record(status, latency);
    }
    recorder.summary(wall)
}

/// Creates `count` patients one at a time; after each create response, polls until
/// the billing account and the analytics event exist, recording both delays.
async fn e2e_phase(
    client: &Client,
    base: &str,
    token: &str,
    admin: &str,
    run: &str,
    count: usize,
) -> anyhow::Result<(Summary, Summary)> {
    const POLL: Duration = Duration::from_millis(1);
    const LIMIT: Duration = Duration::from_secs(30);
    let mut billing = Recorder::default();
    let mut analytics = Recorder::default();
    let started = Instant::now();
    for i in 0..count {
        let response = client
            .post(format!("{base}/api/patients"))
            .bearer_auth(token)
            .json(&patient(&format!("e2e-{run}"), i))
            .send()
            .await?;
        let responded = Instant::now();
        if response.status() != StatusCode::CREATED {
            bail!("create answered {}", response.status());
        }
        let id = response.json::<Value>().await?["id"].as_str().context("no id")?.to_string();
        let (mut billing_at, mut analytics_at) = (None, None);
        while billing_at.is_none() || analytics_at.is_none() {
            if responded.elapsed() > LIMIT {
                bail!("patient {id}: billing or analytics did not arrive within {LIMIT:?}");
            }
            if billing_at.is_none() {
                let r = client.get(format!("{base}/api/billing/accounts/{id}")).bearer_auth(token).send().await?;
                if r.status() == StatusCode::OK {
                    billing_at = Some(responded.elapsed());
                }
            }
            if analytics_at.is_none() {
                let r =
                    client.get(format!("{base}/api/analytics/patients/{id}/events")).bearer_auth(admin).send().await?;
                if r.status() == StatusCode::OK && r.json::<Value>().await?.as_array().is_some_and(|a| !a.is_empty()) {
                    analytics_at = Some(responded.elapsed());
                }
            }
            tokio::time::sleep(POLL).await;
        }
        billing.record_delay(billing_at.unwrap_or_default());
        analytics.record_delay(analytics_at.unwrap_or_default());
    }
    let wall = started.elapsed();
    Ok((billing.summary(wall), analytics.summary(wall)))
}

fn print_table(phases: &[Phase]) {
    println!(
        "{:<26} {:>6} {:>6} {:>5} {:>5} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "phase", "total", "ok", "4xx", "5xx", "other", "avg ms", "p50 ms", "p95 ms", "p99 ms", "max ms", "req/s"
    );
    for p in phases {
        let s = &p.summary;
        println!(
            "{:<26} {:>6} {:>6} {:>5} {:>5} {:>5} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.1}",
            p.name,
            s.requests,
            s.ok,
            s.client_errors,
            s.server_errors,
            s.other,
            s.avg_ms,
            s.p50_ms,
            s.p95_ms,
            s.p99_ms,
            s.max_ms,
            s.throughput_per_s
        );
    }
}
