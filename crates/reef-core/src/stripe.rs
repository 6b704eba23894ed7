//! Stripe, as a source of revenue: its webhook signature scheme (checked before anything is read)
//! and the translation of its events into revenue events and subscriptions. Invariant: an
//! event is counted at most once (revenue is keyed by Stripe's event id), amounts stay in the
//! currency Stripe reported, and an event REEF cannot attribute is kept as `unmapped`, not lost.

use crate::{Ports, RevenueEvent, RevenueKind, StoreError, Subscription, Timestamp};
use serde_json::Value;
use std::collections::HashMap;

/// Stripe signs its webhooks with the scheme in `signature`.
pub use crate::signature::{sign, verify};

/// Stripe's own libraries' default: a signature older than five minutes is refused.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;
/// Stripe events are a few KB; anything near this is not one.
pub const MAX_PAYLOAD: usize = crate::signature::MAX_PAYLOAD;
/// Where revenue goes when no product claims its Stripe price/product.
pub const UNMAPPED: &str = "unmapped";

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error(transparent)]
    Signature(#[from] crate::signature::SignatureError),
    #[error("the payload is not a Stripe event: {0}")]
    BadPayload(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StripeError {
    /// Whether Stripe should retry (a store problem) rather than drop it (a bad request).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StripeError::Store(_))
    }
}

/// What one Stripe event did to REEF's books.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outcome {
    pub event: String,
    pub kind: String,
    /// `recorded`, `duplicate`, `subscription`, `stale_subscription` or `ignored`.
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    pub note: String,
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn i(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_i64)
}

fn at(unix: i64) -> Timestamp {
    crate::time::from_millis(unix.saturating_mul(1000))
}

/// Which REEF product a Stripe price or product id belongs to (from products' `stripe_ids`).
#[derive(Debug, Clone, Default)]
pub struct ProductMap(HashMap<String, String>);

impl ProductMap {
    pub async fn load(ports: &Ports) -> Result<Self, StoreError> {
        let mut m = HashMap::new();
        for p in ports.revenue.products().await?.items {
            for sid in &p.stripe_ids {
                m.insert(sid.clone(), p.id.clone());
            }
        }
        Ok(ProductMap(m))
    }

    /// `metadata.reef_product` first (set on a Payment Link or Checkout Session), then any id.
    fn find<'a>(&self, metadata: Option<&Value>, ids: impl IntoIterator<Item = &'a str>) -> Option<String> {
        if let Some(p) = metadata.and_then(|m| s(m, "reef_product")).filter(|p| !p.is_empty()) {
            return Some(p.to_string());
        }
        ids.into_iter().find_map(|id| self.0.get(id).cloned())
    }
}

/// The price and product ids an object refers to, across Stripe API versions' shapes.
fn price_ids(item: &Value) -> Vec<&str> {
    let mut out = vec![];
    for holder in [item.get("price"), item.get("plan"), item.pointer("/pricing/price_details")] {
        let Some(h) = holder else { continue };
        if let Some(id) = h.as_str() {
            out.push(id);
            continue;
        }
        for k in ["id", "price", "product"] {
            if let Some(v) = s(h, k) {
                out.push(v);
            }
        }
    }
    out
}

/// One month of a recurring price, in minor units.
fn monthly(unit: i64, quantity: i64, interval: &str, count: i64) -> i64 {
    let per = (unit * quantity) as f64 / count.max(1) as f64;
    (match interval {
        "day" => per * 365.0 / 12.0,
        "week" => per * 52.0 / 12.0,
        "year" => per / 12.0,
        _ => per,
    })
    .round() as i64
}

/// Turns verified Stripe events into revenue and subscriptions.
pub struct StripeIntake {
    ports: Ports,
    /// `webhook` or `pull`: recorded with each event.
    via: &'static str,
    /// Read once per intake: a pull applies many events with one look at the products.
    map: ProductMap,
}

impl StripeIntake {
    pub async fn new(ports: Ports, via: &'static str) -> Result<Self, StoreError> {
        let map = ProductMap::load(&ports).await?;
        Ok(StripeIntake { ports, via, map })
    }

    pub async fn ingest(&self, payload: &[u8]) -> Result<Outcome, StripeError> {
        let ev: Value = serde_json::from_slice(payload).map_err(|e| StripeError::BadPayload(e.to_string()))?;
        self.ingest_value(&ev).await
    }

    pub async fn ingest_value(&self, ev: &Value) -> Result<Outcome, StripeError> {
        let id = s(ev, "id").filter(|i| i.starts_with("evt_")).ok_or_else(|| StripeError::BadPayload("no evt_ id".into()))?;
        let kind = s(ev, "type").ok_or_else(|| StripeError::BadPayload("no type".into()))?;
        let created = i(ev, "created").ok_or_else(|| StripeError::BadPayload("no created time".into()))?;
        let obj = ev.pointer("/data/object").filter(|o| o.is_object()).ok_or_else(|| StripeError::BadPayload("no data.object".into()))?;
        let out = |result: &str, product: Option<String>, note: String| Outcome {
            event: id.into(),
            kind: kind.into(),
            result: result.into(),
            product,
            note,
        };
        let map = &self.map;
        let money = |product: String, amount: i64, currency: &str, rk: RevenueKind, reference: Option<String>| {
            let currency = currency.to_ascii_lowercase();
            RevenueEvent {
                id: id.into(),
                product,
                amount_minor: amount,
                currency,
                kind: rk,
                at: at(created),
                source: format!("stripe:{}", self.via),
                data: serde_json::json!({"type": kind, "object": s(obj, "id"), "livemode": ev.get("livemode")}),
                reference,
            }
        };
        let record = |e: RevenueEvent| async move {
            let product = e.product.clone();
            let note = format!("{} {}", e.amount_minor, e.currency);
            let fresh = self.ports.revenue.record(e).await?;
            if product == UNMAPPED {
                tracing::warn!(event = id, "Stripe event matches no product's stripe_ids; recorded as unmapped");
            }
            Ok::<_, StripeError>(out(if fresh { "recorded" } else { "duplicate" }, Some(product), note))
        };
        match kind {
            "charge.succeeded" => {
                if s(obj, "invoice").is_some() {
                    return Ok(out("ignored", None, "an invoice's charge: counted by invoice.paid".into()));
                }
                let amount = i(obj, "amount").ok_or_else(|| StripeError::BadPayload("charge without amount".into()))?;
                let currency = s(obj, "currency").ok_or_else(|| StripeError::BadPayload("charge without currency".into()))?;
                let product = map.find(obj.get("metadata"), []).unwrap_or_else(|| UNMAPPED.into());
                record(money(product, amount, currency, RevenueKind::Charge, s(obj, "id").map(String::from))).await
            }
            "invoice.paid" => {
                let amount = i(obj, "amount_paid").unwrap_or(0);
                if amount == 0 {
                    return Ok(out("ignored", None, "nothing was paid (a free or fully discounted invoice)".into()));
                }
                let currency = s(obj, "currency").ok_or_else(|| StripeError::BadPayload("invoice without currency".into()))?;
                let lines: Vec<&Value> =
                    obj.pointer("/lines/data").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
                let ids: Vec<&str> = lines.iter().flat_map(|l| price_ids(l)).collect();
                let product = map
                    .find(obj.get("metadata"), ids.iter().copied())
                    .or_else(|| map.find(obj.pointer("/subscription_details/metadata"), []))
                    .unwrap_or_else(|| UNMAPPED.into());
                // The charge id when the API version still sends it, else the invoice's: a refund
                // finds its product through either.
                let reference = s(obj, "charge").or(s(obj, "id")).map(String::from);
                record(money(product, amount, currency, RevenueKind::InvoicePaid, reference)).await
            }
            "charge.refunded" => {
                let total = i(obj, "amount_refunded").unwrap_or(0);
                let before = ev.pointer("/data/previous_attributes/amount_refunded").and_then(Value::as_i64).unwrap_or(0);
                let delta = total - before;
                if delta <= 0 {
                    return Ok(out("ignored", None, "no new refund in this event".into()));
                }
                let currency = s(obj, "currency").ok_or_else(|| StripeError::BadPayload("charge without currency".into()))?;
                let mut product = map.find(obj.get("metadata"), []);
                for r in [s(obj, "id"), s(obj, "invoice")].into_iter().flatten() {
                    if product.is_none() {
                        product = self.ports.revenue.product_of_reference(r).await?;
                    }
                }
                let product = product.unwrap_or_else(|| UNMAPPED.into());
                record(money(product, -delta, currency, RevenueKind::Refund, s(obj, "id").map(String::from))).await
            }
            k if k.starts_with("customer.subscription.") => {
                let sub_id = s(obj, "id").ok_or_else(|| StripeError::BadPayload("subscription without id".into()))?;
                let items: Vec<&Value> =
                    obj.pointer("/items/data").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
                let mut amount = 0;
                let mut currency = s(obj, "currency").map(str::to_ascii_lowercase);
                for it in &items {
                    let price = it.get("price").or_else(|| it.get("plan")).unwrap_or(&Value::Null);
                    let unit = i(price, "unit_amount").or_else(|| i(price, "amount")).unwrap_or(0);
                    let qty = i(it, "quantity").unwrap_or(1);
                    let rec = price.get("recurring").unwrap_or(price);
                    let interval = s(rec, "interval").unwrap_or("month");
                    let count = i(rec, "interval_count").unwrap_or(1);
                    amount += monthly(unit, qty, interval, count);
                    if currency.is_none() {
                        currency = s(price, "currency").map(str::to_ascii_lowercase);
                    }
                }
                let currency = currency.ok_or_else(|| StripeError::BadPayload("subscription without currency".into()))?;
                let ids: Vec<&str> = items.iter().flat_map(|l| price_ids(l)).collect();
                let product = map.find(obj.get("metadata"), ids.iter().copied()).unwrap_or_else(|| UNMAPPED.into());
                let status = if k == "customer.subscription.deleted" { "canceled" } else { s(obj, "status").unwrap_or("active") };
                let kept = self
                    .ports
                    .revenue
                    .upsert_subscription(Subscription {
                        id: sub_id.into(),
                        product: product.clone(),
                        customer: s(obj, "customer").map(String::from),
                        status: status.into(),
                        currency: currency.clone(),
                        monthly_minor: amount,
                        updated_at: at(created),
                        source: format!("stripe:{}", self.via),
                    })
                    .await?;
                Ok(out(
                    if kept { "subscription" } else { "stale_subscription" },
                    Some(product),
                    format!("{status}, {amount} {currency} a month"),
                ))
            }
            _ => Ok(out("ignored", None, "not a revenue event".into())),
        }
    }
}

/// The settings key holding pull mode's cursor: the newest event time fully processed.
pub const CURSOR_KEY: &str = crate::settings::STRIPE_CURSOR;
/// The event types pull mode asks for: the ones `StripeIntake` counts.
pub const EVENT_TYPES: [&str; 6] = [
    "charge.succeeded",
    "charge.refunded",
    "invoice.paid",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
];

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PullReport {
    pub fetched: usize,
    pub recorded: usize,
    pub duplicates: usize,
    pub subscriptions: usize,
    pub ignored: usize,
    /// Unix time of the newest event processed: the next pull starts there.
    pub cursor: Option<i64>,
}

/// Pull mode: pages through `/v1/events` since the saved cursor with a restricted key, for a
/// factory behind a home router that Stripe cannot reach. The cursor moves only after every
/// fetched event was recorded, and events are keyed by id, so a pull killed half-way repeats
/// harmlessly.
pub struct StripePull {
    pub ports: Ports,
    pub api_base: String,
    pub api_key: crate::secret::Secret,
    pub http: reqwest::Client,
}

impl StripePull {
    async fn page(&self, since: Option<i64>, starting_after: Option<&str>) -> Result<Value, String> {
        let mut q: Vec<(String, String)> = vec![("limit".into(), "100".into())];
        for t in EVENT_TYPES {
            q.push(("types[]".into(), t.into()));
        }
        if let Some(c) = since {
            // gte, not gt: events in the cursor's own second may have arrived after it was saved.
            q.push(("created[gte]".into(), c.to_string()));
        }
        if let Some(a) = starting_after {
            q.push(("starting_after".into(), a.into()));
        }
        let url = format!("{}/v1/events", self.api_base.trim_end_matches('/'));
        let resp = self
            .http
            .get(&url)
            .basic_auth(self.api_key.expose(), Some(""))
            .query(&q)
            .send()
            .await
            .map_err(|e| format!("Stripe unreachable at {url}: {e}"))?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|e| format!("Stripe's answer is not JSON: {e}"))?;
        if !status.is_success() {
            let msg = body.pointer("/error/message").and_then(Value::as_str).unwrap_or("no message");
            return Err(format!("Stripe refused the events request (HTTP {status}): {msg}"));
        }
        Ok(body)
    }

    pub async fn pull_once(&self) -> Result<PullReport, StripeError> {
        let saved = self.ports.settings.get(CURSOR_KEY).await?.and_then(|v| v.get("created").and_then(Value::as_i64));
        // Stripe lists newest first: gather every page, then apply oldest first.
        let mut events: Vec<Value> = vec![];
        let mut after: Option<String> = None;
        loop {
            let page = self.page(saved, after.as_deref()).await.map_err(StripeError::BadPayload)?;
            let data = page.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
            after = data.last().and_then(|e| s(e, "id")).map(String::from);
            events.extend(data);
            if !page.get("has_more").and_then(Value::as_bool).unwrap_or(false) || after.is_none() {
                break;
            }
        }
        events.sort_by_key(|e| i(e, "created").unwrap_or(0));
        let intake = StripeIntake::new(self.ports.clone(), "pull").await?;
        let mut r = PullReport { fetched: events.len(), cursor: saved, ..Default::default() };
        for e in &events {
            let o = match intake.ingest_value(e).await {
                Ok(o) => o,
                Err(e @ StripeError::Store(_)) => return Err(e),
                Err(err) => {
                    tracing::warn!(event = s(e, "id").unwrap_or("?"), error = %err, "Stripe event skipped");
                    r.ignored += 1;
                    continue;
                }
            };
            match o.result.as_str() {
                "recorded" => r.recorded += 1,
                "duplicate" => r.duplicates += 1,
                "subscription" | "stale_subscription" => r.subscriptions += 1,
                _ => r.ignored += 1,
            }
        }
        if let Some(newest) = events.last().and_then(|e| i(e, "created")) {
            self.ports.settings.put(CURSOR_KEY, serde_json::json!({"created": newest})).await?;
            r.cursor = Some(newest);
        }
        Ok(r)
    }

    /// Pulls every `every` until `shutdown`; a failed pull is logged and tried next time.
    pub async fn run(self, every: std::time::Duration, shutdown: tokio_util::sync::CancellationToken) -> Result<(), StripeError> {
        loop {
            match self.pull_once().await {
                Ok(r) if r.fetched > 0 => tracing::info!(fetched = r.fetched, recorded = r.recorded, "Stripe events pulled"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "Stripe pull failed; trying again later"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recurring_prices_become_monthly_amounts() {
        assert_eq!(monthly(900, 1, "month", 1), 900);
        assert_eq!(monthly(12000, 1, "year", 1), 1000);
        assert_eq!(monthly(1000, 2, "month", 3), 667);
        assert_eq!(monthly(100, 1, "week", 1), 433);
    }
}
