//! `reef revenue`: the books (per product and month, MRR, against LLM spend, self-funding), manual
//! entries, CSV import, a Stripe pull, and the products with their Stripe mapping.

use super::Out;
use clap::Subcommand;
use reef_core::factory::Factory;
use reef_core::*;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum RevenueCmd {
    /// Revenue per product and month, MRR, revenue against LLM spend, self-funding ratio.
    Report,
    /// Record revenue by hand (e.g. a bank transfer).
    Add {
        #[arg(long)]
        product: String,
        /// In major units: 12.50.
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// ISO 4217 code.
        #[arg(long, default_value = "usd")]
        currency: String,
        /// charge, invoice_paid, refund or manual.
        #[arg(long, default_value = "manual")]
        kind: String,
        /// The day it happened (YYYY-MM-DD); today if left out.
        #[arg(long)]
        date: Option<String>,
        /// Your own id for it, so adding it twice records it once.
        #[arg(long)]
        id: Option<String>,
    },
    /// Import a CSV: date,product,amount,currency[,kind][,id] with a header row.
    Import { file: PathBuf },
    /// Fetch Stripe events since the last pull (needs REEF_STRIPE_API_KEY, a restricted key).
    Pull,
    /// The products and the Stripe prices/products mapped to them.
    Products,
    /// Create or change a product.
    Product {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        deploy_target: Option<String>,
        #[arg(long)]
        auth_provider: Option<String>,
        #[arg(long)]
        payment_provider: Option<String>,
        /// A Stripe price_… or prod_… id whose revenue belongs to this product (repeatable).
        #[arg(long = "stripe-id")]
        stripe_ids: Vec<String>,
    },
}

/// "12.50" → 1250 minor units, exactly (no floating point on money).
pub fn parse_amount(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (neg, t) = t.strip_prefix('-').map(|r| (true, r)).unwrap_or((false, t));
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let ok = !whole.is_empty() && whole.chars().all(|c| c.is_ascii_digit()) && frac.len() <= 2 && frac.chars().all(|c| c.is_ascii_digit());
    if !ok {
        return Err(format!("{s:?} is not an amount like 12.50"));
    }
    let w: i64 = whole.parse().map_err(|_| format!("{s:?} is too large"))?;
    let f: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
    let v = w.checked_mul(100).and_then(|x| x.checked_add(f)).ok_or_else(|| format!("{s:?} is too large"))?;
    Ok(if neg { -v } else { v })
}

fn kind_of(s: &str) -> Result<RevenueKind, String> {
    serde_json::from_value(serde_json::json!(s)).map_err(|_| format!("{s:?} is not a kind (charge, invoice_paid, refund, manual)"))
}

fn currency_of(s: &str) -> Result<String, String> {
    let c = s.trim().to_ascii_lowercase();
    if c.len() == 3 && c.chars().all(|x| x.is_ascii_alphabetic()) {
        Ok(c)
    } else {
        Err(format!("{s:?} is not an ISO 4217 currency code"))
    }
}

/// One manual/CSV entry; the id is given or derived from the content, so importing the same
/// file twice records each row once.
/// One row as typed: every field still text, checked by `entry`.
struct Row<'a> {
    product: &'a str,
    amount: &'a str,
    currency: &'a str,
    kind: &'a str,
    date: Option<&'a str>,
    id: Option<&'a str>,
}

fn entry(f: &Factory, row: Row<'_>, source: &str) -> Result<RevenueEvent, String> {
    let Row { product, amount, currency, kind, date, id } = row;
    if product.trim().is_empty() {
        return Err("product is empty".into());
    }
    let amount_minor = parse_amount(amount)?;
    let currency = currency_of(currency)?;
    let kind = kind_of(kind)?;
    let at = match date.filter(|d| !d.trim().is_empty()) {
        Some(d) => reef_core::time::parse_when(d)?,
        None => f.now(),
    };
    let id = match id.filter(|i| !i.trim().is_empty()) {
        Some(i) => format!("{source}:{}", i.trim()),
        None => {
            let content = format!("{product}|{amount_minor}|{currency}|{kind:?}|{}", reef_core::time::fmt_ts(&at));
            format!("{source}:{:016x}", reef_core::embed::fnv(&content))
        }
    };
    Ok(RevenueEvent {
        id,
        product: product.trim().to_string(),
        amount_minor,
        currency,
        kind,
        at,
        source: source.into(),
        data: serde_json::json!({"operator": f.config.operator}),
        reference: None,
    })
}

fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}.{:02} {}", minor.abs() / 100, minor.abs() % 100, currency.to_uppercase())
}

pub async fn run(f: &Factory, c: RevenueCmd, out: &Out) -> anyhow::Result<()> {
    match c {
        RevenueCmd::Report => {
            let b = reef_core::books::books(&f.ports, f.now()).await?;
            out.print(&b, || {
                let mut s = String::from("Per product (all time)\n");
                for p in &b.products {
                    let rev: Vec<String> = p.revenue.iter().map(|(c, v)| money(*v, c)).collect();
                    s.push_str(&format!(
                        "  {:<14} revenue {:<28} LLM spend ${:>9.2}   net (USD) ${:>10.2}\n",
                        p.product,
                        if rev.is_empty() { "-".into() } else { rev.join(" + ") },
                        p.llm_spend.dollars(),
                        p.net_usd
                    ));
                }
                s.push_str("\nMRR\n");
                if b.mrr.is_empty() {
                    s.push_str("  no active subscriptions\n");
                }
                for m in &b.mrr {
                    s.push_str(&format!(
                        "  {:<14} {} from {} subscription(s)\n",
                        m.product,
                        money(m.mrr_minor, &m.currency),
                        m.subscriptions
                    ));
                }
                s.push_str("\nPer month (USD revenue vs LLM spend)\n");
                for m in &b.months {
                    s.push_str(&format!(
                        "  {}  revenue {:>12}  spend ${:>9.2}  self-funding {}\n",
                        m.month,
                        money(m.revenue_usd_minor, "usd"),
                        m.llm_spend.dollars(),
                        m.self_funding.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "-".into())
                    ));
                }
                s.push_str(&format!(
                    "\nSelf-funding ratio (USD revenue ÷ LLM spend, all time): {}",
                    b.self_funding.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "no spend yet".into())
                ));
                if !b.other_currencies.is_empty() {
                    let o: Vec<String> = b.other_currencies.iter().map(|(c, v)| money(*v, c)).collect();
                    s.push_str(&format!("\nNot in the ratio (not converted): {}", o.join(", ")));
                }
                s
            });
        }
        RevenueCmd::Add { product, amount, currency, kind, date, id } => {
            let row =
                Row { product: &product, amount: &amount, currency: &currency, kind: &kind, date: date.as_deref(), id: id.as_deref() };
            let e = entry(f, row, "manual").map_err(anyhow::Error::msg)?;
            let line = format!("{} for {} on {}", money(e.amount_minor, &e.currency), e.product, reef_core::time::fmt_ts(&e.at));
            let fresh = f.ports.revenue.record(e).await?;
            out.print(&serde_json::json!({"recorded": fresh}), || {
                if fresh {
                    format!("recorded {line}")
                } else {
                    "already recorded (same id): nothing changed".into()
                }
            });
        }
        RevenueCmd::Import { file } => {
            let mut rd = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .flexible(true)
                .from_path(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let headers: Vec<String> = rd.headers()?.iter().map(|h| h.to_ascii_lowercase()).collect();
            let col = |name: &str| headers.iter().position(|h| h == name);
            let (Some(cd), Some(cp), Some(ca)) = (col("date"), col("product"), col("amount")) else {
                anyhow::bail!("{}: the header row must name date, product and amount (and may name currency, kind, id)", file.display());
            };
            let (cc, ck, ci) = (col("currency"), col("kind"), col("id"));
            // Validate every row before writing any: a bad file changes nothing.
            let mut rows = vec![];
            for (n, rec) in rd.records().enumerate() {
                let line = n + 2;
                let rec = rec.map_err(|e| anyhow::anyhow!("{} line {line}: {e}", file.display()))?;
                let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("");
                let row = Row {
                    product: get(Some(cp)),
                    amount: get(Some(ca)),
                    currency: if get(cc).is_empty() { "usd" } else { get(cc) },
                    kind: if get(ck).is_empty() { "manual" } else { get(ck) },
                    date: Some(get(Some(cd))).filter(|d| !d.is_empty()),
                    id: Some(get(ci)),
                };
                let e = entry(f, row, "csv").map_err(|m| anyhow::anyhow!("{} line {line}: {m}", file.display()))?;
                rows.push(e);
            }
            let (mut new, mut dup) = (0, 0);
            for e in rows {
                if f.ports.revenue.record(e).await? {
                    new += 1;
                } else {
                    dup += 1;
                }
            }
            out.print(&serde_json::json!({"recorded": new, "duplicates": dup}), || {
                format!("imported {new} row(s){}", if dup > 0 { format!("; {dup} were already recorded") } else { String::new() })
            });
        }
        RevenueCmd::Pull => {
            let Some(key) = f.config.stripe.api_key.clone() else {
                anyhow::bail!("set REEF_STRIPE_API_KEY to a restricted key with read access to Events (rk_…) to pull from Stripe");
            };
            let pull = reef_core::stripe::StripePull {
                ports: f.ports.clone(),
                api_base: f.config.stripe.api_base.clone(),
                api_key: key,
                http: reqwest::Client::new(),
            };
            let r = pull.pull_once().await?;
            out.print(&r, || {
                format!(
                    "fetched {} event(s): {} recorded, {} already known, {} subscription update(s), {} ignored",
                    r.fetched, r.recorded, r.duplicates, r.subscriptions, r.ignored
                )
            });
        }
        RevenueCmd::Products => {
            let l = f.ports.revenue.products().await?;
            out.print(&l.items, || {
                let mut s = String::new();
                for p in &l.items {
                    s.push_str(&format!(
                        "{:<12} {:<12} {:<8} deploy {:<12} auth {:<10} pay {:<8} stripe [{}]\n",
                        p.id,
                        p.name,
                        p.status,
                        p.deploy_target.as_deref().unwrap_or("-"),
                        p.auth_provider.as_deref().unwrap_or("-"),
                        p.payment_provider.as_deref().unwrap_or("-"),
                        p.stripe_ids.join(", ")
                    ));
                }
                if s.is_empty() {
                    s = "no products yet: `reef revenue product ID --name …`".into();
                }
                s
            });
        }
        RevenueCmd::Product { id, name, status, deploy_target, auth_provider, payment_provider, stripe_ids } => {
            anyhow::ensure!(
                !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "product id {id:?}: use letters, digits, - and _"
            );
            for s in &stripe_ids {
                anyhow::ensure!(s.starts_with("price_") || s.starts_with("prod_"), "--stripe-id {s:?} is not a price_… or prod_… id");
            }
            let existing = f.ports.revenue.products().await?.items.into_iter().find(|p| p.id == id);
            let mut p = existing.unwrap_or_else(|| Product {
                id: id.clone(),
                name: id.clone(),
                status: "building".into(),
                deploy_target: None,
                auth_provider: None,
                payment_provider: None,
                stripe_ids: vec![],
                created_at: f.now(),
            });
            if let Some(n) = name {
                p.name = n;
            }
            if let Some(s) = status {
                p.status = s;
            }
            p.deploy_target = deploy_target.or(p.deploy_target);
            p.auth_provider = auth_provider.or(p.auth_provider);
            p.payment_provider = payment_provider.or(p.payment_provider);
            for s in stripe_ids {
                if !p.stripe_ids.contains(&s) {
                    p.stripe_ids.push(s);
                }
            }
            let p = f.save_product(p, &f.operator()).await?;
            out.print(&p, || format!("product {} saved", p.id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_amount;

    #[test]
    fn amounts_parse_exactly() {
        assert_eq!(parse_amount("12.50"), Ok(1250));
        assert_eq!(parse_amount("12.5"), Ok(1250));
        assert_eq!(parse_amount("7"), Ok(700));
        assert_eq!(parse_amount("-9.00"), Ok(-900));
        assert_eq!(parse_amount("0.07"), Ok(7));
        for bad in ["", "1.234", "1,50", "abc", "1e3", "."] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
    }
}
