//! Native notifications for what needs the operator: new approval requests and agents' questions, budget alerts at
//! 80/100 %, failed tasks, stuck agents. Each is shown once per thing it is about.

use reef_core::factory::Factory;
use reef_core::Event;
use std::collections::HashSet;
use tauri::AppHandle;
use tauri_plugin_notification::NotificationExt;

#[derive(Default)]
pub struct Notifier {
    shown: HashSet<String>,
}

/// Which notifications the operator wants; kept in the store so every window agrees.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, specta::Type)]
pub struct Prefs {
    pub approvals: bool,
    pub budget: bool,
    pub failures: bool,
    pub stuck: bool,
}

impl Default for Prefs {
    fn default() -> Self {
        Self { approvals: true, budget: true, failures: true, stuck: true }
    }
}

fn prefs_key() -> String {
    reef_core::settings::Key::AppNotifications.id()
}

impl Prefs {
    pub async fn load(f: &Factory) -> Prefs {
        f.ports.settings.get(&prefs_key()).await.ok().flatten().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default()
    }

    pub async fn save(&self, f: &Factory, who: &str) -> reef_core::StoreResult<()> {
        let v = serde_json::to_value(self).unwrap_or_default();
        f.ports.settings.put(&prefs_key(), v.clone()).await?;
        f.audit(who, "settings.notifications", &prefs_key(), serde_json::Value::Null, v, None).await
    }

    /// Whether an event of `kind` may notify.
    pub fn allows(&self, kind: &str) -> bool {
        match kind {
            "approval.requested" | "approval.expired" | "task.question" => self.approvals,
            "budget.alert" | "budget.cap_reached" => self.budget,
            "task.failed" => self.failures,
            "task.stuck" => self.stuck,
            _ => true,
        }
    }
}

/// The title and body for an event that deserves a notification, if it does.
pub fn message_for(e: &Event) -> Option<(String, String)> {
    let d = &e.data;
    match e.kind.as_str() {
        "approval.requested" => Some((
            "Approval needed".into(),
            d["summary"].as_str().or(d["action_class"].as_str()).unwrap_or("a task waits for you").to_string(),
        )),
        "budget.alert" if d["threshold"].as_u64().unwrap_or(0) >= 80 => Some((
            format!("Budget at {}%", d["threshold"]),
            format!(
                "{} — ${:.2} of ${:.2}",
                e.subject.as_deref().unwrap_or(""),
                d["spent"].as_i64().unwrap_or(0) as f64 / 1e6,
                d["cap"].as_i64().unwrap_or(0) as f64 / 1e6
            ),
        )),
        "budget.cap_reached" => Some(("Agent held at its cap".into(), e.subject.clone().unwrap_or_default())),
        "task.failed" => Some(("Task failed".into(), d["error"].as_str().unwrap_or("see the task").chars().take(160).collect())),
        "task.stuck" => Some(("Agent stuck".into(), d["reason"].as_str().unwrap_or("no progress").to_string())),
        "task.question" => {
            Some(("An agent asks".into(), d["question"].as_str().unwrap_or("a task waits for your answer").chars().take(160).collect()))
        }
        "approval.expired" => Some(("Approval expired".into(), "A request expired unanswered; its task was cancelled.".into())),
        _ => None,
    }
}

impl Notifier {
    /// Notifies, once each, for the events among `ids` (new documents in `events`) that need the
    /// operator. One read of the feed however many ids a batch brought.
    pub async fn on_events(&mut self, app: &AppHandle, f: &Factory, ids: &[String]) {
        let fresh: HashSet<&String> = ids.iter().filter(|id| !self.shown.contains(*id)).collect();
        if fresh.is_empty() {
            return;
        }
        let limit = (fresh.len() + 50).min(1000);
        let Ok(l) = f.ports.events.recent(&reef_core::EventQuery { limit, ..Default::default() }).await else { return };
        let prefs = Prefs::load(f).await;
        for e in l.items.iter().rev().filter(|e| fresh.contains(&e.id)) {
            self.shown.insert(e.id.clone());
            if !prefs.allows(&e.kind) {
                continue;
            }
            if let Some((title, body)) = message_for(e) {
                let _ = app.notification().builder().title(title).body(body).show();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, data: serde_json::Value) -> Event {
        Event {
            id: "e".into(),
            kind: kind.into(),
            at: Default::default(),
            actor: "reef".into(),
            subject: Some("agent:rex:day:2026-11-21".into()),
            data,
        }
    }

    #[test]
    fn only_what_needs_the_operator_notifies() {
        assert_eq!(
            message_for(&ev("approval.requested", serde_json::json!({"summary": "Deploy Invoicely"}))).unwrap().1,
            "Deploy Invoicely"
        );
        assert!(message_for(&ev("budget.alert", serde_json::json!({"threshold": 50}))).is_none(), "50 % is an event, not a notification");
        assert!(message_for(&ev("budget.alert", serde_json::json!({"threshold": 80, "spent": 32000000, "cap": 40000000})))
            .unwrap()
            .1
            .contains("$32.00 of $40.00"));
        assert!(message_for(&ev("task.done", serde_json::json!({}))).is_none());
        assert!(message_for(&ev("task.failed", serde_json::json!({"error": "boom"}))).is_some());
        assert_eq!(
            message_for(&ev("task.question", serde_json::json!({"question": "Monday or Thursday?"}))).unwrap(),
            ("An agent asks".to_string(), "Monday or Thursday?".to_string())
        );
        assert!(!Prefs { approvals: false, ..Prefs::default() }.allows("task.question"), "questions follow the approvals switch");
    }

    #[test]
    fn preferences_silence_what_the_operator_turned_off() {
        let p = Prefs { budget: false, ..Prefs::default() };
        assert!(!p.allows("budget.alert"));
        assert!(p.allows("approval.requested"));
        assert!(!Prefs { approvals: false, ..p }.allows("approval.expired"));
    }
}
