//! Hardware samples per host, and why a host has no GPU charts.

use crate::dto::*;
use crate::error::AppResult;
use crate::state::AppState;
use tauri::State;

/// CPU, RAM, disk and GPU over the last `hours`, per host, with what each host says of its GPU.
#[tauri::command]
#[specta::specta]
pub async fn hardware(state: State<'_, AppState>, hours: u32) -> AppResult<Vec<HostDto>> {
    let f = state.factory()?;
    let (now, since) = (f.now(), f.now() - chrono::Duration::hours(hours.clamp(1, 24 * 30) as i64));
    let cpu = f.ports.metrics.query(None, "cpu.percent", since, now + chrono::Duration::minutes(1)).await?;
    let mut hosts: Vec<String> = cpu.iter().map(|s| s.source.host.clone()).collect();
    hosts.sort();
    hosts.dedup();
    let mut out = vec![];
    for h in hosts {
        let mut series = vec![];
        for m in ["cpu.percent", "mem.percent", "disk./.percent", "gpu0.util_percent", "gpu0.temp_c"] {
            let pts = f.ports.metrics.query(Some(&h), m, since, now + chrono::Duration::minutes(1)).await?;
            if !pts.is_empty() {
                series.push(SeriesDto {
                    metric: m.into(),
                    t: pts.iter().map(|p| p.timestamp.timestamp() as f64).collect(),
                    v: pts.iter().map(|p| p.value).collect(),
                });
            }
        }
        // VRAM as a share: used over total, sample by sample (they are taken together).
        let used = f.ports.metrics.query(Some(&h), "gpu0.mem_used_bytes", since, now + chrono::Duration::minutes(1)).await?;
        let total = f.ports.metrics.query(Some(&h), "gpu0.mem_total_bytes", since, now + chrono::Duration::minutes(1)).await?;
        let vram: Vec<(f64, f64)> = used
            .iter()
            .filter_map(|u| {
                let t = total.iter().find(|t| t.timestamp == u.timestamp && t.value > 0.0)?;
                Some((u.timestamp.timestamp() as f64, 100.0 * u.value / t.value))
            })
            .collect();
        if !vram.is_empty() {
            let at = series.iter().position(|s| s.metric == "gpu0.temp_c").unwrap_or(series.len());
            series.insert(
                at,
                SeriesDto {
                    metric: "gpu0.mem_percent".into(),
                    t: vram.iter().map(|p| p.0).collect(),
                    v: vram.iter().map(|p| p.1).collect(),
                },
            );
        }
        let gpu = f.ports.settings.get(&reef_core::settings::Key::Telemetry(&h).id()).await?.map(|v| v["gpu"].clone());
        let gpu_note = match gpu {
            Some(g) if g["state"] == "unavailable" => g["reason"].as_str().map(String::from),
            Some(g) if g["state"] == "available" => Some(format!(
                "{} GPU(s): {}",
                g["devices"],
                g["names"].as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()
            )),
            _ => None,
        };
        out.push(HostDto { host: h, gpu: gpu_note, series });
    }
    Ok(out)
}
