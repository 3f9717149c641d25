//! `loadtest`: the seed's load method (sign up 2 users, log in, create patients
//! concurrently, list patients concurrently) against a running PulseTrack, plus the
//! end-to-end delay from a create response to the billing account and the analytics
//! event existing.
//!
//! With `--patient-service-url` the create and list phases bypass the gateway and go
//! straight to patient-service with the identity headers the gateway would forward, so
//! that comparing the two runs gives the gateway's overhead.

mod identity;
mod plan;
mod progress;
mod report;
mod stats;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{StreamExt, stream};
use indicatif::ProgressBar;
use plan::{Overrides, Plan, http_url};
use progress::Progress;
use report::{Mode, Phase, Report, Via};
use reqwest::{Client, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use stats::{Recorder, Summary};

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The gateway. Signup, login and the e2e phase always go here; the create and list
    /// phases too unless --patient-service-url is given.
    #[arg(long, env = "LOADTEST_BASE_URL", default_value = "http://127.0.0.1:4004", value_parser = http_url)]
    base_url: String,
    /// DIRECT mode, to measure the gateway's overhead: send the create and list phases
    /// straight to patient-service (e.g. http://127.0.0.1:4000) with the identity headers
    /// the gateway would forward for the logged-in user.
    #[arg(long, value_name = "URL", value_parser = http_url)]
    patient_service_url: Option<String>,
    /// One of the seed's scenarios: 1 (500 creates at 10, 1000 lists at 20),
    /// 2 (200 at 20, 400 at 40), 3 (400 at 100, 600 at 120). Flags below override its
    /// values; without it, scenario 1.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3))]
    scenario: Option<u8>,
    /// Patients to create (0: no create phase) [default: the scenario's]
    #[arg(long)]
    creates: Option<usize>,
    /// Creates in flight at once, at least 1 [default: the scenario's]
    #[arg(long)]
    create_concurrency: Option<usize>,
    /// Patient lists to request (0: no list phase) [default: the scenario's]
    #[arg(long, conflicts_with = "skip_lists")]
    lists: Option<usize>,
    /// Lists in flight at once, at least 1 [default: the scenario's]
    #[arg(long)]
    list_concurrency: Option<usize>,
    /// Run no list phase (the same as --lists 0).
    #[arg(long)]
    skip_lists: bool,
    /// Sequential creates (through the gateway) whose billing account and analytics
    /// event are awaited (0: skip).
    #[arg(long, default_value_t = 0)]
    e2e: usize,
    /// An ADMIN account, needed to read analytics in the e2e phase.
    #[arg(long, env = "PULSETRACK_ADMIN_EMAIL")]
    admin_email: Option<String>,
    #[arg(long, env = "PULSETRACK_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Print the report on stdout as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
    /// Draw no progress bars (they are never drawn when stderr is not a terminal).
    #[arg(long)]
    no_progress: bool,
}

impl Args {
    fn overrides(&self) -> Overrides {
        Overrides {
            creates: self.creates,
            create_concurrency: self.create_concurrency,
            lists: self.lists,
            list_concurrency: self.list_concurrency,
            skip_lists: self.skip_lists,
        }
    }
}

/// Where the create and list phases go, and the headers that authenticate them there.
struct PatientTarget {
    via: Via,
    /// The patient collection: `{gateway}/api/patients` or `{patient-service}/patients`.
    patients_url: String,
    headers: HeaderMap,
}

impl PatientTarget {
    fn new(gateway: &str, patient_service: Option<&str>, token: &str) -> anyhow::Result<Self> {
        Ok(match patient_service {
            None => PatientTarget {
                via: Via::Gateway,
                patients_url: format!("{gateway}/api/patients"),
                headers: identity::bearer_headers(token)?,
            },
            Some(url) => {
                let claims = identity::unverified_claims(token).context("reading the login token for direct mode")?;
                PatientTarget {
                    via: Via::PatientService,
                    patients_url: format!("{url}/patients"),
                    headers: identity::forwarded_headers(token, &claims)?,
                }
            }
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = Plan::resolve(args.scenario, args.overrides())?;
    let admin = match (args.e2e, &args.admin_email, &args.admin_password) {
        (0, _, _) => None,
        (_, Some(email), Some(password)) => Some((email.as_str(), password.as_str())),
        _ => bail!("--e2e needs --admin-email and --admin-password (or PULSETRACK_ADMIN_EMAIL/PASSWORD)"),
    };
    let client = Client::builder().pool_max_idle_per_host(256).timeout(Duration::from_secs(30)).build()?;
    let progress = Progress::new(!args.no_progress);
    let base = args.base_url.as_str();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut phases = Vec::new();

    // Signup and login: 2 users, as the seed's script.
    let mut signup = Recorder::default();
    let mut login = Recorder::default();
    let bar = progress.bar("signup + login", 4);
    let started = Instant::now();
    let mut token = None;
    for i in 0..2 {
        let email = format!("load-{run}-{i}@example.com");
        let body = json!({"email": email, "username": format!("load{i}"), "password": "load-test-password"});
        let (status, _, latency) = send(client.post(format!("{base}/auth/signup")).json(&body)).await;
        signup.record(status, latency);
        bar.inc(1);
        let body = json!({"email": email, "password": "load-test-password"});
        let (status, body, latency) = send(client.post(format!("{base}/auth/login")).json(&body)).await;
        login.record(status, latency);
        bar.inc(1);
        if token.is_none() {
            token = body.and_then(|b| b["token"].as_str().map(str::to_string));
        }
    }
    bar.finish();
    let wall = started.elapsed();
    phases.push(Phase { name: "signup", via: Via::Gateway, concurrency: 1, summary: signup.summary(wall) });
    phases.push(Phase { name: "login", via: Via::Gateway, concurrency: 1, summary: login.summary(wall) });
    let token = token.context("login returned no token; is the system up?")?;
    let target = PatientTarget::new(base, args.patient_service_url.as_deref(), &token)?;

    if plan.creates > 0 {
        let name = "create patient";
        let bar = progress.bar(name, plan.creates);
        let summary = run_phase(plan.creates, plan.create_concurrency, &bar, |i| {
            client.post(&target.patients_url).headers(target.headers.clone()).json(&patient(&run, i))
        })
        .await;
        phases.push(Phase { name, via: target.via, concurrency: plan.create_concurrency, summary });
    }
    if plan.lists > 0 {
        let name = "list patients";
        let bar = progress.bar(name, plan.lists);
        let url = format!("{}?size=100", target.patients_url);
        let summary =
            run_phase(plan.lists, plan.list_concurrency, &bar, |_| client.get(&url).headers(target.headers.clone()))
                .await;
        phases.push(Phase { name, via: target.via, concurrency: plan.list_concurrency, summary });
    }

    if let Some((email, password)) = admin {
        let body = json!({"email": email, "password": password});
        let (_, body, _) = send(client.post(format!("{base}/auth/login")).json(&body)).await;
        let admin = body.and_then(|b| b["token"].as_str().map(str::to_string)).context("admin login failed")?;
        let bar = progress.bar("create → billing/analytics", args.e2e);
        let (billing, analytics) = e2e_phase(&client, base, &token, &admin, &run, args.e2e, &bar).await?;
        phases.push(Phase { name: "create → billing account", via: Via::Gateway, concurrency: 1, summary: billing });
        phases
            .push(Phase { name: "create → analytics event", via: Via::Gateway, concurrency: 1, summary: analytics });
    }

    let report = Report {
        mode: if args.patient_service_url.is_some() { Mode::Direct } else { Mode::Gateway },
        gateway_url: args.base_url.clone(),
        patient_service_url: args.patient_service_url.clone(),
        scenario: args.scenario,
        plan,
        e2e: args.e2e,
        phases,
    };
    let json = report.to_json()?;
    if let Some(path) = &args.json_out {
        std::fs::write(path, format!("{json}\n")).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{}", report.to_table());
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

/// Sends `count` requests built by `make`, at most `concurrency` at a time, advancing
/// `bar` as each completes.
async fn run_phase(
    count: usize,
    concurrency: usize,
    bar: &ProgressBar,
    make: impl Fn(usize) -> reqwest::RequestBuilder,
) -> Summary {
    let started = Instant::now();
    let results: Vec<_> = stream::iter(0..count)
        .map(|i| send(make(i)))
        .buffer_unordered(concurrency.max(1))
        .inspect(|_| bar.inc(1))
        .collect()
        .await;
    let wall = started.elapsed();
    bar.finish();
    let mut recorder = Recorder::default();
    for (status, _, latency) in results {
        recorder.record(status, latency);
    }
    recorder.summary(wall)
}

/// Creates `count` patients one at a time through the gateway; after each create
/// response, polls until the billing account and the analytics event exist, recording
/// both delays.
async fn e2e_phase(
    client: &Client,
    base: &str,
    token: &str,
    admin: &str,
    run: &str,
    count: usize,
    bar: &ProgressBar,
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
                let r = client.get(format!("{base}/api/billing/accounts/{id}")).bearer_auth(admin).send().await?;
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
        bar.inc(1);
    }
    bar.finish();
    let wall = started.elapsed();
    Ok((billing.summary(wall), analytics.summary(wall)))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied()))
    }

    #[test]
    fn command_line_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_target_the_local_gateway_with_scenario_one() {
        let args = parse(&[]).expect("parses");
        if std::env::var_os("LOADTEST_BASE_URL").is_none() {
            assert_eq!(args.base_url, "http://127.0.0.1:4004");
        }
        assert_eq!(args.patient_service_url, None);
        assert_eq!(Plan::resolve(args.scenario, args.overrides()).ok(), Plan::preset(1));
    }

    #[test]
    fn scenario_flags_and_skip_lists_combine() {
        let args = parse(&["--scenario", "3", "--skip-lists", "--create-concurrency", "5"]).expect("parses");
        let plan = Plan::resolve(args.scenario, args.overrides()).expect("plan");
        assert_eq!(plan, Plan { creates: 400, create_concurrency: 5, lists: 0, list_concurrency: 120 });
        assert!(parse(&["--skip-lists", "--lists", "3"]).is_err());
        assert!(parse(&["--scenario", "4"]).is_err());
    }

    #[test]
    fn direct_mode_and_outputs_parse() {
        let args = parse(&[
            "--patient-service-url",
            "http://127.0.0.1:4000/",
            "--json",
            "--json-out",
            "r.json",
            "--no-progress",
        ])
        .expect("parses");
        assert_eq!(args.patient_service_url.as_deref(), Some("http://127.0.0.1:4000"));
        assert!(args.json && args.no_progress);
        assert_eq!(args.json_out, Some(PathBuf::from("r.json")));
        assert!(parse(&["--patient-service-url", "127.0.0.1:4000"]).is_err());
    }

    #[test]
    fn patient_target_uses_gateway_path_or_direct_path_and_headers() {
        let gateway = PatientTarget::new("http://gw", None, "not-even-a-jwt").expect("gateway target");
        assert_eq!((gateway.via, gateway.patients_url.as_str()), (Via::Gateway, "http://gw/api/patients"));
        assert_eq!(gateway.headers.len(), 1);
        // Direct mode needs claims to forward.
        assert!(PatientTarget::new("http://gw", Some("http://ps"), "not-even-a-jwt").is_err());

        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let claims =
            json!({"sub": "u-1", "email": "a@example.com", "role": "USER", "iat": 1, "exp": 2, "iss": "i", "aud": "a"});
        let token = format!("h.{}.s", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let direct = PatientTarget::new("http://gw", Some("http://ps"), &token).expect("direct target");
        assert_eq!((direct.via, direct.patients_url.as_str()), (Via::PatientService, "http://ps/patients"));
        assert_eq!(direct.headers.get("x-user-id").and_then(|v| v.to_str().ok()), Some("u-1"));
        assert_eq!(direct.headers.get("x-user-role").and_then(|v| v.to_str().ok()), Some("USER"));
    }
}
