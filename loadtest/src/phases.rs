//! The seed's load method as phases, in order: sign up and log in, create patients,
//! list patients, and (with `--e2e`) create → billing account and analytics event.
//! Each phase becomes a row of the report.

use std::time::Instant;

use anyhow::Context;
use reqwest::Client;
use serde_json::json;

use crate::{
    plan::Plan,
    progress::Progress,
    report::{Phase, Via},
    requests::{account_email, e2e_phase, login_body, patient, run_phase, send, signup_body},
    stats::Recorder,
    target::PatientTarget,
};

/// What every phase of one run shares.
pub struct Session<'a> {
    pub client: &'a Client,
    /// The gateway.
    pub base: &'a str,
    /// This run's tag, in every email it makes up, so that runs never collide.
    pub run: &'a str,
    pub progress: Progress,
}

impl Session<'_> {
    /// Signup and login: 2 USER accounts, with the seed's script's bodies as it sends
    /// them (its password, its `role` field, also on login). Returns both phases and
    /// the first user's token.
    pub async fn sign_up_and_log_in(&self) -> anyhow::Result<(Vec<Phase>, String)> {
        let (client, base) = (self.client, self.base);
        let mut signup = Recorder::default();
        let mut login = Recorder::default();
        let bar = self.progress.bar("signup + login", 4);
        let started = Instant::now();
        let mut token = None;
        for i in 0..2 {
            let email = account_email(self.run, i);
            let (status, _, latency) =
                send(client.post(format!("{base}/auth/signup")).json(&signup_body(&email))).await;
            signup.record(status, latency);
            bar.inc(1);
            let (status, body, latency) =
                send(client.post(format!("{base}/auth/login")).json(&login_body(&email))).await;
            login.record(status, latency);
            bar.inc(1);
            if token.is_none() {
                token = body.and_then(|b| b["token"].as_str().map(str::to_string));
            }
        }
        bar.finish();
        let wall = started.elapsed();
        let phases = vec![
            Phase { name: "signup", via: Via::Gateway, concurrency: 1, summary: signup.summary(wall) },
            Phase { name: "login", via: Via::Gateway, concurrency: 1, summary: login.summary(wall) },
        ];
        let token = token.context("login returned no token; is the system up?")?;
        Ok((phases, token))
    }

    /// The create phase, then the list phase, each skipped when the plan has none.
    pub async fn load(&self, plan: &Plan, target: &PatientTarget) -> Vec<Phase> {
        let (client, run) = (self.client, self.run);
        let mut phases = Vec::new();
        if plan.creates > 0 {
            let name = "create patient";
            let bar = self.progress.bar(name, plan.creates);
            let summary = run_phase(plan.creates, plan.create_concurrency, &bar, |i| {
                client.post(&target.patients_url).headers(target.headers.clone()).json(&patient(run, i))
            })
            .await;
            phases.push(Phase { name, via: target.via, concurrency: plan.create_concurrency, summary });
        }
        if plan.lists > 0 {
            let name = "list patients";
            let bar = self.progress.bar(name, plan.lists);
            // The seed's plain list: no query, so the service's default page.
            let summary = run_phase(plan.lists, plan.list_concurrency, &bar, |_| {
                client.get(&target.patients_url).headers(target.headers.clone())
            })
            .await;
            phases.push(Phase { name, via: target.via, concurrency: plan.list_concurrency, summary });
        }
        phases
    }

    /// `count` creates by the user of `token`, each awaited until its billing account
    /// and analytics event exist, read as the ADMIN `(email, password)`.
    pub async fn end_to_end(&self, token: &str, admin: (&str, &str), count: usize) -> anyhow::Result<Vec<Phase>> {
        let (client, base) = (self.client, self.base);
        let (email, password) = admin;
        let body = json!({"email": email, "password": password});
        let (_, body, _) = send(client.post(format!("{base}/auth/login")).json(&body)).await;
        let admin = body.and_then(|b| b["token"].as_str().map(str::to_string)).context("admin login failed")?;
        let bar = self.progress.bar("create → billing/analytics", count);
        let (billing, analytics) = e2e_phase(client, base, token, &admin, self.run, count, &bar).await?;
        Ok(vec![
            Phase { name: "create → billing account", via: Via::Gateway, concurrency: 1, summary: billing },
            Phase { name: "create → analytics event", via: Via::Gateway, concurrency: 1, summary: analytics },
        ])
    }
}
