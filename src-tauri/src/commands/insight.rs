//! Schedules, spend, revenue, memory search and the knowledge graph.

use crate::dto::*;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use reef_core::factory::schedules;
use reef_core::*;
use tauri::State;

#[tauri::command]
#[specta::specta]
pub async fn list_schedules(state: State<'_, AppState>) -> AppResult<Vec<ScheduleDto>> {
    let f = state.factory()?;
    let mut out = vec![];
    for s in &f.config.schedules {
        let st = schedules::state(f, &s.section.name).await?;
        out.push(ScheduleDto {
            name: s.section.name.clone(),
            cron: s.section.cron.clone(),
            title: s.section.title.clone(),
            agent: s.section.agent.clone(),
            next_run: s.next_slot(f.config.timezone, f.now()).map(|t| time::fmt_ts(&t)),
            last_slot: st.last_slot.map(|t| time::fmt_ts(&t)),
            paused: st.paused,
            overlap: if s.skip_overlap { "skip".into() } else { "allow".into() },
        });
    }
    Ok(out)
}

/// `action`: "pause", "resume" or "run".
#[tauri::command]
#[specta::specta]
pub async fn schedule_action(state: State<'_, AppState>, name: String, action: String) -> AppResult<()> {
    let f = state.factory()?;
    let who = f.operator();
    match action.as_str() {
        "pause" => f.pause_schedule(&name, true, &who).await?,
        "resume" => f.pause_schedule(&name, false, &who).await?,
        "run" => {
            f.run_schedule_now(&name, &who).await?;
        }
        other => return Err(AppError::invalid(format!("{other:?} is not pause, resume or run"))),
    }
    Ok(())
}

/// Spend over the last `days` days grouped by "agent", "model", "product" or "day".
#[tauri::command]
#[specta::specta]
pub async fn spend(state: State<'_, AppState>, group: String, days: u32) -> AppResult<Vec<SpendRowDto>> {
    let f = state.factory()?;
    let g = match group.as_str() {
        "agent" => SpendGroup::Agent,
        "model" => SpendGroup::Model,
        "product" => SpendGroup::Product,
        "day" => SpendGroup::Day,
        o => return Err(AppError::invalid(format!("{o:?} is not agent, model, product or day"))),
    };
    let now = f.now();
    let rows = f.ports.ledger.spend(g, now - chrono::Duration::days(days.max(1) as i64), now + chrono::Duration::minutes(1)).await?;
    Ok(rows.into_iter().map(|r| SpendRowDto { key: r.key, usd: r.cost.dollars(), calls: r.calls as u32 }).collect())
}

#[tauri::command]
#[specta::specta]
pub async fn revenue(state: State<'_, AppState>) -> AppResult<RevenueDto> {
    let f = state.factory()?;
    let b = reef_core::books::books(&f.ports, f.now()).await?;
    let products = f.ports.revenue.products().await?.items;
    let major = |m: i64| m as f64 / 100.0;
    let money = |m: &std::collections::BTreeMap<String, i64>| -> Vec<MoneyDto> {
        m.iter().map(|(c, v)| MoneyDto { currency: c.clone(), amount: major(*v) }).collect()
    };
    Ok(RevenueDto {
        rows: b
            .by_month
            .into_iter()
            .map(|r| RevenueRowDto { product: r.product, month: r.month, currency: r.currency, amount: major(r.amount_minor) })
            .collect(),
        products: products
            .into_iter()
            .map(|p| ProductDto { id: p.id, name: p.name, status: p.status, deploy_target: p.deploy_target })
            .collect(),
        mrr: b
            .mrr
            .into_iter()
            .map(|m| MrrDto { product: m.product, currency: m.currency, mrr: major(m.mrr_minor), subscriptions: m.subscriptions as u32 })
            .collect(),
        books: b
            .products
            .iter()
            .map(|p| ProductBooksDto {
                product: p.product.clone(),
                revenue: money(&p.revenue),
                llm_spend_usd: p.llm_spend.dollars(),
                net_usd: p.net_usd,
            })
            .collect(),
        months: b
            .months
            .into_iter()
            .map(|m| MonthBooksDto {
                month: m.month,
                revenue_usd: major(m.revenue_usd_minor),
                llm_spend_usd: m.llm_spend.dollars(),
                self_funding: m.self_funding,
            })
            .collect(),
        self_funding: b.self_funding,
        revenue_usd: major(b.revenue_usd_minor),
        llm_spend_usd: b.llm_spend.dollars(),
        other_currencies: money(&b.other_currencies),
    })
}

#[tauri::command]
#[specta::specta]
pub async fn search_memory(
    state: State<'_, AppState>,
    query: String,
    agent: Option<String>,
    product: Option<String>,
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
) -> AppResult<MemorySearchDto> {
    let f = state.factory()?;
    if query.trim().is_empty() {
        return Err(AppError::invalid("type something to search for"));
    }
    if f.ports.memory.count().await? == 0 {
        return Ok(MemorySearchDto { method: "none".into(), embedder: String::new(), hits: vec![] });
    }
    let day = |s: Option<String>| s.filter(|s| !s.trim().is_empty()).map(|s| time::parse_when(&s).map_err(AppError::invalid)).transpose();
    let filter = MemoryFilter {
        agent: agent.filter(|s| !s.is_empty()),
        product: product.filter(|s| !s.is_empty()),
        kind: kind.filter(|s| !s.is_empty()),
        since: day(since)?,
        until: day(until)?,
        ..Default::default()
    };
    let embedder = state.embedder()?;
    let index = reef_core::memory::MemoryIndex::new(f.ports.clone(), embedder.clone());
    let r = index.search(&query, &filter, 20).await?;
    Ok(MemorySearchDto {
        method: serde_json::to_value(r.method).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        embedder: embedder.name().to_string(),
        hits: r
            .hits
            .into_iter()
            .map(|h| MemoryHitDto {
                id: h.doc.id,
                content: h.doc.content,
                kind: h.doc.kind,
                agent: h.doc.agent,
                product: h.doc.product,
                created_at: time::fmt_ts(&h.doc.created_at),
                score: h.score as f64,
            })
            .collect(),
    })
}

#[tauri::command]
#[specta::specta]
pub async fn list_entities(state: State<'_, AppState>) -> AppResult<Vec<EntityDto>> {
    let f = state.factory()?;
    Ok(f.ports
        .graph
        .entities(None, 5000)
        .await?
        .items
        .into_iter()
        .map(|e| EntityDto { id: e.id, kind: e.kind, name: e.name, depth: 0 })
        .collect())
}

#[tauri::command]
#[specta::specta]
pub async fn traverse(state: State<'_, AppState>, start: String, depth: u32) -> AppResult<GraphDto> {
    let f = state.factory()?;
    let t = f.ports.graph.traverse(&start, depth.clamp(1, 6)).await?;
    Ok(GraphDto {
        nodes: t.nodes.into_iter().map(|(e, d)| EntityDto { id: e.id, kind: e.kind, name: e.name, depth: d }).collect(),
        edges: t.edges.into_iter().map(|r| EdgeDto { from: r.from, to: r.to, kind: r.kind, weight: r.weight }).collect(),
    })
}

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
