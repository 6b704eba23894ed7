//! Model prices from litellm-config.yaml, for reserving the worst case before a call.
//!
//! Invariant: the worst case of a model is the highest cost over the model and everything its
//! fallback chain can reach, so a fallback to a pricier model can never overspend a reservation.

use crate::Usd;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// Dollars per token.
    pub input: f64,
    pub output: f64,
    pub provider: Option<String>,
    /// The prompt the model takes at most (`model_info.max_input_tokens`), when the config says.
    pub max_input_tokens: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceBook {
    pub models: BTreeMap<String, Price>,
    pub fallbacks: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct LiteLlmFile {
    #[serde(default)]
    model_list: Vec<ModelEntry>,
    #[serde(default)]
    router_settings: Option<RouterSettings>,
}
#[derive(Deserialize)]
struct ModelEntry {
    model_name: String,
    #[serde(default)]
    model_info: Option<ModelInfo>,
}
#[derive(Deserialize)]
struct ModelInfo {
    input_cost_per_token: Option<f64>,
    output_cost_per_token: Option<f64>,
    provider: Option<String>,
    max_input_tokens: Option<u64>,
}
#[derive(Deserialize)]
struct RouterSettings {
    #[serde(default)]
    fallbacks: Vec<BTreeMap<String, Vec<String>>>,
}

impl PriceBook {
    /// Reads the model list and fallbacks of a LiteLLM config. A model without prices is an
    /// error: REEF would not know what to reserve for it.
    pub fn from_litellm_yaml(text: &str) -> Result<Self, String> {
        let f: LiteLlmFile = serde_norway::from_str(text).map_err(|e| format!("litellm config is not valid: {e}"))?;
        let mut models = BTreeMap::new();
        for m in f.model_list {
            let info = m.model_info.ok_or_else(|| format!("model {} has no model_info with prices", m.model_name))?;
            let (Some(input), Some(output)) = (info.input_cost_per_token, info.output_cost_per_token) else {
                return Err(format!("model {} lacks input_cost_per_token/output_cost_per_token in model_info", m.model_name));
            };
            if !(input >= 0.0 && output >= 0.0) {
                return Err(format!("model {} has a negative price", m.model_name));
            }
            // Several deployments may share a name; reserve for the dearest.
            let window = info.max_input_tokens;
            let e =
                models.entry(m.model_name).or_insert(Price { input, output, provider: info.provider.clone(), max_input_tokens: window });
            if input + output > e.input + e.output {
                *e = Price { input, output, provider: info.provider, max_input_tokens: e.max_input_tokens };
            }
            // Deployments sharing a name: the smallest window is the one a call may meet.
            e.max_input_tokens = match (e.max_input_tokens, window) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let mut fallbacks = BTreeMap::new();
        for map in f.router_settings.map(|r| r.fallbacks).unwrap_or_default() {
            for (k, v) in map {
                fallbacks.insert(k, v);
            }
        }
        Ok(Self { models, fallbacks })
    }

    /// Every model a call to `model` may end up on, itself first.
    pub fn chain(&self, model: &str) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut order = vec![];
        let mut stack = vec![model.to_string()];
        while let Some(m) = stack.pop() {
            if seen.insert(m.clone()) {
                order.push(m.clone());
                if let Some(next) = self.fallbacks.get(&m) {
                    stack.extend(next.iter().rev().cloned());
                }
            }
        }
        order
    }

    /// A model's price; a model the book does not name is priced as LiteLLM routes it: by the
    /// `"*"` wildcard route, when there is one.
    fn price(&self, model: &str) -> Option<&Price> {
        self.models.get(model).or_else(|| self.models.get("*"))
    }

    pub fn cost(&self, model: &str, prompt_tokens: u64, completion_tokens: u64) -> Option<Usd> {
        self.price(model).map(|p| Usd::from_dollars(p.input * prompt_tokens as f64 + p.output * completion_tokens as f64))
    }

    /// The most a call could cost anywhere along the model's fallback chain.
    pub fn worst_case(&self, model: &str, prompt_tokens: u64, max_tokens: u64) -> Result<Usd, String> {
        let chain = self.chain(model);
        let mut worst = None;
        for m in &chain {
            if let Some(c) = self.cost(m, prompt_tokens, max_tokens) {
                worst = Some(worst.map_or(c, |w: Usd| w.max(c)));
            }
        }
        worst.ok_or_else(|| format!("no price known for model {model:?} (add it with model_info prices to litellm-config.yaml)"))
    }

    /// The prompt a call to `model` can always send: the smallest window any model along its
    /// fallback chain states (`None` when none states one).
    pub fn window(&self, model: &str) -> Option<u64> {
        self.chain(model).iter().filter_map(|m| self.price(m).and_then(|p| p.max_input_tokens)).min()
    }

    pub fn provider(&self, model: &str) -> Option<&str> {
        self.price(model).and_then(|p| p.provider.as_deref())
    }
}

/// A rough token count for text the gateway has not seen yet: about four characters a token,
/// rounded up, plus a little per message for the chat framing.
pub fn estimate_tokens(texts: &[&str]) -> u64 {
    texts.iter().map(|t| (t.len() as u64).div_ceil(4) + 4).sum::<u64>() + 3
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"
model_list:
  - model_name: cheap
    model_info: {input_cost_per_token: 0.000001, output_cost_per_token: 0.000002, provider: groq}
  - model_name: mid
    model_info: {input_cost_per_token: 0.00001, output_cost_per_token: 0.00002, provider: google}
  - model_name: frontier
    model_info: {input_cost_per_token: 0.0001, output_cost_per_token: 0.0002, provider: anthropic}
router_settings:
  fallbacks:
    - cheap: ["mid"]
    - mid: ["frontier"]
    - frontier: ["cheap"]
"#;

    #[test]
    fn worst_case_takes_the_dearest_model_the_fallback_chain_reaches() {
        let b = PriceBook::from_litellm_yaml(CFG).unwrap();
        assert_eq!(b.chain("cheap"), vec!["cheap", "mid", "frontier"], "cycles end");
        let w = b.worst_case("cheap", 1000, 500).unwrap();
        assert_eq!(w, Usd::from_dollars(0.0001 * 1000.0 + 0.0002 * 500.0));
        assert_eq!(b.cost("cheap", 1000, 500), Some(Usd::from_dollars(0.002)));
        assert!(b.worst_case("nope", 1, 1).is_err());
        assert_eq!(b.provider("mid"), Some("google"));
    }

    #[test]
    fn a_models_window_is_the_smallest_along_its_fallback_chain() {
        let cfg = CFG
            .replace("provider: groq}", "provider: groq, max_input_tokens: 8000}")
            .replace("provider: google}", "provider: google, max_input_tokens: 1000000}");
        let b = PriceBook::from_litellm_yaml(&cfg).unwrap();
        assert_eq!(b.window("mid"), Some(8_000), "mid falls back through frontier to cheap, the smallest");
        let none = PriceBook::from_litellm_yaml(CFG).unwrap();
        assert_eq!(none.window("cheap"), None);
    }

    #[test]
    fn the_shipped_config_prices_every_tier() {
        let text = include_str!("../../../../litellm-config.yaml");
        let b = PriceBook::from_litellm_yaml(text).unwrap();
        for t in ["frontier", "mid", "cheap", "local", "embed"] {
            assert!(b.models.contains_key(t), "{t}");
        }
        assert!(b.worst_case("cheap", 100, 100).unwrap() >= b.cost("frontier", 100, 100).unwrap(), "cheap falls back up to frontier");
    }

    #[test]
    fn a_model_only_the_wildcard_route_serves_is_priced_by_it() {
        let b = PriceBook::from_litellm_yaml(
            "model_list:\n  - model_name: \"*\"\n    model_info: {input_cost_per_token: 0.000003, output_cost_per_token: 0.000015}\n",
        )
        .unwrap();
        assert_eq!(b.cost("claude-sonnet-4-5", 1000, 1000), Some(Usd::from_dollars(0.018)));
        assert!(PriceBook::default().worst_case("claude-sonnet-4-5", 1, 1).is_err(), "no wildcard, no price");
    }

    #[test]
    fn a_model_without_prices_is_refused() {
        let e = PriceBook::from_litellm_yaml("model_list:\n  - model_name: x\n").unwrap_err();
        assert!(e.contains("model x"), "{e}");
    }

    #[test]
    fn token_estimate_grows_with_text() {
        assert!(estimate_tokens(&["a".repeat(400).as_str()]) >= 100);
        assert!(estimate_tokens(&[""]) > 0);
    }
}
