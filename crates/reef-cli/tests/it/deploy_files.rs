//! docker-compose.yml and litellm-config.yaml parse and say what REEF relies on.

use serde_norway::Value;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(s) => s.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
        Value::String(s) => s.split_whitespace().map(String::from).collect(),
        _ => vec![],
    }
}

#[test]
fn compose_runs_mongodb_as_an_authenticated_replica_set_with_a_search_node() {
    let c = load("docker-compose.yml");
    let s = &c["services"];
    let m = &s["mongodb"];
    assert!(m["image"].as_str().unwrap().starts_with("mongo:8"), "MongoDB 8");
    let cmd = strings(&m["command"]);
    assert!(cmd.iter().any(|a| a == "--replSet=rs0"), "replica set rs0: change streams need one");
    assert!(cmd.iter().any(|a| a.starts_with("--keyFile=")), "a keyFile: access control on a replica set needs one");
    assert!(cmd.iter().any(|a| a.contains("mongotHost=mongot:27028")), "mongod forwards $vectorSearch to mongot");
    assert!(
        m["environment"]["MONGO_INITDB_ROOT_PASSWORD"].as_str().unwrap().contains(":?"),
        "the root password must be set, never defaulted"
    );
    assert!(m["healthcheck"]["test"].is_sequence(), "mongodb has a healthcheck");
    assert!(strings(&m["volumes"]).iter().any(|v| v.starts_with("mongo_data:/data/db")), "data on a named volume");
    let init = &s["mongo-init"];
    assert_eq!(init["restart"].as_str(), Some("no"), "init is one-shot");
    assert_eq!(init["depends_on"]["mongodb"]["condition"].as_str(), Some("service_healthy"));
    let script = std::fs::read_to_string(root().join("deploy/mongo-init.js")).unwrap();
    assert!(script.contains("rs.initiate") && script.contains("createUser") && script.contains("searchCoordinator"));
    assert!(s["mongot"]["image"].as_str().unwrap().contains("mongodb-community-search"), "a search node so $vectorSearch really runs");
    let aliases = strings(&m["networks"]["default"]["aliases"]);
    assert!(aliases.iter().any(|a| a.contains("MONGO_ADVERTISED_HOST")), "the member's host name is one the laptop can reach");
}

#[test]
fn compose_has_litellm_without_a_spend_database_langfuse_v2_and_ollama() {
    let c = load("docker-compose.yml");
    let s = &c["services"];
    let l = &s["litellm"];
    assert!(l["environment"]["DATABASE_URL"].is_null(), "LiteLLM cannot keep spend in MongoDB; REEF's ledger does");
    assert!(strings(&l["volumes"]).iter().any(|v| v.starts_with("./litellm-config.yaml:")));
    assert_eq!(s["langfuse"]["image"].as_str(), Some("langfuse/langfuse:2"), "seed 000 pins Langfuse v2 (v3 needs ClickHouse, Redis, S3)");
    assert!(s["langfuse"]["environment"]["DATABASE_URL"].as_str().unwrap().starts_with("postgresql://"));
    assert!(s["ollama"].is_mapping());
    for (name, svc) in s.as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        if svc["restart"].as_str() == Some("no") {
            continue;
        }
        assert!(svc["healthcheck"].is_mapping(), "long-running service {name} has a healthcheck");
    }
}

#[test]
fn litellm_config_has_five_priced_tiers_and_fallbacks_to_known_models() {
    let c = load("litellm-config.yaml");
    let models = c["model_list"].as_sequence().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["model_name"].as_str().unwrap()).collect();
    for tier in ["frontier", "mid", "cheap", "local", "embed"] {
        assert!(names.contains(&tier), "tier {tier} is defined");
    }
    for m in models {
        let info = &m["model_info"];
        let name = m["model_name"].as_str().unwrap();
        assert!(info["input_cost_per_token"].as_f64().is_some(), "{name} states an input price (REEF reserves the worst case from it)");
        assert!(info["output_cost_per_token"].as_f64().is_some(), "{name} states an output price");
        assert!(info["provider"].as_str().is_some(), "{name} names its provider (provider/month caps)");
    }
    let fallbacks = c["router_settings"]["fallbacks"].as_sequence().unwrap();
    assert!(!fallbacks.is_empty());
    for f in fallbacks {
        for (from, to) in f.as_mapping().unwrap() {
            assert!(names.contains(&from.as_str().unwrap()));
            for t in strings(to) {
                assert!(names.contains(&t.as_str()), "fallback {t} is a defined model");
            }
        }
    }
    assert!(c["general_settings"]["database_url"].is_null(), "no LiteLLM database: spend is REEF's");
}
