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

pub fn patient(run: &str, i: usize) -> Value {
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
