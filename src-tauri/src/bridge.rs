//! Typed events from the store's watch to the window: the UI never polls for state changes.
//! When the store goes away the window is told, and the watch resumes from its last token.

use futures::{FutureExt, StreamExt};

/// Engine bookkeeping the window shows nothing of: lease renewals (every few seconds while an
/// engine runs) and watch cursors would otherwise re-render an idle window for nothing.
const QUIET: [&str; 2] = ["leases", "cursors"];

/// Changes drained into one batch at most.
const BULK_LIMIT: usize = 5000;
/// Batches up to this size are sent change by change (notifications never depend on it).
const NOTIFY_LIMIT: usize = 20;
use reef_core::factory::Factory;
use reef_core::ResumeToken;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tauri::AppHandle;
use tauri_specta::Event;
use tokio_util::sync::CancellationToken;

/// A document changed in the store (by this app, the engine, the CLI or another program).
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, Event)]
pub struct StoreChanged {
    pub collection: String,
    pub id: String,
    pub op: String,
}

/// The store's connection as the window should show it.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, Event)]
pub struct StoreStatus {
    pub connected: bool,
    pub message: String,
    /// Whether REEF keeps trying by itself (a store that does not answer); false when it needs
    /// the operator (a config it cannot use).
    pub retrying: bool,
}

/// Tells the window the store's connection now, and keeps it for a window that asks later (one
/// that painted before this was sent must not guess).
pub fn announce(app: &AppHandle, status: StoreStatus) {
    use tauri::Manager;
    if let Ok(mut slot) = app.state::<crate::state::AppState>().store.lock() {
        *slot = Some(status.clone());
    }
    let _ = status.emit(app);
}

#[tracing::instrument(skip_all)]
pub async fn run(app: AppHandle, f: Factory, shutdown: CancellationToken) {
    let mut from: Option<ResumeToken> = None;
    let mut notifier = crate::notify::Notifier::default();
    refresh_tray(&app, &f).await;
    let mut backoff = Duration::from_millis(500);
    loop {
        match f.ports.changes.watch(from.clone()).await {
            Ok(mut s) => {
                announce(&app, StoreStatus { connected: true, message: f.ports.kind.to_string(), retrying: false });
                backoff = Duration::from_millis(500);
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        c = s.next() => match c {
                            Some(Ok(first)) if QUIET.contains(&first.collection.as_str()) => {
                                from = Some(first.token.clone());
                            }
                            Some(Ok(first)) => {
                                // Whatever else is already waiting goes out with it: a bulk write
                                // (a restore, a big import) becomes one event per collection, not
                                // one per document, so the window is not flooded.
                                let mut batch = vec![first];
                                while batch.len() < BULK_LIMIT {
                                    match s.next().now_or_never() {
                                        Some(Some(Ok(c))) if QUIET.contains(&c.collection.as_str()) => {}
                                        Some(Some(Ok(c))) => batch.push(c),
                                        _ => break,
                                    }
                                }
                                from = batch.last().map(|c| c.token.clone());
                                let small = batch.len() <= NOTIFY_LIMIT;
                                let mut bulk: std::collections::BTreeSet<String> = Default::default();
                                let new_events: Vec<String> =
                                    batch.iter().filter(|c| c.collection == "events" && c.op == reef_core::ChangeOp::Insert).map(|c| c.id.clone()).collect();
                                notifier.on_events(&app, &f, &new_events).await;
                                for c in &batch {
                                    if small {
                                        let op = format!("{:?}", c.op).to_lowercase();
                                        let _ = StoreChanged { collection: c.collection.clone(), id: c.id.clone(), op }.emit(&app);
                                    } else {
                                        bulk.insert(c.collection.clone());
                                    }
                                }
                                for collection in bulk {
                                    let _ = StoreChanged { collection, id: "*".into(), op: "bulk".into() }.emit(&app);
                                }
                                if batch.iter().any(|c| c.collection == "approvals") {
                                    refresh_tray(&app, &f).await;
                                }
                            }
                            Some(Err(e)) => {
                                announce(&app, StoreStatus { connected: false, message: e.to_string(), retrying: true });
                                break;
                            }
                            None => break,
                        }
                    }
                }
            }
            Err(e) => {
                if matches!(e, reef_core::StoreError::HistoryLost(_)) {
                    from = None;
                }
                announce(&app, StoreStatus { connected: false, message: e.to_string(), retrying: true });
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(15));
    }
}

async fn refresh_tray(app: &AppHandle, f: &Factory) {
    if let Ok(l) = f.ports.approvals.list(Some(reef_core::ApprovalStatus::Pending), 10_000).await {
        crate::tray::set_pending(app, l.items.len());
    }
}
