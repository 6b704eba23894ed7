//! The factory's books: revenue per product and month, MRR, revenue against LLM spend per
//! product and the self-funding ratio. Invariant: no currency is converted into another — only
//! USD revenue is set against LLM spend (which is in USD); other currencies are shown beside it.

use crate::{Ports, RevenueRow, SpendGroup, StoreError, Timestamp, Usd};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MrrRow {
    pub product: String,
    pub currency: String,
    pub mrr_minor: i64,
    pub subscriptions: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductBooks {
    pub product: String,
    /// All-time revenue per currency, minor units.
    pub revenue: BTreeMap<String, i64>,
    pub llm_spend: Usd,
    /// USD revenue minus LLM spend, in dollars.
    pub net_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthBooks {
    pub month: String,
    pub revenue_usd_minor: i64,
    pub llm_spend: Usd,
    /// USD revenue ÷ LLM spend that month; `None` when nothing was spent.
    pub self_funding: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Books {
    pub by_month: Vec<RevenueRow>,
    pub mrr: Vec<MrrRow>,
    pub products: Vec<ProductBooks>,
    pub months: Vec<MonthBooks>,
    pub revenue_usd_minor: i64,
    pub llm_spend: Usd,
    /// All-time USD revenue ÷ LLM spend: above 1 the factory pays for itself.
    pub self_funding: Option<f64>,
    /// Revenue in other currencies, not part of the ratio (no silent conversion).
    pub other_currencies: BTreeMap<String, i64>,
}

fn ratio(revenue_minor: i64, spend: Usd) -> Option<f64> {
    (spend.0 > 0).then(|| (revenue_minor as f64 / 100.0) / spend.dollars())
}

/// Everything the Revenue view and `reef revenue report` show, from the store as it is now.
pub async fn books(ports: &Ports, now: Timestamp) -> Result<Books, StoreError> {
    let by_month = ports.revenue.by_product_month().await?;
    let epoch = crate::time::from_millis(0);
    let until = now + chrono::Duration::days(1);
    let spend_by_product = ports.ledger.spend(SpendGroup::Product, epoch, until).await?;
    let spend_by_day = ports.ledger.spend(SpendGroup::Day, epoch, until).await?;

    let mut mrr: BTreeMap<(String, String), (i64, u64)> = BTreeMap::new();
    for s in ports.revenue.subscriptions().await? {
        if s.counts_for_mrr() {
            let e = mrr.entry((s.product, s.currency)).or_default();
            e.0 += s.monthly_minor;
            e.1 += 1;
        }
    }

    let mut products: BTreeMap<String, ProductBooks> = BTreeMap::new();
    let entry = |products: &mut BTreeMap<String, ProductBooks>, p: &str| {
        products.entry(p.to_string()).or_insert_with(|| ProductBooks {
            product: p.to_string(),
            revenue: BTreeMap::new(),
            llm_spend: Usd(0),
            net_usd: 0.0,
        });
    };
    let mut months: BTreeMap<String, (i64, Usd)> = BTreeMap::new();
    let mut other_currencies = BTreeMap::new();
    let mut revenue_usd_minor = 0;
    for r in &by_month {
        entry(&mut products, &r.product);
        if let Some(p) = products.get_mut(&r.product) {
            *p.revenue.entry(r.currency.clone()).or_default() += r.amount_minor;
        }
        if r.currency == "usd" {
            revenue_usd_minor += r.amount_minor;
            months.entry(r.month.clone()).or_default().0 += r.amount_minor;
        } else {
            *other_currencies.entry(r.currency.clone()).or_default() += r.amount_minor;
        }
    }
    let mut llm_spend = Usd(0);
    for s in &spend_by_product {
        // Spend with no product (research, planning) counts in the total, not against a product.
        llm_spend = llm_spend + s.cost;
        if s.key.is_empty() || s.key == "-" || s.key == "(none)" {
            continue;
        }
        entry(&mut products, &s.key);
        if let Some(p) = products.get_mut(&s.key) {
            p.llm_spend = p.llm_spend + s.cost;
        }
    }
    for d in &spend_by_day {
        if let Some(m) = d.key.get(..7) {
            let e = months.entry(m.to_string()).or_default();
            e.1 = e.1 + d.cost;
        }
    }
    for p in products.values_mut() {
        p.net_usd = p.revenue.get("usd").copied().unwrap_or(0) as f64 / 100.0 - p.llm_spend.dollars();
    }
    Ok(Books {
        by_month,
        mrr: mrr
            .into_iter()
            .map(|((product, currency), (mrr_minor, subscriptions))| MrrRow { product, currency, mrr_minor, subscriptions })
            .collect(),
        products: products.into_values().collect(),
        months: months
            .into_iter()
            .map(|(month, (rev, spend))| MonthBooks { month, revenue_usd_minor: rev, llm_spend: spend, self_funding: ratio(rev, spend) })
            .collect(),
        revenue_usd_minor,
        llm_spend,
        self_funding: ratio(revenue_usd_minor, llm_spend),
        other_currencies,
    })
}

/// Saves a product and records in the knowledge graph what it is built on: its deploy target,
/// auth and payment providers (`product:quickform —integrates_with→ provider:stripe`).
pub async fn save_product(ports: &Ports, product: crate::Product, now: Timestamp) -> Result<(), StoreError> {
    let g = &ports.graph;
    let pid = format!("product:{}", product.id);
    g.upsert_entity(crate::Entity {
        id: pid.clone(),
        kind: "product".into(),
        name: product.name.clone(),
        properties: serde_json::json!({"status": product.status}),
    })
    .await?;
    let links = [
        (product.deploy_target.as_deref(), "deploys_to", 1.0),
        (product.auth_provider.as_deref(), "integrates_with", 0.8),
        (product.payment_provider.as_deref(), "integrates_with", 1.0),
    ];
    for (provider, kind, weight) in links {
        let Some(p) = provider.map(str::trim).filter(|p| !p.is_empty()) else { continue };
        let id = format!("provider:{}", p.to_ascii_lowercase());
        g.upsert_entity(crate::Entity { id: id.clone(), kind: "provider".into(), name: p.into(), properties: serde_json::json!({}) })
            .await?;
        g.relate(crate::Relationship { from: pid.clone(), to: id, kind: kind.into(), weight, created_at: now }).await?;
    }
    ports.revenue.upsert_product(product).await
}
