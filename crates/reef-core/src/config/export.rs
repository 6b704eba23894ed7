//! `reef config export`: the config in force as TOML, every secret removed.

use super::{Config, StoreChoice};
use crate::secret::redact_uri;
use serde::Serialize;
use std::collections::BTreeMap;

impl Config {
    /// A TOML rendering with every secret removed, for `reef config export`.
    pub fn export_redacted(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            factory: BTreeMap<&'a str, String>,
            store: BTreeMap<&'a str, String>,
            llm: BTreeMap<&'a str, String>,
            sandbox: BTreeMap<&'a str, String>,
            retention: BTreeMap<&'a str, u64>,
            caps: OutCaps,
            agents: Vec<OutAgent<'a>>,
        }
        #[derive(Serialize)]
        struct OutCaps {
            global_daily_usd: f64,
            task_default_usd: f64,
            provider_monthly_usd: BTreeMap<String, f64>,
        }
        #[derive(Serialize)]
        struct OutAgent<'a> {
            name: &'a str,
            role: &'a str,
            capabilities: &'a [String],
            prompt: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            model_tier: Option<&'static str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            model: Option<&'a str>,
            daily_cap_usd: f64,
            max_concurrent: u32,
        }
        let mut store = BTreeMap::new();
        match &self.store {
            StoreChoice::Embedded { .. } => {
                store.insert("data_dir", self.data_dir.display().to_string());
            }
            StoreChoice::Mongo { uri, database } => {
                store.insert("mongodb_uri", redact_uri(uri.expose()));
                store.insert("database", database.clone());
            }
        }
        let mut llm = BTreeMap::new();
        llm.insert("base_url", self.llm_base_url.clone());
        let out = Out {
            factory: BTreeMap::from([("timezone", self.timezone.name().to_string())]),
            store,
            llm,
            sandbox: BTreeMap::from([
                ("mode", self.sandbox.mode.as_str().to_string()),
                ("network", self.sandbox.network.as_str().to_string()),
                ("work_dir", self.sandbox.work_dir.display().to_string()),
            ]),
            retention: {
                let (r, d) = (&self.retention, super::RetentionConfig::days);
                BTreeMap::from([
                    ("events_days", d(r.events)),
                    ("output_days", d(r.output)),
                    ("owed_days", d(r.owed)),
                    ("telemetry_days", d(r.telemetry)),
                    ("work_days", d(r.work)),
                ])
            },
            caps: OutCaps {
                global_daily_usd: self.global_daily_cap.dollars(),
                task_default_usd: self.task_default_cap.dollars(),
                provider_monthly_usd: self.provider_monthly_caps.iter().map(|(k, v)| (k.clone(), v.dollars())).collect(),
            },
            agents: self
                .agents
                .iter()
                .map(|a| OutAgent {
                    name: &a.name,
                    role: &a.role,
                    capabilities: &a.capabilities,
                    prompt: &a.prompt,
                    model_tier: a.model_tier.map(|t| t.as_str()),
                    model: a.model.as_deref(),
                    daily_cap_usd: a.daily_cap_usd.dollars(),
                    max_concurrent: a.max_concurrent,
                })
                .collect(),
        };
        let mut s = String::from("# REEF configuration (secrets removed: set REEF_MONGODB_URI / REEF_LLM_API_KEY in the environment)\n");
        s.push_str(&toml::to_string_pretty(&out).unwrap_or_default());
        s
    }
}
