//! The relay as the operator sees and steers it: each subscription's state, the delivery log,
//! dead letters and their redelivery. Invariant: nothing here shows a receiver's URL path or
//! secret, and a redelivery is audited under the operator's name like any other change.

use super::*;

/// Why a redelivery did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    #[error("{0:?} is not a configured webhook ([[webhooks]] in the config file)")]
    NoSubscription(String),
    #[error("{0:?} is not a dead letter of {1}: only events its receiver refused can be sent again")]
    NotDead(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sends one dead letter of subscription `name` again at the operator's word (once its receiver
/// is fixed), audited as `who`; it leaves the dead letters once the receiver takes it.
pub async fn redeliver(f: &Factory, name: &str, event_id: &str, who: &str) -> Result<(), RedeliverError> {
    let Some(sub) = f.config.webhooks.iter().find(|w| w.name == name) else {
        return Err(RedeliverError::NoSubscription(name.into()));
    };
    if !progress(f, name).await?.dead_letters.iter().any(|d| d == event_id) {
        return Err(RedeliverError::NotDead(event_id.into(), name.into()));
    }
    let found = f.ports.events.recent(&EventQuery { text: Some(event_id.into()), limit: 50, ..Default::default() }).await?;
    let Some(e) = found.items.into_iter().find(|e| e.id == event_id) else {
        return Err(StoreError::not_found(format!("event {event_id} (pruned from the log since it was dead-lettered)")).into());
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| StoreError::Unavailable(format!("cannot make an HTTP client: {e}")))?;
    let links = crate::links::maker(f);
    let answer = send(f, &http, sub, &e, links.as_ref()).await;
    let (status, err) = match &answer {
        Answer::Ok(status) => (Some(*status), None),
        Answer::Refused(err) | Answer::Failed(err) => (None, Some(err.clone())),
    };
    log(f, sub, &e, 1, status, err.as_deref()).await?;
    f.audit(
        who,
        "webhook.redeliver",
        name,
        serde_json::json!({"event": event_id}),
        serde_json::json!({"delivered": err.is_none()}),
        err.as_deref(),
    )
    .await?;
    if let Some(err) = err {
        return Err(StoreError::Unavailable(format!("{name} did not take {event_id}: {err}")).into());
    }
    // Read again: the relay may have moved on while the receiver answered.
    let mut p = progress(f, name).await?;
    p.dead_letters.retain(|d| d != event_id);
    save(f, name, &p).await?;
    Ok(())
}

/// The dead letters of one subscription, each described by the alert that recorded it.
async fn dead_letters(f: &Factory, name: &str, p: &Progress) -> StoreResult<Vec<DeadLetter>> {
    if p.dead_letters.is_empty() {
        return Ok(vec![]);
    }
    let q = EventQuery { kind_prefix: Some(DEAD_KIND.into()), subject: Some(name.into()), limit: MAX_DEAD * 2, ..Default::default() };
    let alerts = f.ports.events.recent(&q).await?.items;
    Ok(p.dead_letters
        .iter()
        .map(|id| match alerts.iter().find(|a| a.data["event"].as_str() == Some(id)) {
            Some(a) => DeadLetter {
                event: id.clone(),
                kind: a.data["kind"].as_str().unwrap_or_default().into(),
                at: Some(crate::time::fmt_ts(&a.at)),
                error: a.data["error"].as_str().unwrap_or_default().into(),
            },
            None => DeadLetter { event: id.clone(), kind: String::new(), at: None, error: String::new() },
        })
        .collect())
}

/// One subscription as `reef webhooks` and the window show it (never its URL's path or secret).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub name: String,
    pub host: String,
    pub events: Vec<String>,
    pub template: String,
    pub approve_links: bool,
    /// Wanted events not yet delivered.
    pub pending: usize,
    pub failures: u32,
    pub last_error: Option<String>,
    pub watermark: Option<String>,
    /// Events the receiver kept refusing, passed over (newest last); `redeliver` sends one again.
    pub dead_letters: Vec<DeadLetter>,
}

/// An event a receiver kept refusing, as the alert that dead-lettered it recorded it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeadLetter {
    pub event: String,
    /// The event's kind; empty when the alert has been pruned from the log since.
    pub kind: String,
    /// When it was dead-lettered (RFC 3339), when known.
    pub at: Option<String>,
    /// The receiver's last answer.
    pub error: String,
}

/// Every configured subscription with what it is owed.
pub async fn status(f: &Factory) -> StoreResult<Vec<Status>> {
    let mut out = vec![];
    for s in &f.config.webhooks {
        let p = progress(f, &s.name).await?;
        out.push(Status {
            name: s.name.clone(),
            host: reqwest::Url::parse(s.url.expose()).ok().and_then(|u| u.host_str().map(String::from)).unwrap_or_default(),
            events: s.events.clone(),
            template: format!("{:?}", s.template).to_lowercase(),
            approve_links: s.approve_links,
            pending: pending(f, s, &p).await?.len(),
            failures: p.failures,
            last_error: p.last_error.clone(),
            watermark: p.watermark.as_ref().map(crate::time::fmt_ts),
            dead_letters: dead_letters(f, &s.name, &p).await?,
        });
    }
    Ok(out)
}

/// One delivery attempt, from the log.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub at: String,
    pub subscription: String,
    pub event: String,
    pub kind: String,
    pub attempt: u32,
    pub ok: bool,
    /// `HTTP <status>` when delivered, else why it failed.
    pub detail: String,
}

/// The latest `limit` delivery attempts, newest first.
pub async fn deliveries(f: &Factory, limit: usize) -> StoreResult<Vec<Delivery>> {
    let q = EventQuery { kind_prefix: Some(DELIVERY_KIND.into()), limit, ..Default::default() };
    Ok(f.ports
        .events
        .recent(&q)
        .await?
        .items
        .iter()
        .map(|e| {
            let ok = e.data["ok"] == true;
            Delivery {
                at: crate::time::fmt_ts(&e.at),
                subscription: e.subject.clone().unwrap_or_default(),
                event: e.data["event"].as_str().unwrap_or_default().into(),
                kind: e.data["kind"].as_str().unwrap_or_default().into(),
                attempt: e.data["attempt"].as_u64().unwrap_or(0) as u32,
                ok,
                detail: if ok { format!("HTTP {}", e.data["status"]) } else { e.data["error"].as_str().unwrap_or_default().into() },
            }
        })
        .collect())
}
