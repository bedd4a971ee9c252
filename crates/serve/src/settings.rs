//! How a model is served: instances, threads, dynamic batching, its queue and deadline. The
//! server's defaults (the command's flags) apply to every model; a card's `[serving]` table
//! changes them for its model:
//!
//! ```toml
//! [serving]
//! instances = 2              # model instances, each a thread with its own buffers
//! threads = 1                # threads each instance's inference uses
//! max_batch_size = 8         # requests run as one batch (models with a free batch dimension)
//! max_queue_delay_ms = 2.0   # how long the first request waits for others to batch with
//! max_queue_size = 256       # requests waiting; more are refused with 503 / UNAVAILABLE
//! timeout_ms = 30000         # a request's deadline when the client gives none
//! ```

use crate::error::{Error, Result};
use serde::Deserialize;
use std::time::Duration;

/// The serving settings of one model.
#[derive(Clone, Debug, PartialEq)]
pub struct ServingSettings {
    /// model instances (threads taking requests from the model's queue), 1 to
    /// [`ServingSettings::MAX_INSTANCES`]
    pub instances: usize,
    /// threads of each instance's inference, 1 to 1024 (more than the cores are the cores)
    pub threads: usize,
    /// the largest batch requests are gathered into, 1 to [`ServingSettings::MAX_BATCH`]
    /// (1 for a model without a free batch dimension)
    pub max_batch_size: usize,
    /// how long a request may wait for others to fill a batch
    pub max_queue_delay: Duration,
    /// requests waiting at most, 1 to [`ServingSettings::MAX_QUEUE`]
    pub max_queue_size: usize,
    /// a request's deadline when it names none, 1 ms to an hour
    pub timeout: Duration,
}

impl Default for ServingSettings {
    /// One instance per core (at most 4), 1 thread each, batches of up to 8 gathered without
    /// waiting, 256 waiting requests, 30 s deadlines.
    fn default() -> Self {
        ServingSettings {
            instances: tensorcv_infer::available_threads().clamp(1, 4),
            threads: 1,
            max_batch_size: 8,
            max_queue_delay: Duration::ZERO,
            max_queue_size: 256,
            timeout: Duration::from_secs(30),
        }
    }
}

/// The `[serving]` table: each key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    instances: Option<usize>,
    threads: Option<usize>,
    max_batch_size: Option<usize>,
    max_queue_delay_ms: Option<f64>,
    max_queue_size: Option<usize>,
    timeout_ms: Option<u64>,
}

impl ServingSettings {
    /// The most instances of one model.
    pub const MAX_INSTANCES: usize = 64;
    /// The largest batch.
    pub const MAX_BATCH: usize = 1024;
    /// The longest queue.
    pub const MAX_QUEUE: usize = 1 << 20;
    /// The longest batching delay.
    pub const MAX_DELAY: Duration = Duration::from_secs(10);
    /// The longest deadline.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

    /// Every setting in its range; the error names the setting (`where_` says whose: a flag,
    /// a card).
    pub fn validate(&self, where_: &str) -> Result<()> {
        let check = |ok: bool, key: &str, value: String, range: &str| {
            if ok {
                Ok(())
            } else {
                Err(Error::Invalid {
                    setting: format!("{where_}{key}"),
                    message: format!("{value} is not in {range}"),
                })
            }
        };
        check(
            (1..=Self::MAX_INSTANCES).contains(&self.instances),
            "instances",
            self.instances.to_string(),
            "1..=64",
        )?;
        check(
            (1..=tensorcv_infer::LoadOptions::MAX_THREADS).contains(&self.threads),
            "threads",
            self.threads.to_string(),
            "1..=1024",
        )?;
        check(
            (1..=Self::MAX_BATCH).contains(&self.max_batch_size),
            "max_batch_size",
            self.max_batch_size.to_string(),
            "1..=1024",
        )?;
        check(
            self.max_queue_delay <= Self::MAX_DELAY,
            "max_queue_delay_ms",
            format!("{}", self.max_queue_delay.as_secs_f64() * 1e3),
            "0..=10000",
        )?;
        check(
            (1..=Self::MAX_QUEUE).contains(&self.max_queue_size),
            "max_queue_size",
            self.max_queue_size.to_string(),
            "1..=1048576",
        )?;
        check(
            self.timeout >= Duration::from_millis(1) && self.timeout <= Self::MAX_TIMEOUT,
            "timeout_ms",
            self.timeout.as_millis().to_string(),
            "1..=3600000",
        )
    }

    /// These settings with a card's `[serving]` table over them, checked; the error names the
    /// card's key.
    pub fn with_card(&self, table: Option<&toml::Table>, card: &str) -> Result<Self> {
        let Some(table) = table else {
            return Ok(self.clone());
        };
        let invalid = |message: String| Error::Invalid {
            setting: format!("{card} [serving]"),
            message,
        };
        let t: Table = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| invalid(e.to_string().trim().replace('\n', " ")))?;
        let mut s = self.clone();
        s.instances = t.instances.unwrap_or(s.instances);
        s.threads = t.threads.unwrap_or(s.threads);
        s.max_batch_size = t.max_batch_size.unwrap_or(s.max_batch_size);
        s.max_queue_size = t.max_queue_size.unwrap_or(s.max_queue_size);
        if let Some(ms) = t.max_queue_delay_ms {
            if !(ms.is_finite() && (0.0..=10_000.0).contains(&ms)) {
                return Err(invalid(format!(
                    "max_queue_delay_ms = {ms} is not in 0..=10000"
                )));
            }
            s.max_queue_delay = Duration::from_secs_f64(ms / 1e3);
        }
        if let Some(ms) = t.timeout_ms {
            s.timeout = Duration::from_millis(ms);
        }
        s.validate(&format!("{card} [serving] "))?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_changes_what_it_names_and_is_checked() {
        let base = ServingSettings::default();
        let table: toml::Table = toml::from_str("instances = 3\nmax_queue_delay_ms = 1.5").unwrap();
        let s = base.with_card(Some(&table), "m.toml").unwrap();
        assert_eq!(s.instances, 3);
        assert_eq!(s.max_queue_delay, Duration::from_micros(1500));
        assert_eq!(s.max_batch_size, base.max_batch_size);
        for (text, key) in [
            ("instances = 0", "instances"),
            ("max_batch_size = 5000", "max_batch_size"),
            ("max_queue_delay_ms = -1.0", "max_queue_delay_ms"),
            ("timeout_ms = 0", "timeout_ms"),
            ("batch = 2", "batch"),
        ] {
            let table: toml::Table = toml::from_str(text).unwrap();
            let err = base
                .with_card(Some(&table), "m.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains("m.toml") && err.contains(key), "{text}: {err}");
        }
    }
}
