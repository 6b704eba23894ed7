//! Secrets: the gateway key, a MongoDB URI with its password, Stripe keys and per-product secrets.
//! Each has an environment name (`REEF_LLM_API_KEY`, `REEF_PRODUCT_<PRODUCT>_<NAME>`); its value
//! comes from the environment first, else from the OS keyring (Secret Service on Linux, Keychain
//! on macOS, Credential Manager on Windows) under service `reef`.
//!
//! Invariant: a secret's value is never written to a plain file, the store, a log or an event —
//! the store keeps only the *names* of the product secrets the operator added, so they can be
//! listed. A machine without a keyring gets an error that says so and what to do instead.

use std::sync::mpsc;
use std::time::Duration;

/// The secrets REEF itself reads, with what they are for.
pub const KNOWN: &[(&str, &str)] = &[
    ("REEF_LLM_API_KEY", "LiteLLM gateway key"),
    ("REEF_MONGODB_URI", "MongoDB connection string (with its password)"),
    ("REEF_STRIPE_WEBHOOK_SECRET", "Stripe webhook signing secret (whsec_…)"),
    ("REEF_STRIPE_API_KEY", "Stripe restricted key for pull mode (rk_…)"),
    ("REEF_LINK_SECRET", "Signs approve / reject links in webhooks"),
    ("REEF_GITHUB_TOKEN", "Opens and reads pull requests where a product's forge is GitHub"),
];

/// A keyring that does not answer within this long is treated as absent: start-up and the window
/// must never hang on a locked or wedged Secret Service.
const KEYRING_TIMEOUT: Duration = Duration::from_secs(4);
const MAX_SECRET_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("no OS keyring on this machine ({0}). Set the secret in REEF's environment instead (e.g. REEF_LLM_API_KEY=… in the service unit), or install and unlock a Secret Service keyring (gnome-keyring, KeePassXC)")]
    NoKeyring(String),
    #[error("the OS keyring is locked or has no default collection ({0}); unlock it (log in to the desktop session) and try again")]
    Locked(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the OS keyring refused: {0}")]
    Failed(String),
}

impl VaultError {
    /// A stable code the window can branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoKeyring(_) => "no_keyring",
            Self::Locked(_) => "keyring_locked",
            Self::Invalid(_) => "invalid",
            Self::Failed(_) => "keyring_failed",
        }
    }
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Environment,
    Keyring,
    Unset,
}

/// The OS keyring under one service name.
#[derive(Debug, Clone)]
pub struct Vault {
    service: String,
    enabled: bool,
}

impl Vault {
    /// The keyring REEF uses: service `reef`, or `REEF_KEYRING_SERVICE` (tests use their own);
    /// `REEF_KEYRING=off` turns it off (the environment alone then holds secrets).
    pub fn os() -> Self {
        Self {
            service: std::env::var("REEF_KEYRING_SERVICE").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "reef".into()),
            enabled: std::env::var("REEF_KEYRING").map(|v| v != "off").unwrap_or(true),
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// The value from the keyring, `None` when it holds none.
    pub fn get(&self, name: &str) -> Result<Option<String>, VaultError> {
        validate_name(name)?;
        let name = name.to_string();
        self.call(
            move |e| match e.get_password() {
                Ok(v) => Ok(Some(v)),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(x) => Err(x),
            },
            &name,
        )
    }

    pub fn set(&self, name: &str, value: &str) -> Result<(), VaultError> {
        validate_name(name)?;
        if value.is_empty() {
            return Err(VaultError::Invalid(format!("{name}: the value is empty (use delete to remove a secret)")));
        }
        if value.len() > MAX_SECRET_BYTES {
            return Err(VaultError::Invalid(format!("{name}: the value is {} bytes; the limit is {MAX_SECRET_BYTES}", value.len())));
        }
        if value.chars().any(char::is_control) {
            return Err(VaultError::Invalid(format!("{name}: the value holds control characters (a pasted newline?)")));
        }
        let v = value.to_string();
        self.call(move |e| e.set_password(&v), name)
    }

    /// Removes a secret; `false` when there was none.
    pub fn delete(&self, name: &str) -> Result<bool, VaultError> {
        validate_name(name)?;
        self.call(
            |e| match e.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring::Error::NoEntry) => Ok(false),
                Err(x) => Err(x),
            },
            name,
        )
    }

    /// A secret's value and where it came from: the environment first, then the keyring. A
    /// keyring that is absent or locked counts as holding nothing (the caller sees `Unset`).
    pub fn lookup(&self, name: &str, env: &dyn Fn(&str) -> Option<String>) -> (Option<String>, Source) {
        if let Some(v) = env(name).filter(|v| !v.is_empty()) {
            return (Some(v), Source::Environment);
        }
        match self.get(name) {
            Ok(Some(v)) => (Some(v), Source::Keyring),
            Ok(None) => (None, Source::Unset),
            Err(e) => {
                tracing::debug!(secret = name, error = %e, "keyring unavailable");
                (None, Source::Unset)
            }
        }
    }

    /// Whether a keyring answers at all (for the window's message), without touching a secret.
    pub fn probe(&self) -> Result<(), VaultError> {
        self.get("REEF_KEYRING_PROBE").map(|_| ())
    }

    /// Runs one keyring operation on its own thread with a deadline: the Secret Service client
    /// blocks, and a locked keyring may wait for a prompt nobody will answer.
    fn call<T: Send + 'static>(
        &self,
        op: impl FnOnce(&keyring::Entry) -> Result<T, keyring::Error> + Send + 'static,
        name: &str,
    ) -> Result<T, VaultError> {
        if !self.enabled {
            return Err(VaultError::NoKeyring("turned off by REEF_KEYRING=off".into()));
        }
        let (tx, rx) = mpsc::channel();
        let (service, user) = (self.service.clone(), name.to_string());
        std::thread::Builder::new()
            .name("reef-keyring".into())
            .spawn(move || {
                let r = keyring::Entry::new(&service, &user).and_then(|e| op(&e));
                let _ = tx.send(r);
            })
            .map_err(|e| VaultError::Failed(format!("cannot start the keyring thread: {e}")))?;
        match rx.recv_timeout(KEYRING_TIMEOUT) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(e)),
            Err(_) => Err(VaultError::Locked(format!("no answer within {} s", KEYRING_TIMEOUT.as_secs()))),
        }
    }
}

fn classify(e: keyring::Error) -> VaultError {
    match e {
        keyring::Error::PlatformFailure(x) => VaultError::NoKeyring(x.to_string()),
        keyring::Error::NoStorageAccess(x) => VaultError::Locked(x.to_string()),
        keyring::Error::TooLong(what, max) => VaultError::Invalid(format!("{what} is longer than {max}")),
        keyring::Error::Invalid(what, why) => VaultError::Invalid(format!("{what}: {why}")),
        other => VaultError::Failed(other.to_string()),
    }
}

/// A secret name is an environment variable name REEF owns: `REEF_` then capitals, digits, `_`.
pub fn validate_name(name: &str) -> Result<(), VaultError> {
    if reef_core::secret::is_secret_name(name) {
        Ok(())
    } else {
        Err(VaultError::Invalid(format!(
            "{:?} is not a secret name: REEF_ then capitals, digits and _ (e.g. REEF_PRODUCT_HABITFLOW_STRIPE_KEY)",
            name.chars().take(100).collect::<String>()
        )))
    }
}

/// The environment name of a product's secret: `REEF_PRODUCT_<PRODUCT>_<NAME>`.
pub fn product_secret(product: &str, name: &str) -> Result<String, VaultError> {
    let norm = |s: &str| s.trim().to_ascii_uppercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect::<String>();
    let (p, n) = (norm(product), norm(name));
    if p.is_empty() || n.is_empty() {
        return Err(VaultError::Invalid("a product secret needs a product and a name".into()));
    }
    let full = format!("REEF_PRODUCT_{p}_{n}");
    validate_name(&full)?;
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_reef_environment_names() {
        assert!(validate_name("REEF_LLM_API_KEY").is_ok());
        for bad in ["LLM_KEY", "REEF_", "reef_x", "REEF_A B", "REEF_A\n", &format!("REEF_{}", "A".repeat(100))] {
            assert!(matches!(validate_name(bad), Err(VaultError::Invalid(_))), "{bad:?}");
        }
        assert_eq!(product_secret("habit-flow", "stripe key").unwrap(), "REEF_PRODUCT_HABIT_FLOW_STRIPE_KEY");
        assert!(product_secret("", "x").is_err());
    }

    #[test]
    fn values_are_checked_before_the_keyring_is_asked() {
        let v = Vault { service: "reef-unit".into(), enabled: false };
        assert!(matches!(v.set("REEF_X", ""), Err(VaultError::Invalid(_))));
        assert!(matches!(v.set("REEF_X", "a\nb"), Err(VaultError::Invalid(_))));
        assert!(matches!(v.set("REEF_X", &"a".repeat(MAX_SECRET_BYTES + 1)), Err(VaultError::Invalid(_))));
        assert!(matches!(v.set("REEF_X", "ok"), Err(VaultError::NoKeyring(_))));
    }

    #[test]
    fn the_environment_wins_and_an_absent_keyring_reads_as_unset() {
        let v = Vault { service: "reef-unit".into(), enabled: false };
        let env = |k: &str| (k == "REEF_LLM_API_KEY").then(|| "sk-env".to_string());
        assert_eq!(v.lookup("REEF_LLM_API_KEY", &env), (Some("sk-env".into()), Source::Environment));
        assert_eq!(v.lookup("REEF_STRIPE_API_KEY", &env), (None, Source::Unset));
    }
}

/// One secret as the window and `reef secret list` show it: never its value.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SecretState {
    pub name: String,
    pub purpose: String,
    pub source: Source,
}

fn index_key() -> String {
    reef_core::settings::Key::ProductSecretNames.id()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    // The keyring client blocks (for up to KEYRING_TIMEOUT): keep it off the async workers.
    tokio::task::spawn_blocking(f).await.expect("keyring thread panicked")
}

async fn product_index(f: Option<&reef_core::factory::Factory>) -> Result<Vec<String>, reef_core::StoreError> {
    Ok(match f {
        Some(f) => f.ports.settings.get(&index_key()).await?.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default(),
        None => vec![],
    })
}

/// The secrets REEF knows of (its own, and the product secrets added when the store is at hand),
/// with where each comes from. Works without a store: a wrong URI in the keyring must be fixable.
pub async fn list(f: Option<&reef_core::factory::Factory>, vault: &Vault) -> Result<Vec<SecretState>, reef_core::StoreError> {
    let mut names: Vec<(String, String)> = KNOWN.iter().map(|(n, p)| (n.to_string(), p.to_string())).collect();
    let index = product_index(f).await?;
    names.extend(index.into_iter().filter(|n| validate_name(n).is_ok()).map(|n| (n, "product secret".to_string())));
    let v = vault.clone();
    Ok(blocking(move || {
        let env = |k: &str| std::env::var(k).ok();
        let mut keyring_up = true;
        names
            .into_iter()
            .map(|(name, purpose)| {
                let source = if env(&name).is_some_and(|x| !x.is_empty()) {
                    Source::Environment
                } else if !keyring_up {
                    Source::Unset
                } else {
                    match v.get(&name) {
                        Ok(Some(_)) => Source::Keyring,
                        Ok(None) => Source::Unset,
                        Err(_) => {
                            keyring_up = false;
                            Source::Unset
                        }
                    }
                };
                SecretState { name, purpose, source }
            })
            .collect()
    })
    .await)
}

/// Keeps a secret in the OS keyring (a product secret's name joins the index); audited by name.
/// Without a store (it may be the thing being fixed) only REEF's own secrets can be set, unaudited.
pub async fn put(f: Option<&reef_core::factory::Factory>, vault: &Vault, name: &str, value: String, who: &str) -> Result<(), PutError> {
    validate_name(name)?;
    let known = KNOWN.iter().any(|(k, _)| *k == name);
    if !known && f.is_none() {
        return Err(PutError::Vault(VaultError::Invalid(format!("{name}: a product secret needs the store (its name is listed there)"))));
    }
    let (v, n) = (vault.clone(), name.to_string());
    blocking(move || v.set(&n, &value)).await?;
    let Some(f) = f else { return Ok(()) };
    if !known {
        let mut index = product_index(Some(f)).await?;
        if !index.iter().any(|n| n == name) {
            index.push(name.to_string());
            index.sort();
            f.ports.settings.put(&index_key(), serde_json::json!(index)).await?;
        }
    }
    f.audit(who, "secret.set", name, serde_json::Value::Null, serde_json::json!("(kept in the OS keyring)"), None).await?;
    Ok(())
}

/// Removes a secret from the keyring and the index; audited by name (when the store is at hand).
pub async fn remove(f: Option<&reef_core::factory::Factory>, vault: &Vault, name: &str, who: &str) -> Result<bool, PutError> {
    validate_name(name)?;
    let (v, n) = (vault.clone(), name.to_string());
    let had = blocking(move || v.delete(&n)).await?;
    let Some(f) = f else { return Ok(had) };
    let mut index = product_index(Some(f)).await?;
    if index.iter().any(|n| n == name) {
        index.retain(|n| n != name);
        f.ports.settings.put(&index_key(), serde_json::json!(index)).await?;
    }
    f.audit(who, "secret.delete", name, serde_json::Value::Null, serde_json::Value::Null, None).await?;
    Ok(had)
}

/// A keyring or store failure while changing a secret.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] reef_core::StoreError),
}
