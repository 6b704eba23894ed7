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
