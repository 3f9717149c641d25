//! The run's report: what was measured, and each phase's counts and latencies, as a
//! text table or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::{plan::Plan, stats::Summary};

/// What a phase's requests were sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// The api-gateway (JWT validated there, identity forwarded upstream).
    Gateway,
    /// patient-service itself, with the identity headers the gateway would forward.
    PatientService,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Gateway => "gateway",
            Via::PatientService => "patient-service",
        }
    }
}

/// Whether the create and list phases went through the gateway or around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Gateway,
    /// Straight to patient-service, to measure the gateway's overhead by difference.
    Direct,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub name: &'static str,
    pub via: Via,
    pub concurrency: usize,
    #[serde(flatten)]
    pub summary: Summary,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub mode: Mode,
    /// Signup and login always go here, and the e2e phase.
    pub gateway_url: String,
    /// Set in direct mode: where the create and list phases went.
    pub patient_service_url: Option<String>,
    pub scenario: Option<u8>,
    pub plan: Plan,
    pub e2e: usize,
    pub phases: Vec<Phase>,
}

impl Report {
    /// One line naming what the create and list phases measured.
    pub fn target(&self) -> String {
        match self.mode {
            Mode::Direct => format!(
                "DIRECT to patient-service {} (gateway bypassed; signup/login via gateway {})",
                self.patient_service_url.as_deref().unwrap_or("(unknown)"),
                self.gateway_url
            ),
            Mode::Gateway => format!("through the gateway {}", self.gateway_url),
        }
    }

    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    /// The text table: a heading naming the target, then one row per phase.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "create/list {}", self.target());
        let _ = writeln!(
            out,
            "{:<26} {:<15} {:>5} {:>6} {:>6} {:>5} {:>5} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "phase",
            "via",
            "conc",
            "total",
            "ok",
            "4xx",
            "5xx",
            "other",
            "avg ms",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "req/s"
        );
        for p in &self.phases {
            let s = &p.summary;
            let _ = writeln!(
                out,
                "{:<26} {:<15} {:>5} {:>6} {:>6} {:>5} {:>5} {:>5} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.1}",
                p.name,
                p.via.as_str(),
                p.concurrency,
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
        if self.phases.is_empty() {
            out.push_str("(no phase ran)\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Value;

    use super::*;
    use crate::stats::Recorder;

    fn summary(statuses: &[(Option<u16>, u64)], wall_ms: u64) -> Summary {
        let mut r = Recorder::default();
        for &(status, ms) in statuses {
            r.record(status, Duration::from_millis(ms));
        }
        r.summary(Duration::from_millis(wall_ms))
    }

    fn report(mode: Mode) -> Report {
        let plan = Plan { creates: 4, create_concurrency: 2, lists: 0, list_concurrency: 20 };
        Report {
            mode,
            gateway_url: "http://127.0.0.1:4004".into(),
            patient_service_url: (mode == Mode::Direct).then(|| "http://127.0.0.1:4000".into()),
            scenario: None,
            plan,
            e2e: 0,
            phases: vec![
                Phase {
                    name: "login",
                    via: Via::Gateway,
                    concurrency: 1,
                    summary: summary(&[(Some(200), 8), (Some(200), 12)], 1000),
                },
                Phase {
                    name: "create patient",
                    via: if mode == Mode::Direct { Via::PatientService } else { Via::Gateway },
                    concurrency: 2,
                    summary: summary(&[(Some(201), 10), (Some(409), 20), (Some(502), 30), (None, 40)], 2000),
                },
            ],
        }
    }

    fn row<'a>(table: &'a str, phase: &str) -> Vec<&'a str> {
        let line = table.lines().find(|l| l.starts_with(phase)).expect("row present");
        line[phase.len()..].split_whitespace().collect()
    }

    #[test]
    fn table_has_every_column_and_row() {
        let table = report(Mode::Gateway).to_table();
        let header = table.lines().nth(1).expect("header line");
        for column in
            ["phase", "via", "conc", "total", "ok", "4xx", "5xx", "other", "avg", "p50", "p95", "p99", "max", "req/s"]
        {
            assert!(header.contains(column), "missing {column} in {header}");
        }
        assert_eq!(
            row(&table, "create patient"),
            ["gateway", "2", "4", "1", "1", "1", "1", "25.00", "20.00", "40.00", "40.00", "40.00", "2.0"]
        );
        assert_eq!(row(&table, "login")[..3], ["gateway", "1", "2"]);
        assert!(table.starts_with("create/list through the gateway http://127.0.0.1:4004\n"));
    }

    #[test]
    fn table_names_the_direct_target() {
        let table = report(Mode::Direct).to_table();
        let heading = table.lines().next().expect("heading");
        assert!(heading.contains("DIRECT to patient-service http://127.0.0.1:4000"), "{heading}");
        assert!(heading.contains("gateway bypassed"), "{heading}");
        assert_eq!(row(&table, "create patient")[0], "patient-service");
        assert_eq!(row(&table, "login")[0], "gateway");
    }

    #[test]
    fn empty_report_says_so() {
        let mut r = report(Mode::Gateway);
        r.phases.clear();
        assert!(r.to_table().ends_with("(no phase ran)\n"));
    }

    #[test]
    fn json_carries_target_plan_and_flattened_summaries() {
        let json: Value = serde_json::from_str(&report(Mode::Direct).to_json().expect("json")).expect("parses");
        assert_eq!(json["mode"], "direct");
        assert_eq!(json["gateway_url"], "http://127.0.0.1:4004");
        assert_eq!(json["patient_service_url"], "http://127.0.0.1:4000");
        assert_eq!(json["plan"]["creates"], 4);
        assert_eq!(json["plan"]["lists"], 0);
        let create = &json["phases"][1];
        assert_eq!(create["name"], "create patient");
        assert_eq!(create["via"], "patient-service");
        assert_eq!(create["concurrency"], 2);
        for (key, value) in [
            ("requests", 4.0),
            ("ok", 1.0),
            ("client_errors", 1.0),
            ("server_errors", 1.0),
            ("other", 1.0),
            ("avg_ms", 25.0),
            ("p50_ms", 20.0),
            ("p95_ms", 40.0),
            ("p99_ms", 40.0),
            ("max_ms", 40.0),
            ("throughput_per_s", 2.0),
        ] {
            assert_eq!(create[key].as_f64(), Some(value), "{key}");
        }
    }

    #[test]
    fn json_in_gateway_mode_has_no_patient_service_url() {
        let json: Value = serde_json::from_str(&report(Mode::Gateway).to_json().expect("json")).expect("parses");
        assert_eq!(json["mode"], "gateway");
        assert!(json["patient_service_url"].is_null());
        assert_eq!(json["phases"][1]["via"], "gateway");
    }
}
