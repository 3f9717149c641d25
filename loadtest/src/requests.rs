//! The requests of each phase: sending one and timing it, a bounded-concurrency phase
//! of many, and the e2e phase that waits for a create's events to arrive.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use indicatif::ProgressBar;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::stats::{Recorder, Summary};

/// Sends a request; returns its status (None on transport error), JSON body and latency.
pub async fn send(request: reqwest::RequestBuilder) -> (Option<u16>, Option<Value>, Duration) {
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

/// The password of the seed's accounts (8 characters: `deployer up`'s basic policy).
pub const SEED_PASSWORD: &str = "12345678";

/// The `i`th account of run `run`: unique per run, so that runs never collide.
pub fn account_email(run: &str, i: usize) -> String {
    format!("loadtest-{run}-{i}@example.com")
}

/// The seed's signup body: a USER account named as its script names it.
pub fn signup_body(email: &str) -> Value {
    json!({"email": email, "username": "Hamza Ali", "password": SEED_PASSWORD, "role": "USER"})
}

/// The seed's login body, with the `role` field its script sends (the service ignores it).
pub fn login_body(email: &str) -> Value {
    json!({"email": email, "password": SEED_PASSWORD, "role": "USER"})
}

/// The seed's create body: its address and dates, its `dateofBirth` spelling, and its
/// `loadtest+N` emails with this run's tag (`loadtest+{run}-{i}`), so that repeated
/// runs against one database do not collide.
pub fn patient(run: &str, i: usize) -> Value {
    json!({
        "name": format!("Load Patient {i}"),
        "address": "Sindh, PK",
        "dateofBirth": "2005-09-06",
        "email": format!("loadtest+{run}-{i}@example.com"),
        "registeredDate": "2025-11-15"
    })
}

/// Sends `count` requests built by `make`, at most `concurrency` at a time, advancing
/// `bar` as each completes.
pub async fn run_phase(
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
pub async fn e2e_phase(
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
    use super::*;

    #[test]
    fn signup_and_login_send_the_seed_s_bodies() {
        let email = account_email("r1", 0);
        assert_eq!(email, "loadtest-r1-0@example.com");
        assert_ne!(account_email("r1", 1), email);
        assert_ne!(account_email("r2", 0), email);
        assert_eq!(
            signup_body(&email),
            json!({"email": email, "username": "Hamza Ali", "password": "12345678", "role": "USER"})
        );
        assert_eq!(login_body(&email), json!({"email": email, "password": "12345678", "role": "USER"}));
    }

    #[test]
    fn creates_send_the_seed_s_body_with_the_run_s_tag() {
        let body = patient("r1", 7);
        assert_eq!(
            body,
            json!({"name": "Load Patient 7", "address": "Sindh, PK", "dateofBirth": "2005-09-06",
                   "email": "loadtest+r1-7@example.com", "registeredDate": "2025-11-15"})
        );
        assert_ne!(patient("r2", 7)["email"], body["email"]);
        assert_ne!(patient("r1", 8)["email"], body["email"]);
    }

    #[test]
    fn emails_fit_the_local_part_limit() {
        // 64 characters at most before the @ (RFC 5321), with the longest tag a run makes.
        let run = format!("e2e-{}", uuid::Uuid::new_v4().simple());
        for email in [patient(&run, 999_999)["email"].as_str().map(str::to_string), Some(account_email(&run, 1))] {
            let email = email.expect("an email");
            assert!(email.split_once('@').is_some_and(|(local, _)| local.len() <= 64), "{email}");
        }
    }
}
