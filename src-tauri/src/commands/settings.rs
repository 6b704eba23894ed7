//! Settings: what this app is connected to, and the operator's notification preferences.

use crate::dto::*;
use crate::error::AppResult;
use crate::notify::Prefs;
use crate::state::AppState;
use tauri::State;

#[tauri::command]
#[specta::specta]
pub async fn settings(state: State<'_, AppState>) -> AppResult<SettingsDto> {
    let f = state.factory()?;
    let c = &f.config;
    Ok(SettingsDto {
        store: f.ports.kind.to_string(),
        remote: c.remote,
        timezone: c.timezone.name().into(),
        operator: c.operator.clone(),
        gateway: c.llm_base_url.clone(),
        gateway_key_set: c.llm_api_key.is_some(),
        global_daily_cap_usd: c.global_daily_cap.dollars(),
        agent_caps: c.agents.iter().map(|a| CapSettingDto { agent: a.name.clone(), daily_usd: a.daily_cap_usd.dollars() }).collect(),
        gates: c.policy.gates.iter().map(|(k, v)| GateDto { action_class: k.clone(), gate: format!("{v:?}") }).collect(),
        config_file: reef_store::host::config_path(std::env::var_os("REEF_CONFIG").map(std::path::PathBuf::from).as_deref())
            .map(|p| p.display().to_string()),
        notifications: Prefs::load(f).await,
    })
}

#[tauri::command]
#[specta::specta]
pub async fn set_notification_prefs(state: State<'_, AppState>, prefs: Prefs) -> AppResult<()> {
    let f = state.factory()?;
    Ok(prefs.save(f, &state.operator()?).await?)
}

/// Tries a MongoDB connection string without saving it: reachable? replica set? version?
/// The answer never contains the password.
#[tauri::command]
#[specta::specta]
pub async fn test_store_uri(uri: String) -> AppResult<StoreTestDto> {
    let shown = reef_core::config::redact_uri(&uri);
    if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
        return Ok(StoreTestDto {
            ok: false,
            message: format!("{shown:?} is not a MongoDB connection string (mongodb://user:pass@host:27017/?replicaSet=rs0)"),
            replica_set: false,
            version: None,
        });
    }
    let probe = tokio::time::timeout(std::time::Duration::from_secs(15), reef_store::mongo::MongoStore::connect(&uri, "factory")).await;
    Ok(match probe {
        Ok(Ok(s)) => {
            let c = s.capabilities();
            StoreTestDto {
                ok: true,
                message: format!(
                    "Connected to {shown}: MongoDB {}{}",
                    c.version,
                    if c.replica_set { ", replica set (change streams and transactions)" } else { ", standalone (REEF would poll)" }
                ),
                replica_set: c.replica_set,
                version: Some(c.version.clone()),
            }
        }
        Ok(Err(e)) => StoreTestDto {
            ok: false,
            message: reef_core::config::redact_uri(&e.to_string()).replace(&uri, &shown),
            replica_set: false,
            version: None,
        },
        Err(_) => StoreTestDto { ok: false, message: format!("no answer from {shown} within 15 s"), replica_set: false, version: None },
    })
}
