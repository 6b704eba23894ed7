//! The CLI executor's command lines: placeholders, tool lists per action class, resuming.

use super::*;
use crate::config::ExecutorConfig;

#[test]
fn the_tool_lists_follow_the_action_class() {
    let mut allowed = std::collections::BTreeMap::new();
    allowed.insert("default".to_string(), vec!["Read".to_string(), "Edit".to_string()]);
    let mut disallowed = std::collections::BTreeMap::new();
    disallowed.insert("default".to_string(), vec!["Bash(wrangler deploy:*)".to_string()]);
    disallowed.insert("production_deploy".to_string(), vec![]);
    let cfg = ExecutorConfig {
        name: "claude".into(),
        kinds: vec!["build".into()],
        command: vec![
            "claude".into(),
            "-p".into(),
            "{prompt}".into(),
            "--disallowedTools".into(),
            "{disallowed_tools}".into(),
            "--allowedTools".into(),
            "{allowed_tools}".into(),
            "--max-budget-usd".into(),
            "{budget_usd}".into(),
        ],
        timeout: std::time::Duration::from_secs(1),
        output_cap_bytes: 1024,
        soft_cap: Some(Usd::from_dollars(2.5)),
        pass_env: vec![],
        allowed_tools: allowed,
        disallowed_tools: disallowed,
        resume_args: vec!["--resume".into(), "{session_id}".into()],
        network: None,
        read_only: vec![],
        writable: vec![],
        prompt_on_stdin: false,
        egress: vec![],
        preset: None,
        action_class: None,
        env: vec![],
    };
    let x = CliExecutor::new(cfg, None, std::env::temp_dir(), Arc::new(Containment::off("/tmp/w".into(), "/tmp/d".into())));
    let mut task = crate::NewTask::titled("Build the form").into_task("t1".into(), crate::Timestamp::default());
    task.kind = Some("build".into());
    let job = Job {
        task: task.clone(),
        agent: crate::domain::agent::default_agents().remove(1),
        tier: ModelTier::Cheap,
        attempt: 1,
        idempotency_key: "k".into(),
        workdir: "/tmp/w".into(),
        memories: vec![],
    };
    let argv = x.argv(&job);
    assert_eq!(argv[4], "Bash(wrangler deploy:*)", "a build task's agent may not deploy");
    assert_eq!(argv[6], "Read,Edit");
    assert_eq!(argv[8], "2.50", "the soft cap is handed to the agent");
    assert!(argv[2].contains("Build the form"));
    let mut deploy = job.clone();
    deploy.task.action_class = Some("production_deploy".into());
    assert_eq!(x.argv(&deploy)[4], "", "the (approved) deploy task gets its own list");
    assert_eq!(x.argv_resuming(&job, Some("sess-1")).last().map(String::as_str), Some("sess-1"), "a retry resumes the session");
    assert_eq!(x.argv_resuming(&job, None).len(), 9, "a first run does not");
}

#[test]
fn a_preset_runs_its_cli_through_its_set_up_script_and_resumes_its_session() {
    let file = "[[executors]]\npreset = \"codex\"\nprogram = \"/opt/codex\"\n";
    let defaults = crate::config::Defaults {
        data_dir: "/tmp/reef-test".into(),
        machine_timezone: None,
        host: "h".into(),
        cache_dir: "/tmp/reef-cache".into(),
    };
    let cfg = crate::config::Config::resolve(Some(file), &|_| None, &defaults).unwrap().executors.remove(0);
    let x = CliExecutor::new(cfg, None, std::env::temp_dir(), Arc::new(Containment::off("/tmp/w".into(), "/tmp/d".into())));
    let task = crate::NewTask::titled("Build it").into_task("t2".into(), crate::Timestamp::default());
    let job = Job {
        task,
        agent: crate::domain::agent::default_agents().remove(1),
        tier: ModelTier::Cheap,
        attempt: 1,
        idempotency_key: "k".into(),
        workdir: "/tmp/w".into(),
        memories: vec![],
    };
    let argv = x.argv_resuming(&job, Some("01a2-thread"));
    assert_eq!(&argv[..2], ["sh", "-c"]);
    assert!(argv[2].contains("wire_api = \"responses\"") && argv[2].contains("exec \"$program\" exec --json"), "{}", argv[2]);
    assert_eq!(&argv[4..], ["cheap", "/opt/codex", "resume", "01a2-thread"], "model, program, then the resume before the prompt (stdin)");
}
