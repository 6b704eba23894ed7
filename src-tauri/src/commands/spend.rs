//! Spend grouped by agent, model, product or day; revenue and the books.

use crate::dto::*;
use crate::error::AppResult;
use crate::state::AppState;
use reef_core::*;
use tauri::State;

/// Spend over the last `days` days grouped by agent, model, product or day.
#[tauri::command]
#[specta::specta]
pub async fn spend(state: State<'_, AppState>, group: SpendGroup, days: u32) -> AppResult<Vec<SpendRowDto>> {
    let f = state.factory()?;
    let g = group;
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

/// Today's spend per agent per hour of the factory's day, for the chart with cap lines.
#[tauri::command]
#[specta::specta]
pub async fn spend_by_hour(state: State<'_, AppState>) -> AppResult<Vec<HourSpendDto>> {
    let f = state.factory()?;
    Ok(f.spend_today_by_hour()
        .await?
        .into_iter()
        .map(|h| HourSpendDto { hour: time::fmt_ts(&h.hour), agent: h.agent, usd: h.cost.dollars() })
        .collect())
}
