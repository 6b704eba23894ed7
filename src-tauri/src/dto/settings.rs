//! Wire types of the window's settings area. Settings: caps, gates, the store connection, secrets (names only), webhooks.

use super::*;

#[derive(Debug, Clone, Serialize, Type)]
pub struct CapSettingDto {
    pub agent: String,
    pub daily_usd: f64,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct GateDto {
    pub action_class: String,
    pub gate: reef_core::rules::policy::Gate,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct SettingsDto {
    pub store: String,
    /// Where the store connection comes from: environment, keyring or config file, embedded.
    pub store_from: String,
    pub remote: bool,
    pub timezone: String,
    pub operator: String,
    pub gateway: String,
    /// Whether a gateway key is set (never the key itself).
    pub gateway_key_set: bool,
    pub global_daily_cap_usd: f64,
    pub agent_caps: Vec<CapSettingDto>,
    pub gates: Vec<GateDto>,
    pub config_file: Option<String>,
    pub notifications: crate::notify::Prefs,
    /// Doctor's last report on this store from this machine (null: never checked here).
    pub doctor: Option<DoctorDto>,
    /// The store is a MongoDB this machine has never checked: the window offers doctor.
    pub doctor_offer: bool,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct StoreTestDto {
    pub ok: bool,
    pub message: String,
    pub replica_set: bool,
    pub version: Option<String>,
}

/// One secret: its name, what it is for and where its value comes from — never the value.
#[derive(Debug, Clone, Serialize, Type)]
pub struct SecretDto {
    pub name: String,
    pub purpose: String,
    /// environment, keyring or unset.
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct SecretsDto {
    pub secrets: Vec<SecretDto>,
    /// Why the OS keyring cannot be used here (null when it can).
    pub keyring_problem: Option<String>,
}

/// A webhook subscription and what it is owed (never its URL's path or its secret).
#[derive(Debug, Clone, Serialize, Type)]
pub struct WebhookDto {
    pub name: String,
    pub host: String,
    pub events: Vec<String>,
    pub template: String,
    pub approve_links: bool,
    pub pending: u32,
    pub failures: u32,
    pub last_error: Option<String>,
    /// Events the receiver kept refusing, passed over (newest last); each can be sent again.
    pub dead_letters: Vec<DeadLetterDto>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct DeadLetterDto {
    pub event: String,
    /// The event's kind (empty when no longer known).
    pub kind: String,
    pub at: Option<String>,
    /// The receiver's last answer.
    pub error: String,
}

/// One delivery attempt from the relay's log.
#[derive(Debug, Clone, Serialize, Type)]
pub struct DeliveryDto {
    pub at: String,
    pub subscription: String,
    pub kind: String,
    pub attempt: u32,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct WebhooksDto {
    pub subscriptions: Vec<WebhookDto>,
    /// Newest first.
    pub deliveries: Vec<DeliveryDto>,
}

/// `reef doctor`'s report on the configured store, as the app last made or found it.
#[derive(Debug, Clone, Serialize, Type)]
pub struct DoctorDto {
    /// The store, credentials redacted.
    pub store: String,
    /// When it ran (RFC 3339).
    pub at: String,
    pub checks: Vec<reef_core::doctor::Check>,
    /// Whether a guarantee REEF relies on fails on this store.
    pub failed: bool,
}

/// What a doctor run came to: a report, or the question to ask before it may write beside a factory.
#[derive(Debug, Clone, Serialize, Type)]
pub struct DoctorRunDto {
    pub report: Option<DoctorDto>,
    /// Set when the server already holds a factory and doctor needs the operator's word first.
    pub consent: Option<String>,
}

impl From<reef_store::doctor::Report> for DoctorDto {
    fn from(r: reef_store::doctor::Report) -> Self {
        let failed = r.failed();
        Self { store: r.store, at: r.at, checks: r.checks, failed }
    }
}
