//! Metric samples: one value of one metric on one host at one time.

use crate::time::{ts, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    #[serde(with = "ts")]
    pub timestamp: Timestamp,
    /// Seed 000's metaField: which host and metric.
    pub source: MetricSource,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MetricSource {
    pub host: String,
    /// e.g. `cpu.percent`, `mem.used_bytes`, `gpu0.temp_c`.
    pub metric: String,
}
