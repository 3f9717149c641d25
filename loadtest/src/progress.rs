//! One progress bar per phase on stderr (count/total, rate, elapsed), so stdout stays
//! clean for the report. Hidden when stderr is not a terminal or with `--no-progress`.

use std::{fmt, time::Duration};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// `rate` is ours: indicatif's `per_sec` takes a width as its precision.
const TEMPLATE: &str = "{prefix:<26} [{bar:30}] {pos:>6}/{len:<6} {rate:>10} {elapsed_precise}";

/// Makes the bars; all hidden when disabled.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }

    /// A bar for a phase of `len` requests. indicatif draws nothing when stderr is not
    /// a terminal, so redirected runs stay quiet without a flag.
    pub fn bar(&self, phase: &str, len: usize) -> ProgressBar {
        let target = if self.enabled { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar =
            ProgressBar::with_draw_target(Some(len as u64), target).with_style(style()).with_prefix(phase.to_string());
        if !bar.is_hidden() {
            // Keeps the elapsed time moving while slow requests are outstanding.
            bar.enable_steady_tick(Duration::from_millis(250));
        }
        bar
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template(TEMPLATE)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", |state: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = w.write_str(&rate(state.per_sec()));
        })
        .progress_chars("=> ")
}

/// Requests per second, one decimal.
fn rate(per_sec: f64) -> String {
    if per_sec.is_finite() { format!("{per_sec:.1}/s") } else { "-/s".to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_valid() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
    }

    #[test]
    fn rate_has_one_decimal() {
        assert_eq!(rate(338.975_458), "339.0/s");
        assert_eq!(rate(0.0), "0.0/s");
        assert_eq!(rate(f64::INFINITY), "-/s");
    }

    #[test]
    fn disabled_bars_are_hidden_and_still_count() {
        let bar = Progress::new(false).bar("create patient", 3);
        assert!(bar.is_hidden());
        bar.inc(2);
        assert_eq!((bar.position(), bar.length()), (2, Some(3)));
        bar.finish();
    }
}
