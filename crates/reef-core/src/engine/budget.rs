//! Budget enforcement around one call: reserve the worst case in every scope, settle the real
//! cost, release the rest.
//!
//! Invariant: no call starts without a reservation that fitted every cap it touches.

use crate::factory::Factory;
use crate::rules::pricing::PriceBook;
use crate::*;
use std::sync::Arc;

#[derive(Clone)]
pub struct Budget {
    pub factory: Factory,
    pub prices: Arc<PriceBook>,
}

/// What one call may cost and where the money is held.
pub struct Hold {
    pub reservation: Reservation,
}

impl Budget {
    /// Reserves `amount` for `agent` (and the task and provider) or says which cap refused it.
    pub async fn reserve(&self, agent: &str, task: Option<&Task>, provider: Option<&str>, amount: Usd) -> StoreResult<Hold> {
        let f = &self.factory;
        let scopes = f.apply_overrides(f.scopes_for(agent, provider, task).await?).await?;
        // Longer than any single call may take; a worker that dies leaves it to expire.
        let expires_at = f.now() + chrono::Duration::from_std(f.config.engine.reservation_ttl).unwrap_or_default();
        let r = f
            .ports
            .ledger
            .reserve(
                ReserveRequest { id: new_id(), scopes, amount, expires_at, task_id: task.map(|t| t.id.clone()), agent: Some(agent.into()) },
                f.now(),
            )
            .await?;
        Ok(Hold { reservation: r })
    }

    /// Worst case of one chat call to `model`: estimated prompt tokens plus `max_tokens`, at the
    /// highest price the fallback chain can reach.
    pub fn worst_case(&self, model: &str, prompt_tokens: u64, max_tokens: u64) -> Result<Usd, String> {
        self.prices.worst_case(model, prompt_tokens, max_tokens)
    }

    pub async fn settle(&self, hold: &Hold, actual: Usd) -> StoreResult<()> {
        self.factory.ports.ledger.settle(&hold.reservation.id, actual, self.factory.now()).await.map(|_| ())
    }

    /// Keeps `hold` for another reservation period (a run still going renews its hold).
    pub async fn extend(&self, hold: &Hold) -> StoreResult<()> {
        let f = &self.factory;
        let until = f.now() + chrono::Duration::from_std(f.config.engine.reservation_ttl).unwrap_or_default();
        f.ports.ledger.extend(&hold.reservation.id, until).await.map(|_| ())
    }

    pub async fn release(&self, hold: &Hold) -> StoreResult<()> {
        self.factory.ports.ledger.release(&hold.reservation.id, self.factory.now()).await.map(|_| ())
    }
}

impl Budget {
    /// Records one call of `job`'s agent in `llm_calls` (with its monthly roll-ups).
    pub async fn record_call(
        &self,
        job: &super::exec::Job,
        model: String,
        provider: Option<String>,
        tokens: (u64, u64),
        cost: Usd,
        latency: std::time::Duration,
    ) -> StoreResult<()> {
        let f = &self.factory;
        f.record_call(LlmCall {
            id: new_id(),
            at: f.now(),
            agent: job.agent.name.clone(),
            product: job.task.product.clone(),
            task_id: Some(job.task.id.clone()),
            model,
            provider,
            prompt_tokens: tokens.0,
            completion_tokens: tokens.1,
            cost,
            latency_ms: latency.as_millis() as u64,
            error: None,
            finished_at: Some(f.now()),
        })
        .await
    }
}
