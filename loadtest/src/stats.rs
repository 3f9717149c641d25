//! Latency statistics: nearest-rank percentiles over recorded samples.

use std::time::Duration;

use serde::Serialize;

/// Outcome counts and latencies of one phase.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    samples: Vec<Duration>,
    pub ok: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub other: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub requests: u64,
    pub ok: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub other: u64,
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub throughput_per_s: f64,
}

/// The nearest-rank percentile (`p` in 0..=100) of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Recorder {
    /// Records one request: its status (None for a transport error) and latency.
    pub fn record(&mut self, status: Option<u16>, latency: Duration) {
        match status {
            Some(200..=299) => self.ok += 1,
            Some(400..=499) => self.client_errors += 1,
            Some(500..=599) => self.server_errors += 1,
            _ => self.other += 1,
        }
        self.samples.push(latency);
    }

    /// Records a latency that has no HTTP status (an end-to-end delay).
    pub fn record_delay(&mut self, delay: Duration) {
        self.record(Some(200), delay);
    }

    pub fn summary(&self, wall: Duration) -> Summary {
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let total: Duration = sorted.iter().sum();
        let n = sorted.len() as u64;
        Summary {
            requests: n,
            ok: self.ok,
            client_errors: self.client_errors,
            server_errors: self.server_errors,
            other: self.other,
            avg_ms: if n == 0 { 0.0 } else { ms(total) / n as f64 },
            p50_ms: ms(percentile(&sorted, 50.0)),
            p95_ms: ms(percentile(&sorted, 95.0)),
            p99_ms: ms(percentile(&sorted, 99.0)),
            max_ms: ms(sorted.last().copied().unwrap_or_default()),
            throughput_per_s: if wall.is_zero() { 0.0 } else { n as f64 / wall.as_secs_f64() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted = millis(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&sorted, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&sorted, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&millis(&[7]), 99.0), Duration::from_millis(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn summary_counts_classes_and_throughput() {
        let mut r = Recorder::default();
        r.record(Some(201), Duration::from_millis(10));
        r.record(Some(404), Duration::from_millis(20));
        r.record(Some(503), Duration::from_millis(30));
        r.record(None, Duration::from_millis(40));
        let s = r.summary(Duration::from_secs(2));
        assert_eq!((s.requests, s.ok, s.client_errors, s.server_errors, s.other), (4, 1, 1, 1, 1));
        assert_eq!(s.avg_ms, 25.0);
        assert_eq!(s.p50_ms, 20.0);
        assert_eq!(s.max_ms, 40.0);
        assert_eq!(s.throughput_per_s, 2.0);
    }

    #[test]
    fn empty_phase_summarises_to_zeros() {
        let s = Recorder::default().summary(Duration::ZERO);
        assert_eq!((s.requests, s.ok, s.other), (0, 0, 0));
        assert_eq!((s.avg_ms, s.p50_ms, s.p99_ms, s.max_ms, s.throughput_per_s), (0.0, 0.0, 0.0, 0.0, 0.0));
    }

    #[test]
    fn delays_count_as_ok_and_tail_percentiles_find_the_outlier() {
        let mut r = Recorder::default();
        for _ in 0..99 {
            r.record_delay(Duration::from_millis(5));
        }
        r.record_delay(Duration::from_millis(500));
        let s = r.summary(Duration::from_secs(1));
        assert_eq!((s.requests, s.ok), (100, 100));
        assert_eq!((s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms), (5.0, 5.0, 5.0, 500.0));
        assert_eq!(s.avg_ms, 9.95);
    }
}
