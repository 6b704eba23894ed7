//! The `settings` collection's keys: every document REEF keeps there, named once. Other programs
//! share that collection, so the keys and their values are a schema (`docs/stores.md`).
//!
//! Invariant: a key's text never changes without a migration here, so a store written by an
//! earlier REEF opens unchanged; no module builds a settings key from a string of its own.

/// `memory.index`, as a constant for the places that need one.
pub const MEMORY_INDEX: &str = "memory.index";
/// `stripe.pull_cursor`.
pub const STRIPE_CURSOR: &str = "stripe.pull_cursor";

/// One document in `settings`, by what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    /// `control:factory` — a pause or stop of the whole factory: `{hold, by, at, reason}`.
    FactoryHold,
    /// `control:agent:<agent>` — a pause or stop of one agent, same shape.
    AgentHold(&'a str),
    /// `cap_override:<scope>` — a cap for one period, in micro-dollars.
    CapOverride(&'a str),
    /// `cap_hold:agent:<agent>` — an agent held at its cap until the period ends.
    CapHold(&'a str),
    /// `alert:<scope>:<percent>` — a budget alert raised once per scope and threshold.
    BudgetAlert(&'a str, i64),
    /// `schedule:<name>` — the scheduler's progress `{last_slot, last_task}` (and, from before the
    /// pause had its own key, `paused`).
    Schedule(&'a str),
    /// `schedule.paused:<name>` — the operator's pause of a schedule (`true`/`false`): a key of its
    /// own, so the scheduler saving its progress can never undo it.
    SchedulePaused(&'a str),
    /// `webhook.state:<subscription>` — the relay's progress for one subscription.
    Relay(&'a str),
    /// `mcp.wait:<task>` — an approval or question asked during an attempt.
    Wait(&'a str),
    /// `mcp.token:<sha256>` — a task token's hash: `{task, agent, expires_at}`.
    Token(&'a str),
    /// `session:<task>` — a CLI agent's session id, to resume it.
    AgentSession(&'a str),
    /// `link.used:<nonce>` — a phone link already redeemed.
    LinkUsed(&'a str),
    /// `live.factory` — the factory cap and approval gates as last edited.
    LiveFactory,
    /// `live.file_applied:<what>` — the config file's values last applied (`factory`, `agent:<name>`).
    LiveFileApplied(&'a str),
    /// `memory.index` — which embedder made the memory index, and its dimension.
    MemoryIndex,
    /// `stripe.pull_cursor` — `{created}` of the newest Stripe event pulled.
    StripeCursor,
    /// `secrets.product_names` — the product secrets kept in the OS keyring (names only).
    ProductSecretNames,
    /// `telemetry:<host>` — a sampler's host facts: `{gpu, started_at}`.
    Telemetry(&'a str),
    /// `app:notifications` — the desktop app's notification preferences.
    AppNotifications,
    /// `schedules.defs` — schedules made or edited in the window or `reef schedule save`:
    /// name → `{section, by, at}`, or `{deleted: true, by, at}` for one of the file's removed.
    ScheduleDefs,
    /// `approval.used:<approval>` — the run an approval opened its gate for (`{task, at}`): an
    /// approval opens its gate once.
    ApprovalUsed(&'a str),
    /// `alerts.acknowledged` — when the operator last acknowledged the alerts (failures before it
    /// no longer count as needing them).
    AlertsAcknowledged,
    /// `change:<task>` — the task's change as last recorded (`domain::change::ChangeRecord`).
    Change(&'a str),
    /// `delivery.step:<idempotency key>` — what a delivery step task does (`domain::change::Step`),
    /// written by REEF before the task.
    DeliveryStep(&'a str),
    /// `deploys:<product>` — the versions a product shipped, newest last (`domain::change::Deploy`).
    Deploys(&'a str),
    /// `forge.watch` — the changes whose pull requests are open, and when the forge watcher last
    /// looked for new ones (written by the watcher alone, under its lease).
    ForgeWatch,
    /// `pipelines.defs` — products' pipelines as revisions: product → `{revisions: [{revision,
    /// text, author, at, reason}]}` (`factory::pipeline_defs`).
    PipelineDefs,
    /// `change.files:<task>` — the file list and commits of the task's change between the two
    /// commits it names (`{base, head, files, commits}`): read by the diff view instead of
    /// running git on every open.
    ChangeFiles(&'a str),
    /// `change.pull:<task>` — the change's pull request on its product's forge and what REEF has
    /// passed on from it (`domain::change::PullRequest`).
    ChangePull(&'a str),
}

impl Key<'_> {
    /// The document's `_id`.
    pub fn id(&self) -> String {
        match self {
            Key::FactoryHold => "control:factory".into(),
            Key::AgentHold(a) => format!("control:agent:{a}"),
            Key::CapOverride(scope) => format!("cap_override:{scope}"),
            Key::CapHold(a) => format!("cap_hold:agent:{a}"),
            Key::BudgetAlert(scope, pct) => format!("alert:{scope}:{pct}"),
            Key::Schedule(n) => format!("schedule:{n}"),
            Key::SchedulePaused(n) => format!("schedule.paused:{n}"),
            Key::Relay(n) => format!("webhook.state:{n}"),
            Key::Wait(t) => format!("mcp.wait:{t}"),
            Key::Token(h) => format!("mcp.token:{h}"),
            Key::AgentSession(t) => format!("session:{t}"),
            Key::LinkUsed(n) => format!("link.used:{n}"),
            Key::LiveFactory => "live.factory".into(),
            Key::LiveFileApplied(w) => format!("live.file_applied:{w}"),
            Key::MemoryIndex => MEMORY_INDEX.into(),
            Key::StripeCursor => STRIPE_CURSOR.into(),
            Key::ProductSecretNames => "secrets.product_names".into(),
            Key::Telemetry(h) => format!("telemetry:{h}"),
            Key::AppNotifications => "app:notifications".into(),
            Key::AlertsAcknowledged => "alerts.acknowledged".into(),
            Key::ScheduleDefs => "schedules.defs".into(),
            Key::ApprovalUsed(a) => format!("approval.used:{a}"),
            Key::Change(t) => format!("change:{t}"),
            Key::DeliveryStep(k) => format!("delivery.step:{k}"),
            Key::Deploys(p) => format!("deploys:{p}"),
            Key::ForgeWatch => "forge.watch".into(),
            Key::PipelineDefs => "pipelines.defs".into(),
            Key::ChangeFiles(t) => format!("change.files:{t}"),
            Key::ChangePull(t) => format!("change.pull:{t}"),
        }
    }
}

impl std::fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_the_text_earlier_stores_were_written_with() {
        // A store written before the keys were typed opens unchanged: these strings are the ones
        // REEF wrote then (the schema in docs/stores.md).
        let cases = [
            (Key::FactoryHold, "control:factory"),
            (Key::AgentHold("rex"), "control:agent:rex"),
            (Key::CapOverride("agent:rex:2026-11-30"), "cap_override:agent:rex:2026-11-30"),
            (Key::CapHold("rex"), "cap_hold:agent:rex"),
            (Key::BudgetAlert("global:2026-11-30", 80), "alert:global:2026-11-30:80"),
            (Key::Schedule("brief"), "schedule:brief"),
            (Key::SchedulePaused("brief"), "schedule.paused:brief"),
            (Key::Relay("ops"), "webhook.state:ops"),
            (Key::Wait("t1"), "mcp.wait:t1"),
            (Key::Token("ab12"), "mcp.token:ab12"),
            (Key::AgentSession("t1"), "session:t1"),
            (Key::LinkUsed("n1"), "link.used:n1"),
            (Key::LiveFactory, "live.factory"),
            (Key::LiveFileApplied("agent:rex"), "live.file_applied:agent:rex"),
            (Key::MemoryIndex, "memory.index"),
            (Key::StripeCursor, "stripe.pull_cursor"),
            (Key::ProductSecretNames, "secrets.product_names"),
            (Key::Telemetry("dreamteam"), "telemetry:dreamteam"),
            (Key::AppNotifications, "app:notifications"),
            (Key::AlertsAcknowledged, "alerts.acknowledged"),
            (Key::ScheduleDefs, "schedules.defs"),
            (Key::ApprovalUsed("a1"), "approval.used:a1"),
            (Key::Change("t1"), "change:t1"),
            (Key::DeliveryStep("delivery:merge:t1"), "delivery.step:delivery:merge:t1"),
            (Key::Deploys("calc"), "deploys:calc"),
            (Key::ForgeWatch, "forge.watch"),
            (Key::PipelineDefs, "pipelines.defs"),
            (Key::ChangeFiles("t1"), "change.files:t1"),
            (Key::ChangePull("t1"), "change.pull:t1"),
        ];
        for (k, text) in cases {
            assert_eq!(k.id(), text, "{k:?}");
        }
    }
}
