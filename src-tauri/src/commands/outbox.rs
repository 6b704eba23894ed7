//! The outbox as the window shows it: webhook subscriptions, what each is owed, the delivery log,
//! dead letters and their redelivery (audited under the operator's name).

use crate::dto::*;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::state::AppState;
use reef_core::engine::relay::{self, RedeliverError};
use tauri::State;

/// The webhook subscriptions, what each is owed, its dead letters and the latest deliveries.
#[tauri::command]
#[specta::specta]
pub async fn webhooks(state: State<'_, AppState>) -> AppResult<WebhooksDto> {
    let f = state.factory()?;
    let subscriptions = relay::status(f)
        .await?
        .into_iter()
        .map(|s| WebhookDto {
            name: s.name,
            host: s.host,
            events: s.events,
            template: s.template,
            approve_links: s.approve_links,
            pending: s.pending as u32,
            failures: s.failures,
            last_error: s.last_error,
            dead_letters: s
                .dead_letters
                .into_iter()
                .map(|d| DeadLetterDto { event: d.event, kind: d.kind, at: d.at, error: d.error })
                .collect(),
        })
        .collect();
    let deliveries = relay::deliveries(f, 20)
        .await?
        .into_iter()
        .map(|d| DeliveryDto { at: d.at, subscription: d.subscription, kind: d.kind, attempt: d.attempt, ok: d.ok, detail: d.detail })
        .collect();
    Ok(WebhooksDto { subscriptions, deliveries })
}

/// Sends one dead letter of `subscription` again, now.
#[tauri::command]
#[specta::specta]
pub async fn redeliver_webhook(state: State<'_, AppState>, subscription: String, event: String) -> AppResult<()> {
    let f = state.factory()?;
    relay::redeliver(f, &subscription, &event, &state.operator()?).await.map_err(|e| match e {
        RedeliverError::Store(s) => s.into(),
        other => AppError { code: ErrorCode::Invalid, message: other.to_string() },
    })
}
