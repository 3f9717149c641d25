//! An audited service's trail settings (`AUDIT_KEY`, `AUDIT_ANCHORS`,
//! `AUDIT_ANCHOR_INTERVAL_SECONDS`), checked once at start-up.

use std::{sync::Arc, time::Duration};

use super::{anchors::Anchors, key::AuditKey};
use crate::config::{ConfigError, Raw};

/// The longest interval between two anchors (the promise: at least every minute).
pub const MAX_ANCHOR_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_ANCHOR_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub key: AuditKey,
    pub anchors: Arc<Anchors>,
    /// How often the head is anchored (when it moved).
    pub anchor_interval: Duration,
}

impl AuditConfig {
    pub fn from_settings(settings: &pulsetrack_settings::Audit<Raw>) -> Result<Self, ConfigError> {
        let raw = &settings.tuning.anchor_interval_seconds;
        let seconds = raw.parse_or(DEFAULT_ANCHOR_INTERVAL.as_secs())?;
        if !(1..=MAX_ANCHOR_INTERVAL.as_secs()).contains(&seconds) {
            return Err(raw.error(format!("must be from 1 to {}", MAX_ANCHOR_INTERVAL.as_secs())));
        }
        Ok(Self {
            key: AuditKey::from_setting(&settings.key)?,
            anchors: Arc::new(Anchors::from_setting(&settings.anchors)?),
            anchor_interval: Duration::from_secs(seconds),
        })
    }

    /// How long after an entry is written an anchor must cover it: two intervals,
    /// and slack for a slow write.
    pub fn anchor_deadline(&self) -> Duration {
        self.anchor_interval * 2 + Duration::from_secs(2)
    }

    /// A fresh key, anchors in a new file under the system's temporary folder, one
    /// second apart: for tests.
    #[cfg(feature = "testing")]
    pub fn for_tests() -> Self {
        let path = std::env::temp_dir().join(format!("pulsetrack-anchors-{}.jsonl", uuid::Uuid::new_v4().simple()));
        Self {
            key: AuditKey::generate(),
            anchors: Arc::new(Anchors::File(path)),
            anchor_interval: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use pulsetrack_settings::{AUDIT_ANCHOR_INTERVAL_SECONDS, AUDIT_ANCHORS, AUDIT_KEY, Var};

    use super::*;

    fn config(pairs: &[(Var, &str)]) -> Result<AuditConfig, ConfigError> {
        AuditConfig::from_settings(&crate::config::from_pairs(pairs))
    }

    #[test]
    fn key_and_anchors_are_required_and_checked_by_name() {
        let key = "k".repeat(40);
        assert_eq!(config(&[]).expect_err("nothing").variable, "AUDIT_KEY");
        assert_eq!(config(&[(AUDIT_KEY, &key)]).expect_err("no anchors").variable, "AUDIT_ANCHORS");
        for bad in ["anchors.jsonl", "file:relative/path", "s3://", "http://x"] {
            let e = config(&[(AUDIT_KEY, &key), (AUDIT_ANCHORS, bad)]).expect_err(bad);
            assert_eq!(e.variable, "AUDIT_ANCHORS", "{bad}");
        }
        let ok = [(AUDIT_KEY, key.as_str()), (AUDIT_ANCHORS, "file:/var/lib/pt/anchors.jsonl")];
        let c = config(&ok).expect("valid");
        assert_eq!(c.anchor_interval, Duration::from_secs(30));
        assert!(!format!("{c:?}").contains(&key), "the key is never shown");
        for bad in ["0", "61", "x"] {
            let e = config(&[ok[0], ok[1], (AUDIT_ANCHOR_INTERVAL_SECONDS, bad)]).expect_err(bad);
            assert_eq!(e.variable, "AUDIT_ANCHOR_INTERVAL_SECONDS");
        }
        assert!(matches!(
            *config(&[ok[0], (AUDIT_ANCHORS, "s3://pt-anchors/trails")]).expect("s3").anchors,
            Anchors::S3(_)
        ));
    }
}
