//! Settings: what this app is connected to, secrets (environment or OS keyring, never shown),
//! the factory's cap and approval gates, and the operator's notification preferences.

use crate::dto::*;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::notify::Prefs;
use crate::state::AppState;
use reef_host::vault::{self, Vault, VaultError};
use tauri::State;

#[tauri::command]
#[specta::specta]
pub async fn settings(state: State<'_, AppState>) -> AppResult<SettingsDto> {
    let f = state.factory()?;
    let c = &f.config;
    let live = f.live().await?;
    let doctor = reef_store::doctor::remembered(&c.data_dir, &reef_store::doctor::label(&c.store));
    Ok(SettingsDto {
        store: f.ports.kind.to_string(),
        remote: c.remote,
        timezone: c.timezone.name().into(),
        operator: c.operator.clone(),
        gateway: c.llm_base_url.clone(),
        gateway_key_set: c.llm_api_key.is_some(),
        global_daily_cap_usd: live.global_daily_cap.dollars(),
        agent_caps: live.agents.iter().map(|a| CapSettingDto { agent: a.name.clone(), daily_usd: a.daily_cap_usd.dollars() }).collect(),
        gates: live.gates.iter().map(|(k, v)| GateDto { action_class: k.clone(), gate: *v }).collect(),
        store_from: if std::env::var("REEF_MONGODB_URI").is_ok_and(|v| !v.is_empty()) {
            "environment".into()
        } else if matches!(c.store, reef_core::config::StoreChoice::Mongo { .. }) {
            "keyring or config file".into()
        } else {
            "embedded".into()
        },
        config_file: reef_host::config_path(std::env::var_os("REEF_CONFIG").map(std::path::PathBuf::from).as_deref())
            .map(|p| p.display().to_string()),
        notifications: Prefs::load(f).await,
        doctor_offer: matches!(c.store, reef_core::config::StoreChoice::Mongo { .. }) && doctor.is_none(),
        doctor: doctor.map(Into::into),
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
    Ok(probe_store(&uri).await)
}

async fn probe_store(uri: &str) -> StoreTestDto {
    let uri = uri.trim().to_string();
    let shown = reef_core::secret::redact_uri(&uri);
    if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
        return StoreTestDto {
            ok: false,
            message: format!("{shown:?} is not a MongoDB connection string (mongodb://user:pass@host:27017/?replicaSet=rs0)"),
            replica_set: false,
            version: None,
        };
    }
    let probe = tokio::time::timeout(std::time::Duration::from_secs(15), reef_store::mongo::MongoStore::connect(&uri, "factory")).await;
    match probe {
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
            message: reef_core::secret::redact_uri(&e.to_string()).replace(&uri, &shown),
            replica_set: false,
            version: None,
        },
        Err(_) => StoreTestDto { ok: false, message: format!("no answer from {shown} within 15 s"), replica_set: false, version: None },
    }
}

/// Sets the factory's standing daily cap (audited).
#[tauri::command]
#[specta::specta]
pub async fn set_global_cap(state: State<'_, AppState>, usd: f64) -> AppResult<()> {
    if !usd.is_finite() {
        return Err(AppError::invalid("the daily cap is not a number"));
    }
    let f = state.factory()?;
    Ok(f.set_global_cap(reef_core::Usd::from_dollars(usd), &state.operator()?).await?)
}

/// Sets an action class's gate; null removes it. Lowering a guarded gate fails with
/// `needs_confirmation` unless `confirmed` (the window asks the operator, then sends it again).
#[tauri::command]
#[specta::specta]
pub async fn set_gate(
    state: State<'_, AppState>,
    action_class: String,
    gate: Option<reef_core::rules::policy::Gate>,
    confirmed: bool,
) -> AppResult<()> {
    let f = state.factory()?;
    Ok(f.set_gate(action_class.trim(), gate, &state.operator()?, confirmed).await?)
}

/// The secrets REEF knows of and where each comes from; why the keyring cannot be used, if so.
#[tauri::command]
#[specta::specta]
pub async fn secrets(state: State<'_, AppState>) -> AppResult<SecretsDto> {
    let f = state.factory().ok();
    let vault = Vault::os();
    let v = vault.clone();
    let problem = tokio::task::spawn_blocking(move || v.probe().err().map(|e| e.to_string())).await.unwrap_or(None);
    let list = vault::list(f, &vault).await?;
    Ok(SecretsDto {
        secrets: list
            .into_iter()
            .map(|s| SecretDto {
                name: s.name,
                purpose: s.purpose,
                source: serde_json::json!(s.source).as_str().unwrap_or_default().into(),
            })
            .collect(),
        keyring_problem: problem,
    })
}

/// Keeps a secret in the OS keyring; `product` makes it that product's (REEF_PRODUCT_<P>_<NAME>).
/// Takes effect at REEF's next start.
#[tauri::command]
#[specta::specta]
pub async fn set_secret(state: State<'_, AppState>, name: String, value: String, product: Option<String>) -> AppResult<String> {
    let full = match product.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => vault::product_secret(p, &name).map_err(vault_error)?,
        None => name.trim().to_string(),
    };
    vault::put(state.factory().ok(), &Vault::os(), &full, value, &state.operator_or_host()).await.map_err(put_error)?;
    Ok(full)
}

#[tauri::command]
#[specta::specta]
pub async fn delete_secret(state: State<'_, AppState>, name: String) -> AppResult<bool> {
    vault::remove(state.factory().ok(), &Vault::os(), &name, &state.operator_or_host()).await.map_err(put_error)
}

/// Tests a MongoDB URI and, only when it answers, keeps it in the OS keyring as the store to open
/// at the next start; null goes back to the embedded store.
#[tauri::command]
#[specta::specta]
pub async fn save_store_uri(state: State<'_, AppState>, uri: Option<String>) -> AppResult<StoreTestDto> {
    let who = state.operator_or_host();
    let Some(uri) = uri.map(|u| u.trim().to_string()).filter(|u| !u.is_empty()) else {
        vault::remove(state.factory().ok(), &Vault::os(), "REEF_MONGODB_URI", &who).await.map_err(put_error)?;
        return Ok(StoreTestDto {
            ok: true,
            message: "REEF opens the embedded store at its next start".into(),
            replica_set: false,
            version: None,
        });
    };
    let mut t = probe_store(&uri).await;
    if !t.ok {
        t.message = format!("not saved: {}", t.message);
        return Ok(t);
    }
    vault::put(state.factory().ok(), &Vault::os(), "REEF_MONGODB_URI", uri, &who).await.map_err(put_error)?;
    t.message = format!(
        "{}. Saved in the OS keyring: REEF connects to it at its next start{}",
        t.message,
        if std::env::var("REEF_MONGODB_URI").is_ok_and(|v| !v.is_empty()) {
            " (but REEF_MONGODB_URI in the environment still wins)"
        } else {
            ""
        }
    );
    Ok(t)
}

fn vault_error(e: VaultError) -> AppError {
    let code = match e {
        VaultError::NoKeyring(_) | VaultError::Locked(_) => ErrorCode::Unavailable,
        VaultError::Invalid(_) => ErrorCode::Invalid,
        VaultError::Failed(_) => ErrorCode::Backend,
    };
    AppError { code, message: e.to_string() }
}

fn put_error(e: vault::PutError) -> AppError {
    match e {
        vault::PutError::Vault(v) => vault_error(v),
        vault::PutError::Store(s) => s.into(),
    }
}
