//! `deployer top`: a live view of the system `deployer up` runs, from each service's
//! `/metrics` (issue 16): per service, requests/s, p50 and p99 latency, server errors/s,
//! the outbox backlog and the consumer's lag, over each interval. On a terminal the
//! table is redrawn in place; otherwise (a pipe, CI) each interval prints plain lines.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::{IsTerminal, Write},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::bail;

use super::{
    process::alive,
    state::{read_state, state_file},
};

/// Routes that are not the service's work (probes and scrapes).
const NOT_WORK: [&str; 3] = ["/metrics", "/health", "/ready"];

/// One sample line of the text exposition format.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the samples of a `/metrics` answer (comments and malformed lines skipped).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.trim().parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
                None => (series, BTreeMap::new()),
            };
            Some(Sample { name: name.to_string(), labels, value })
        })
        .collect()
}

/// `a="x",b="y"` (values may hold escaped quotes, commas and braces).
fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => value.push(chars.next()?.1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.trim_start_matches(',').to_string(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(labels)
}

/// What one scrape of one service says, summed over its work routes.
#[derive(Debug, Clone, Default, PartialEq)]
struct Snapshot {
    requests: f64,
    server_errors: f64,
    /// Cumulative latency histogram: upper bound (seconds) → requests at most that slow.
    buckets: BTreeMap<u64, f64>,
    outbox: Option<f64>,
    lag: Option<f64>,
}

fn is_work(sample: &Sample) -> bool {
    sample.labels.get("route").is_none_or(|r| !NOT_WORK.contains(&r.as_str()))
}

impl Snapshot {
    fn of(samples: &[Sample]) -> Self {
        let mut snapshot = Snapshot::default();
        for s in samples {
            match s.name.as_str() {
                "http_server_requests_total" | "grpc_server_requests_total" if is_work(s) => {
                    snapshot.requests += s.value;
                    let failed = s.labels.get("status").and_then(|c| c.parse::<u16>().ok()).is_some_and(|c| c >= 500)
                        || s.labels
                            .get("code")
                            .is_some_and(|c| matches!(c.as_str(), "Internal" | "Unavailable" | "Unknown"));
                    if failed {
                        snapshot.server_errors += s.value;
                    }
                }
                "http_server_request_duration_seconds_bucket" | "grpc_server_request_duration_seconds_bucket"
                    if is_work(s) =>
                {
                    let le = s.labels.get("le").map(String::as_str).unwrap_or("+Inf");
                    let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::INFINITY) };
                    *snapshot.buckets.entry(bound.to_bits()).or_default() += s.value;
                }
                "outbox_pending" => *snapshot.outbox.get_or_insert(0.0) += s.value,
                "kafka_consumer_lag" => *snapshot.lag.get_or_insert(0.0) += s.value,
                _ => {}
            }
        }
        snapshot
    }
}

/// One service's figures over an interval.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    rate: f64,
    p50: Option<f64>,
    p99: Option<f64>,
    errors: f64,
    outbox: Option<f64>,
    lag: Option<f64>,
}

/// The quantile `q` of the requests between two cumulative histograms: the upper bound
/// of the first bucket that holds it.
fn quantile(before: &BTreeMap<u64, f64>, after: &BTreeMap<u64, f64>, q: f64) -> Option<f64> {
    let mut bounds: Vec<(f64, f64)> = after
        .iter()
        .map(|(bits, count)| (f64::from_bits(*bits), count - before.get(bits).copied().unwrap_or(0.0)))
        .collect();
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = bounds.last()?.1;
    if total <= 0.0 {
        return None;
    }
    bounds.into_iter().find(|(_, count)| *count >= q * total).map(|(bound, _)| bound)
}

fn row(before: &Snapshot, after: &Snapshot, seconds: f64) -> Row {
    Row {
        rate: (after.requests - before.requests).max(0.0) / seconds,
        p50: quantile(&before.buckets, &after.buckets, 0.5),
        p99: quantile(&before.buckets, &after.buckets, 0.99),
        errors: (after.server_errors - before.server_errors).max(0.0) / seconds,
        outbox: after.outbox,
        lag: after.lag,
    }
}

fn millis(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s.is_infinite() => "> 16 s".into(),
        Some(s) => format!("≤{} ms", trim(s * 1000.0)),
        None => "-".into(),
    }
}

fn trim(value: f64) -> String {
    if value >= 10.0 { format!("{value:.0}") } else { format!("{value:.1}") }
}

fn table(rows: &BTreeMap<String, Result<Row, String>>) -> String {
    let mut out = format!(
        "{:<18} {:>9} {:>10} {:>10} {:>8} {:>8} {:>8}\n",
        "SERVICE", "REQ/S", "P50", "P99", "5XX/S", "OUTBOX", "LAG"
    );
    for (name, row) in rows {
        match row {
            Ok(r) => {
                let gauge = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
                let _ = writeln!(
                    out,
                    "{name:<18} {:>9} {:>10} {:>10} {:>8} {:>8} {:>8}",
                    trim(r.rate),
                    millis(r.p50),
                    millis(r.p99),
                    trim(r.errors),
                    gauge(r.outbox),
                    gauge(r.lag)
                );
            }
            Err(e) => {
                let _ = writeln!(out, "{name:<18} unreachable: {e}");
            }
        }
    }
    out
}

async fn scrape(client: &reqwest::Client, url: &str) -> Result<Snapshot, String> {
    let response = client.get(format!("{url}/metrics")).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("/metrics answered {}", response.status()));
    }
    Ok(Snapshot::of(&parse(&response.text().await.map_err(|e| e.to_string())?)))
}

/// Shows the view every `interval`, `count` times (forever when `None`).
pub async fn top(data_dir: &Path, interval: Duration, count: Option<u32>) -> anyhow::Result<()> {
    let Some(state) = read_state(data_dir) else {
        bail!("no `deployer up` runs on {} (no {})", data_dir.display(), state_file(data_dir).display());
    };
    if !alive(state.pid) {
        bail!("`deployer up` (pid {}) is gone", state.pid);
    }
    // The services (tansu, the registry and Prometheus are not scraped).
    let services: Vec<(String, String)> = state
        .processes
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "tansu" | "registry" | "prometheus"))
        .filter_map(|(name, p)| Some((name.clone(), p.url.clone()?)))
        .collect();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let terminal = std::io::stdout().is_terminal();
    let mut previous: BTreeMap<String, Snapshot> = BTreeMap::new();
    let mut taken = Instant::now();
    for (name, url) in &services {
        if let Ok(snapshot) = scrape(&client, url).await {
            previous.insert(name.clone(), snapshot);
        }
    }
    let mut shown = 0;
    while count.is_none_or(|c| shown < c) {
        tokio::time::sleep(interval).await;
        let seconds = taken.elapsed().as_secs_f64();
        taken = Instant::now();
        let mut rows = BTreeMap::new();
        for (name, url) in &services {
            let row = match scrape(&client, url).await {
                Ok(now) => {
                    let before = previous.insert(name.clone(), now.clone()).unwrap_or_default();
                    Ok(row(&before, &now, seconds))
                }
                Err(e) => Err(e),
            };
            rows.insert(name.clone(), row);
        }
        let time = chrono::Utc::now().format("%H:%M:%S");
        let mut out = std::io::stdout().lock();
        if terminal {
            // Redrawn in place: clear the screen, cursor home.
            write!(
                out,
                "\x1b[2J\x1b[HPulseTrack on {} at {time} (every {} s; Ctrl-C ends)\n\n{}",
                state.gateway_url,
                interval.as_secs_f64(),
                table(&rows)
            )?;
        } else {
            for line in table(&rows).lines() {
                writeln!(out, "{time} {line}")?;
            }
        }
        out.flush()?;
        shown += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP http_server_requests_total HTTP requests answered.
# TYPE http_server_requests_total counter
http_server_requests_total{method="POST",route="/patients",status="201"} 90
http_server_requests_total{method="GET",route="/patients/{id}",status="503"} 10
http_server_requests_total{method="GET",route="/health",status="200"} 1000
http_server_request_duration_seconds_bucket{method="POST",route="/patients",status="201",le="0.001"} 50
http_server_request_duration_seconds_bucket{method="POST",route="/patients",status="201",le="0.002"} 90
http_server_request_duration_seconds_bucket{method="POST",route="/patients",status="201",le="+Inf"} 90
http_server_request_duration_seconds_bucket{method="GET",route="/patients/{id}",status="503",le="0.001"} 0
http_server_request_duration_seconds_bucket{method="GET",route="/patients/{id}",status="503",le="0.002"} 0
http_server_request_duration_seconds_bucket{method="GET",route="/patients/{id}",status="503",le="+Inf"} 10
outbox_pending{destination="billing"} 3
outbox_pending{destination="patient-event"} 4
kafka_consumer_lag{topic="patient",partition="0"} 7
"#;

    #[test]
    fn a_scrape_sums_the_work_routes_and_reads_the_gauges() {
        let samples = parse(SCRAPE);
        assert_eq!(samples[0].labels["route"], "/patients");
        let snapshot = Snapshot::of(&samples);
        assert_eq!((snapshot.requests, snapshot.server_errors), (100.0, 10.0));
        assert_eq!((snapshot.outbox, snapshot.lag), (Some(7.0), Some(7.0)));
        let row = row(&Snapshot::default(), &snapshot, 2.0);
        assert_eq!((row.rate, row.errors), (50.0, 5.0));
        // 50 of 100 within 1 ms; the slowest 10 beyond the last finite bucket.
        assert_eq!((row.p50, row.p99), (Some(0.001), Some(f64::INFINITY)));
        assert_eq!(millis(row.p50), "≤1.0 ms");
        let shown = table(&BTreeMap::from([("patient-service".to_string(), Ok(row))]));
        assert!(
            shown.lines().nth(1).is_some_and(|l| l.starts_with("patient-service") && l.contains("> 16 s")),
            "{shown}"
        );
    }

    #[test]
    fn label_values_may_hold_quotes_commas_and_braces() {
        let labels = parse_labels(r#"a="x,y",b="say \"hi\" {}""#).expect("labels");
        assert_eq!(labels["a"], "x,y");
        assert_eq!(labels["b"], r#"say "hi" {}"#);
    }
}
