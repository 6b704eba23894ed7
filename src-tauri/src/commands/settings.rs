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
