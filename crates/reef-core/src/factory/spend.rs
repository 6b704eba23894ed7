//! What the factory may spend and has spent: the scopes one LLM call must fit in (with overrides
//! in force), the calls' record with their roll-ups, today's caps, and the status report.

use super::Factory;
use crate::*;
use serde::Serialize;

/// One cap and how much of it is used, for `reef status` and the overview.
#[derive(Debug, Clone, Serialize)]
pub struct CapUse {
    pub scope: String,
    pub cap: Usd,
    pub spent: Usd,
    pub reserved: Usd,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub store: StoreKind,
    pub timezone: String,
    pub tasks: Vec<(TaskStatus, u64)>,
    pub caps_today: Vec<CapUse>,
    pub pending_approvals: usize,
    /// The engine process holding the dispatcher lease, if one is active.
    pub dispatcher: Option<String>,
    pub malformed: Vec<Malformed>,
}

/// What one agent spent in one hour of the factory's day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourSpend {
    pub hour: Timestamp,
    pub agent: String,
    pub cost: Usd,
}

impl Factory {
    /// The scopes (with caps in force) that one LLM call by `agent` for `task` must fit in.
    pub async fn scopes_for(&self, agent: &str, provider: Option<&str>, task: Option<&Task>) -> StoreResult<Vec<ScopeCap>> {
        let now = self.now();
        let tz = self.config.timezone;
        let live = self.live().await?;
        let mut v = vec![ScopeCap { scope: ScopeKey::global_day(tz, now), cap: live.global_daily_cap }];
        if let Some(a) = live.agent(agent) {
            v.push(ScopeCap { scope: ScopeKey::agent_day(agent, tz, now), cap: a.daily_cap_usd });
        }
        if let Some(p) = provider {
            if let Some(cap) = self.config.provider_monthly_caps.get(p) {
                v.push(ScopeCap { scope: ScopeKey::provider_month(p, tz, now), cap: *cap });
            }
        }
        if let Some(t) = task {
            v.push(ScopeCap { scope: ScopeKey::task(&t.id), cap: t.budget_usd.unwrap_or(self.config.task_default_cap) });
        }
        Ok(v)
    }

    /// The same kind of scope for the period in force now (today's day scope for yesterday's,
    /// this month's for last month's); a scope of no period is itself.
    pub fn current_period(&self, s: &str) -> String {
        let (tz, now) = (self.config.timezone, self.now());
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["agent", a, "day", _] => ScopeKey::agent_day(a, tz, now).0,
            ["global", "day", _] => ScopeKey::global_day(tz, now).0,
            ["provider", p, "month", _] => ScopeKey::provider_month(p, tz, now).0,
            _ => s.to_string(),
        }
    }

    /// Records one LLM call with its monthly roll-ups (in the factory's timezone).
    pub async fn record_call(&self, call: LlmCall) -> StoreResult<()> {
        let rollups = rollups_for(&call, self.config.timezone);
        self.ports.ledger.record_call(call, &rollups).await
    }

    /// Today's use of the global and per-agent caps (zero where nothing was spent yet).
    pub async fn caps_today(&self) -> StoreResult<Vec<CapUse>> {
        let now = self.now();
        let tz = self.config.timezone;
        let live = self.live().await?;
        let mut wanted = vec![(ScopeKey::global_day(tz, now), live.global_daily_cap)];
        for a in &live.agents {
            wanted.push((ScopeKey::agent_day(&a.name, tz, now), a.daily_cap_usd));
        }
        let keys: Vec<ScopeKey> = wanted.iter().map(|(k, _)| k.clone()).collect();
        let totals = self.ports.ledger.totals(&keys).await?;
        // The cap in force: today's settings with any one-day override (the ledger only keeps the
        // cap of its last reservation, which an edit since may have changed).
        let in_force = self.apply_overrides(wanted.iter().map(|(k, cap)| ScopeCap { scope: k.clone(), cap: *cap }).collect()).await?;
        Ok(in_force
            .into_iter()
            .map(|ScopeCap { scope: k, cap }| {
                let t = totals.iter().find(|t| t.scope == k);
                CapUse {
                    scope: k.0,
                    cap,
                    spent: t.map(|t| t.spent).unwrap_or_default(),
                    reserved: t.map(|t| t.reserved).unwrap_or_default(),
                }
            })
            .collect())
    }

    /// Today's spend per agent in each hour of the factory's day so far (its timezone): the
    /// Spend view's chart. At most 25 bounded ledger reads (a day with a DST change has 25 hours).
    pub async fn spend_today_by_hour(&self) -> StoreResult<Vec<HourSpend>> {
        let now = self.now();
        let mut from = time::start_of_local_day(self.config.timezone, now);
        let mut out = vec![];
        while from < now {
            let until = (from + chrono::Duration::hours(1)).min(now);
            for r in self.ports.ledger.spend(SpendGroup::Agent, from, until).await? {
                out.push(HourSpend { hour: from, agent: r.key, cost: r.cost });
            }
            from += chrono::Duration::hours(1);
        }
        Ok(out)
    }

    pub async fn status(&self) -> StoreResult<StatusReport> {
        let tasks = self.ports.tasks.counts().await?;
        let approvals = self.ports.approvals.list(Some(ApprovalStatus::Pending), 10_000).await?;
        Ok(StatusReport {
            store: self.ports.kind.clone(),
            timezone: self.config.timezone.name().into(),
            tasks,
            caps_today: self.caps_today().await?,
            pending_approvals: approvals.items.len(),
            dispatcher: self.ports.leases.holder("dispatcher", self.now()).await?,
            malformed: approvals.malformed,
        })
    }
}
