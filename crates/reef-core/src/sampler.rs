//! Hardware telemetry: CPU, RAM, disk and GPU samples tagged by host, every minute.
//!
//! Invariants: one `System` is reused and only what is read is refreshed; NVML is initialised
//! once — without an NVIDIA driver the GPU section says so once (in the store, for the window)
//! instead of failing every sample.

use crate::factory::Factory;
use crate::*;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::Nvml;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use sysinfo::{CpuRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};
use tokio_util::sync::CancellationToken;

/// What this host can say about its GPUs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum GpuStatus {
    Available {
        devices: u32,
        names: Vec<String>,
    },
    /// No NVIDIA driver (or NVML) here: the reason, shown instead of GPU charts.
    Unavailable {
        reason: String,
    },
}

pub struct Sampler {
    host: String,
    sys: System,
    /// `None` where the platform cannot list disks.
    disks: Option<Disks>,
    nvml: Result<Nvml, String>,
    /// Mount points sampled: the root and the data dir's.
    mounts: Vec<String>,
}

impl Sampler {
    /// A sampler for this host, or why the platform offers no telemetry.
    pub fn new(host: &str, data_dir: &std::path::Path) -> Result<Self, String> {
        let sys = System::new_with_specifics(
            RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing().with_usage()).with_memory(MemoryRefreshKind::nothing().with_ram()),
        )
        .map_err(|e| format!("no CPU/RAM telemetry on this platform ({e})"))?;
        let disks = Disks::new_with_refreshed_list().ok();
        // The mount holding the data dir (longest matching prefix) and the root.
        let mut mounts = vec!["/".to_string()];
        let best = disks
            .iter()
            .flat_map(|d| d.into_iter())
            .map(|d| d.mount_point().to_path_buf())
            .filter(|m| data_dir.starts_with(m))
            .max_by_key(|m| m.as_os_str().len());
        if let Some(m) = best.map(|m| m.display().to_string()) {
            if !mounts.contains(&m) {
                mounts.push(m);
            }
        }
        let nvml = Nvml::init().map_err(|e| format!("no NVIDIA driver or NVML on this host ({e})"));
        Ok(Self { host: host.into(), sys, disks, nvml, mounts })
    }

    pub fn gpu_status(&self) -> GpuStatus {
        match &self.nvml {
            Err(reason) => GpuStatus::Unavailable { reason: reason.clone() },
            Ok(n) => {
                let devices = n.device_count().unwrap_or(0);
                let names = (0..devices).filter_map(|i| n.device_by_index(i).ok().and_then(|d| d.name().ok())).collect();
                GpuStatus::Available { devices, names }
            }
        }
    }

    /// Readies CPU usage, which needs two refreshes some time apart.
    pub fn prime(&mut self) {
        self.sys.refresh_cpu_usage();
    }

    pub fn sample(&mut self, now: Timestamp) -> Vec<MetricSample> {
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        if let Some(d) = &mut self.disks {
            d.refresh(false);
        }
        let mut out = vec![];
        let mut put = |metric: String, value: f64| {
            if value.is_finite() {
                out.push(MetricSample { timestamp: now, source: MetricSource { host: self.host.clone(), metric }, value });
            }
        };
        put("cpu.percent".into(), self.sys.global_cpu_usage() as f64);
        let (used, total) = (self.sys.used_memory() as f64, self.sys.total_memory() as f64);
        put("mem.used_bytes".into(), used);
        put("mem.total_bytes".into(), total);
        if total > 0.0 {
            put("mem.percent".into(), 100.0 * used / total);
        }
        for d in self.disks.iter().flat_map(|d| d.into_iter()) {
            let m = d.mount_point().display().to_string();
            if self.mounts.contains(&m) && d.total_space() > 0 {
                let used = d.total_space() - d.available_space();
                put(format!("disk.{m}.percent"), 100.0 * used as f64 / d.total_space() as f64);
            }
        }
        if let Ok(n) = &self.nvml {
            for i in 0..n.device_count().unwrap_or(0) {
                let Ok(dev) = n.device_by_index(i) else { continue };
                if let Ok(u) = dev.utilization_rates() {
                    put(format!("gpu{i}.util_percent"), u.gpu as f64);
                }
                if let Ok(m) = dev.memory_info() {
                    put(format!("gpu{i}.mem_used_bytes"), m.used as f64);
                    put(format!("gpu{i}.mem_total_bytes"), m.total as f64);
                }
                if let Ok(t) = dev.temperature(TemperatureSensor::Gpu) {
                    put(format!("gpu{i}.temp_c"), t as f64);
                }
            }
        }
        out
    }
}

/// Thresholds that raise a `hardware.alert`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub ram_percent: f64,
    /// Consecutive samples above `ram_percent` before it counts as sustained.
    pub ram_samples: u32,
    pub disk_percent: f64,
    pub gpu_temp_c: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { ram_percent: 80.0, ram_samples: 5, disk_percent: 90.0, gpu_temp_c: 85.0 }
    }
}

/// Alert state across samples: each condition alerts once when it starts, again only after it
/// cleared.
#[derive(Debug, Default)]
pub struct Alarms {
    ram_streak: u32,
    active: std::collections::BTreeSet<String>,
}

impl Alarms {
    /// The alerts `samples` start (name, detail).
    pub fn check(&mut self, samples: &[MetricSample], l: &Limits) -> Vec<(String, String)> {
        let mut on = std::collections::BTreeMap::new();
        for s in samples {
            let m = s.source.metric.as_str();
            if m == "mem.percent" {
                self.ram_streak = if s.value > l.ram_percent { self.ram_streak + 1 } else { 0 };
                if self.ram_streak >= l.ram_samples {
                    on.insert("ram".to_string(), format!("RAM at {:.0}% for {} samples", s.value, self.ram_streak));
                }
            } else if m.starts_with("disk.") && s.value > l.disk_percent {
                on.insert(m.to_string(), format!("{} at {:.0}% full", m.trim_start_matches("disk.").trim_end_matches(".percent"), s.value));
            } else if m.ends_with(".temp_c") && s.value > l.gpu_temp_c {
                on.insert(m.to_string(), format!("{} at {:.0} °C", m.trim_end_matches(".temp_c"), s.value));
            }
        }
        let started: Vec<(String, String)> =
            on.iter().filter(|(k, _)| !self.active.contains(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        self.active = on.into_keys().collect();
        started
    }
}

/// Samples every `every` until `shutdown`, writing to the store and raising alerts.
#[tracing::instrument(skip_all, fields(host = %host))]
pub async fn run(f: Factory, host: String, every: Duration, shutdown: CancellationToken) -> Result<(), crate::engine::EngineError> {
    let mut s = match Sampler::new(&host, &f.config.data_dir) {
        Ok(s) => s,
        Err(reason) => {
            tracing::warn!(%reason, "hardware telemetry off");
            return Ok(());
        }
    };
    let gpu = s.gpu_status();
    if let GpuStatus::Unavailable { reason } = &gpu {
        tracing::info!(%reason, "GPU telemetry off");
    }
    f.ports
        .settings
        .put(&crate::settings::Key::Telemetry(&host).id(), serde_json::json!({"gpu": gpu, "started_at": time::fmt_ts(&f.now())}))
        .await?;
    s.prime();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut alarms, limits) = (Alarms::default(), Limits::default());
    loop {
        let samples = s.sample(f.now());
        if let Err(e) = f.ports.metrics.record(&samples).await {
            tracing::warn!(error = %e, "could not store telemetry");
        }
        for (what, detail) in alarms.check(&samples, &limits) {
            f.event(
                "hardware.alert",
                &format!("host:{host}"),
                Some(&format!("host:{host}")),
                serde_json::json!({"what": what, "detail": detail, "alert": true}),
            )
            .await?;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_host_and_says_why_there_is_no_gpu() {
        let mut s = Sampler::new("testhost", std::path::Path::new("/tmp")).unwrap();
        s.prime();
        std::thread::sleep(Duration::from_millis(250));
        let v = s.sample(Timestamp::default());
        let names: Vec<&str> = v.iter().map(|x| x.source.metric.as_str()).collect();
        for m in ["cpu.percent", "mem.used_bytes", "mem.total_bytes", "mem.percent"] {
            assert!(names.contains(&m), "{m} sampled: {names:?}");
        }
        assert!(names.iter().any(|n| n.starts_with("disk./")), "the root disk is sampled: {names:?}");
        assert!(v.iter().all(|x| x.source.host == "testhost"));
        match s.gpu_status() {
            // This machine has no NVIDIA driver; where one exists the sampler reports devices.
            GpuStatus::Unavailable { reason } => assert!(reason.contains("NVIDIA"), "{reason}"),
            GpuStatus::Available { devices, .. } => assert!(names.iter().any(|n| n.starts_with("gpu")) || devices == 0),
        }
    }

    #[test]
    fn alerts_start_once_and_ram_must_be_sustained() {
        let mk = |m: &str, v: f64| MetricSample {
            timestamp: Timestamp::default(),
            source: MetricSource { host: "h".into(), metric: m.into() },
            value: v,
        };
        let (mut a, l) = (Alarms::default(), Limits::default());
        for _ in 0..4 {
            assert!(a.check(&[mk("mem.percent", 95.0)], &l).is_empty(), "not yet sustained");
        }
        assert_eq!(a.check(&[mk("mem.percent", 95.0)], &l).len(), 1, "the fifth sample in a row alerts");
        assert!(a.check(&[mk("mem.percent", 95.0)], &l).is_empty(), "once per episode");
        assert!(a.check(&[mk("mem.percent", 10.0), mk("disk./.percent", 97.0), mk("gpu0.temp_c", 91.0)], &l).len() == 2);
    }
}
