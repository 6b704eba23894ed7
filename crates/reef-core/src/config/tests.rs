//! The config's validation: each bad value is named with its key and fix.

use super::*;
use crate::secret::redact_uri;

fn defaults() -> Defaults {
    Defaults {
        data_dir: "/tmp/reef-test".into(),
        machine_timezone: Some("UTC".into()),
        host: "box".into(),
        cache_dir: "/tmp/reef-cache".into(),
    }
}
fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn empty_config_gives_seed_caps_and_embedded_store() {
    let c = Config::resolve(None, &no_env, &defaults()).unwrap();
    assert_eq!(c.global_daily_cap, Usd::from_dollars(100.0));
    let caps: Vec<_> = c.agents.iter().map(|a| (a.name.as_str(), a.daily_cap_usd.dollars())).collect();
    assert_eq!(caps, vec![("kev", 30.0), ("rex", 40.0), ("scout", 15.0), ("blaze", 10.0)]);
    assert_eq!(c.store, StoreChoice::Embedded { path: "/tmp/reef-test/reef.db".into() });
}

#[test]
fn env_uri_selects_mongo_and_never_prints_the_password() {
    let env = |k: &str| (k == "REEF_MONGODB_URI").then(|| "mongodb://adam:hunter2@dreamteam:27017/?replicaSet=rs0".to_string());
    let c = Config::resolve(None, &env, &defaults()).unwrap();
    let StoreChoice::Mongo { uri, database } = &c.store else { panic!("expected mongo, got {:?}", c.store) };
    assert_eq!(database, "factory");
    assert!(!format!("{c:?}").contains("hunter2"), "Debug must not show the password");
    assert!(!c.export_redacted().contains("hunter2"), "export must not show the password");
    assert_eq!(redact_uri(uri.expose()), "mongodb://adam:***@dreamteam:27017/?replicaSet=rs0");
}

#[test]
fn secrets_in_the_config_file_are_refused_with_where_to_put_them() {
    let e = Config::resolve(Some("[llm]\napi_key = \"sk-live-123\""), &no_env, &defaults()).unwrap_err().to_string();
    assert!(e.contains("llm.api_key") && e.contains("keyring") && !e.contains("sk-live-123"), "{e}");
    let e = Config::resolve(Some("[store]\nmongodb_uri = \"mongodb://u:pw9@h:27017/\""), &no_env, &defaults()).unwrap_err().to_string();
    assert!(e.contains("store.mongodb_uri") && e.contains("password") && !e.contains("pw9"), "{e}");
    let c = Config::resolve(Some("[store]\nmongodb_uri = \"mongodb://dreamteam:27017/?replicaSet=rs0\""), &no_env, &defaults()).unwrap();
    assert!(matches!(c.store, StoreChoice::Mongo { .. }), "a URI without a password may stay in the file");
}

#[test]
fn redaction_covers_query_secrets_and_leaves_plain_uris_alone() {
    assert_eq!(redact_uri("mongodb://h:27017/factory"), "mongodb://h:27017/factory");
    assert_eq!(
        redact_uri("mongodb://u:p@h/?tlsCertificateKeyFilePassword=zz&w=1"),
        "mongodb://u:***@h/?tlsCertificateKeyFilePassword=***&w=1"
    );
}

#[test]
fn bad_values_name_the_key_and_the_fix() {
    let e = Config::resolve(Some("[factory]\ntimezone = \"Mars/Olympus\""), &no_env, &defaults()).unwrap_err();
    assert_eq!(e.key, "factory.timezone");
    let e = Config::resolve(Some("[caps]\nglobal_daily_usd = -5"), &no_env, &defaults()).unwrap_err();
    assert_eq!(e.key, "caps.global_daily_usd");
    let e = Config::resolve(Some("[store]\nmongo_uri = \"x\""), &no_env, &defaults()).unwrap_err();
    assert!(e.problem.contains("mongo_uri"), "names the unknown key: {e}");
    let e = Config::resolve(Some("[caps]\nglobal_daily_usd = \"lots\""), &no_env, &defaults()).unwrap_err();
    assert_eq!(e.key, "caps.global_daily_usd", "a wrong type names its key: {e}");
    let env = |k: &str| (k == "REEF_MONGODB_URI").then(|| "postgres://u:secretpw@h".to_string());
    let e = Config::resolve(None, &env, &defaults()).unwrap_err();
    assert!(!e.to_string().contains("secretpw"), "{e}");
    let e = Config::resolve(Some("[approvals.gates]\nproduction_deploy = \"maybe\""), &no_env, &defaults()).unwrap_err();
    assert_eq!(e.key, "approvals.gates.production_deploy");
    let e = Config::resolve(Some("[[executors]]\nname = \"x\"\nkinds = [\"build\"]\ncommand = []"), &no_env, &defaults()).unwrap_err();
    assert_eq!(e.key, "executors[0].command");
    let e = Config::resolve(Some("[[routing]]\nkind = \"x\"\nagent = \"nobody\""), &no_env, &defaults()).unwrap_err();
    assert_eq!(e.key, "routing[0].agent");
    let e = Config::resolve(Some("[app]\nremote = true"), &no_env, &defaults()).unwrap_err();
    assert_eq!(e.key, "app.remote / REEF_REMOTE", "remote mode with the embedded store is refused: {e}");
    assert!(e.problem.contains("embedded store lives on this machine"));
    let e = Config::resolve(Some("[engine]\nlease_seconds = 0"), &no_env, &defaults()).unwrap_err();
    assert_eq!(e.key, "engine.lease_seconds");
    let e = Config::resolve(Some("[[agents]]\nname=\"a\"\nrole=\"r\"\ndaily_cap_usd=1\nmodel_tier=\"huge\""), &no_env, &defaults())
        .unwrap_err();
    assert_eq!(e.key, "agents[0].model_tier");
}

#[test]
fn retention_is_in_days_and_what_webhooks_owe_outlives_the_feed() {
    let c = Config::resolve(None, &no_env, &defaults()).unwrap();
    assert_eq!(c.retention, RetentionConfig::default());
    assert_eq!(RetentionConfig::days(c.retention.events), 30);
    let c = Config::resolve(Some("[retention]\noutput_days = 2\nwork_days = 1\n"), &no_env, &defaults()).unwrap();
    assert_eq!((RetentionConfig::days(c.retention.output), RetentionConfig::days(c.retention.work)), (2, 1));
    assert!(c.export_redacted().contains("output_days = 2"), "export shows the retention in force");
    for (text, key) in [
        ("[retention]\nevents_days = 0\n", "retention.events_days"),
        ("[retention]\nevents_days = 60\nowed_days = 30\n", "retention.owed_days"),
        ("[retention]\nforever = true\n", "retention"),
    ] {
        let e = Config::resolve(Some(text), &no_env, &defaults()).unwrap_err();
        assert!(e.key.contains(key), "{text}: {e}");
    }
}

#[test]
fn a_subtask_may_not_run_where_its_agent_would_reach_further_than_its_parent() {
    let toml = r#"
[[executors]]
name = "sealed"
kinds = ["build"]
command = ["claude"]
egress = ["registry.npmjs.org"]
[[executors]]
name = "npm"
kinds = ["install"]
command = ["claude"]
egress = ["registry.npmjs.org"]
[[executors]]
name = "web"
kinds = ["research"]
command = ["claude"]
network = "host"
[[executors]]
name = "git"
kinds = ["push"]
command = ["claude"]
egress = ["*.github.com:443"]
"#;
    let c = Config::resolve(Some(toml), &no_env, &defaults()).unwrap();
    assert_eq!(c.wider_reach(Some("install"), Some("build")), None, "the same allow-list");
    assert_eq!(c.wider_reach(Some("summary"), Some("build")), None, "REEF's own LLM call reaches nothing");
    assert_eq!(c.wider_reach(Some("build"), Some("push")).map(|w| w.contains("registry.npmjs.org")), Some(true));
    assert!(c.wider_reach(Some("research"), Some("build")).unwrap().contains("host's network"));
    assert_eq!(c.wider_reach(Some("build"), Some("research")), None, "narrower is always fine");
    let bad = Config::resolve(
        Some("[[executors]]\nname = \"x\"\nkinds = [\"x\"]\ncommand = [\"x\"]\negress = [\"http://x.org\"]\n"),
        &no_env,
        &defaults(),
    );
    assert!(bad.unwrap_err().to_string().contains("executors[0].egress[0]"));
}

#[test]
fn a_preset_fills_what_the_executor_leaves_out_and_what_the_operator_wrote_wins() {
    let text = "[[executors]]\npreset = \"claude\"\nprogram = \"/opt/claude\"\n\n\
                [[executors]]\npreset = \"pi\"\nname = \"pi-cheap\"\nkinds = [\"qa\"]\nallowed_tools = { default = [\"read\"] }\nenv = { PI_TELEMETRY = \"1\" }\n";
    let c = Config::resolve(Some(text), &no_env, &defaults()).unwrap();
    let claude = &c.executors[0];
    assert_eq!((claude.name.as_str(), claude.preset.as_deref()), ("claude", Some("claude")));
    assert_eq!(claude.command[0], "/opt/claude");
    assert!(claude.command.windows(2).any(|w| w == ["--model", "{model}"]), "{:?}", claude.command);
    assert_eq!(claude.resume_args, ["--resume", "{session_id}"]);
    assert!(claude.prompt_on_stdin && claude.kinds == ["build", "qa"]);
    assert!(claude.allowed_tools["default"].contains(&"mcp__reef".to_string()));
    let pi = &c.executors[1];
    assert_eq!((pi.name.as_str(), pi.kinds.as_slice()), ("pi-cheap", ["qa".to_string()].as_slice()));
    assert_eq!(pi.allowed_tools["default"], ["read"], "the operator's list wins");
    assert!(pi.env.contains(&("PI_TELEMETRY".to_string(), "1".to_string())), "the operator's variable wins: {:?}", pi.env);
    assert!(pi.env.contains(&("PI_OFFLINE".to_string(), "1".to_string())));
    // Not found anywhere: the bare name, for PATH at run time.
    assert_eq!(pi.command[5], "pi", "{:?}", pi.command);
    let e = Config::resolve(Some("[[executors]]\npreset = \"cursor\"\n"), &no_env, &defaults()).unwrap_err().to_string();
    assert!(e.contains("executors[0].preset") && e.contains("claude, pi, codex"), "{e}");
    let e = Config::resolve(Some("[[executors]]\nname = \"x\"\nkinds = [\"a\"]\n"), &no_env, &defaults()).unwrap_err().to_string();
    assert!(e.contains("executors[0].command"), "{e}");
}

#[test]
fn an_executor_that_deploys_is_a_production_deploy_whatever_its_kind_is_spelled() {
    for (kinds, class) in
        [(r#"["deploy"]"#, Some("production_deploy")), (r#"["Deploy-prod"]"#, Some("production_deploy")), (r#"["build"]"#, None)]
    {
        let toml = format!("[[executors]]\nname = \"x\"\nkinds = {kinds}\ncommand = [\"true\"]\n");
        let c = Config::resolve(Some(&toml), &no_env, &defaults()).unwrap();
        assert_eq!(c.executors[0].action_class.as_deref(), class, "{kinds}");
    }
    let toml = "[[executors]]\nname = \"x\"\nkinds = [\"ship\"]\ncommand = [\"true\"]\naction_class = \"Prod Deploy\"\n";
    let e = Config::resolve(Some(toml), &no_env, &defaults()).unwrap_err();
    assert!(e.to_string().contains("executors[0].action_class"), "{e}");
}
