//! Where the factory lives and how it reaches the gateway: the store (embedded or MongoDB), the
//! LLM gateway, and remote mode. Invariant: no password or key is taken from the file.

use super::{bad, ConfigError, Defaults, FileConfig, StoreChoice};
use crate::secret::{redact_uri, Secret};
use crate::ModelTier;
use std::collections::BTreeMap;
use std::path::PathBuf;

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The data directory and the store.
pub fn store(file: &FileConfig, env: Env<'_>, defaults: &Defaults) -> Result<(PathBuf, StoreChoice), ConfigError> {
    let data_dir = env("REEF_DATA_DIR").map(PathBuf::from).or(file.store.data_dir.clone()).unwrap_or_else(|| defaults.data_dir.clone());
    // Secrets never live in a plain file: the environment or the OS keyring hold them.
    if let Some(u) = &file.store.mongodb_uri {
        if redact_uri(u.expose()) != u.expose() {
            return Err(bad(
                "store.mongodb_uri",
                "carries a password (or a secret query parameter) in the config file".to_string(),
                "keep the URI in REEF_MONGODB_URI or the OS keyring (`reef secret set REEF_MONGODB_URI`, or Settings in the app)",
            ));
        }
    }
    if file.llm.api_key.is_some() {
        return Err(bad(
            "llm.api_key",
            "a key in the config file would sit on disk in clear".to_string(),
            "set REEF_LLM_API_KEY in the environment or the OS keyring (`reef secret set REEF_LLM_API_KEY`, or Settings in the app)",
        ));
    }
    let uri = env("REEF_MONGODB_URI").filter(|s| !s.is_empty()).map(Secret::new).or(file.store.mongodb_uri.clone());
    let store = match uri {
        Some(uri) => {
            let u = uri.expose();
            if !(u.starts_with("mongodb://") || u.starts_with("mongodb+srv://")) {
                return Err(bad(
                    "REEF_MONGODB_URI / store.mongodb_uri",
                    format!("{:?} is not a MongoDB connection string", redact_uri(u)),
                    "use mongodb://user:pass@host:27017/?replicaSet=rs0 (or unset it for the embedded store)",
                ));
            }
            let database = file.store.database.clone().unwrap_or_else(|| "factory".into());
            StoreChoice::Mongo { uri, database }
        }
        None => StoreChoice::Embedded { path: data_dir.join("reef.db") },
    };
    Ok((data_dir, store))
}

/// The LLM gateway: its address, its key, and the model name per tier.
pub struct Gateway {
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub models: BTreeMap<ModelTier, String>,
}

pub fn llm(file: &FileConfig, env: Env<'_>) -> Result<Gateway, ConfigError> {
    let llm_base_url = env("REEF_LLM_BASE_URL").or(file.llm.base_url.clone()).unwrap_or_else(|| "http://127.0.0.1:4000".into());
    if !(llm_base_url.starts_with("http://") || llm_base_url.starts_with("https://")) {
        return Err(bad(
            "REEF_LLM_BASE_URL / llm.base_url",
            format!("{llm_base_url:?} is not an http(s) URL"),
            "use e.g. http://127.0.0.1:4000",
        ));
    }
    let llm_api_key = env("REEF_LLM_API_KEY").map(Secret::new).or(file.llm.api_key.clone());
    let mut llm_models: BTreeMap<ModelTier, String> = ModelTier::ALL.iter().map(|t| (*t, t.as_str().to_string())).collect();
    for (tier, model) in &file.llm.tiers {
        let t = tier.parse::<ModelTier>().map_err(|e| bad(&format!("llm.tiers.{tier}"), e, "use local, cheap, mid or frontier as keys"))?;
        llm_models.insert(t, model.clone());
    }
    Ok(Gateway { base_url: llm_base_url, api_key: llm_api_key, models: llm_models })
}

/// Watch and decide only: needs a MongoDB store.
pub fn remote(file: &FileConfig, env: Env<'_>, store: &StoreChoice) -> Result<bool, ConfigError> {
    let remote = match env("REEF_REMOTE").as_deref() {
        Some("1" | "true" | "yes") => true,
        Some("0" | "false" | "no") => false,
        Some(o) => return Err(bad("REEF_REMOTE", format!("{o:?} is not true or false"), "use REEF_REMOTE=1 or unset it")),
        None => file.app.remote.unwrap_or(false),
    };
    if remote && matches!(*store, StoreChoice::Embedded { .. }) {
        return Err(bad(
            "app.remote / REEF_REMOTE",
            "remote mode needs a MongoDB store: the embedded store lives on this machine, so there is no remote factory to watch",
            "set REEF_MONGODB_URI to the server's MongoDB, or turn remote mode off",
        ));
    }
    Ok(remote)
}
