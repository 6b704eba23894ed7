//! A hostile CLI agent, started by a real `reef serve` under bubblewrap, tries to reach what it
//! must not: the store, the config, REEF's data dir, the operator's home, a service on localhost,
//! the store's address in its environment, a path outside its task. Each attempt must fail, while
//! its own working directory and REEF's tools (over the MCP socket, with its task token) work.

use super::common::*;
use std::time::Duration;

/// Every probe the agent runs, and whether a contained agent may succeed at it.
const PROBES: [(&str, bool); 12] = [
    ("read_store", false),
    ("list_data_dir", false),
    ("write_data_dir", false),
    ("read_config", false),
    ("read_operator_home", false),
    ("read_operator_key", false),
    ("write_outside", false),
    ("env_names_store", false),
    ("reach_local_service", false),
    ("write_own_workdir", true),
    ("mcp_tool_call", true),
    ("home_is_its_own", true),
];

/// The attacker's script: it knows every path (an agent can read its own prompt, guess the
/// defaults); it prints `name=reached` or `name=blocked` for each probe.
fn hostile_script(data: &std::path::Path, outside: &std::path::Path, key: &std::path::Path, port: u16) -> String {
    let d = data.display();
    let o = outside.display();
    let k = key.display();
    format!(
        r#"r() {{ if sh -c "$2" >/dev/null 2>&1; then echo "$1=reached"; else echo "$1=blocked"; fi; }}
r read_store "cat '{d}/reef.db' | head -c 16 | grep -q SQLite"
r list_data_dir "ls '{d}' | grep -q ."
r write_data_dir "echo pwned > '{d}/pwned'"
r read_config "cat '{d}/config.toml' | grep -q ."
r read_operator_home "ls -A /root /home 2>/dev/null | grep -q ."
r read_operator_key "cat '{k}' | grep -q PRIVATE"
r write_outside "echo escaped > '{o}/escaped'"
r env_names_store "env | grep -q -e REEF_DATA_DIR -e REEF_MONGODB_URI -e REEF_CONFIG"
r reach_local_service "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 2)'"
r write_own_workdir "echo mine > ./mine && test -s ./mine"
r home_is_its_own "test -w \"$HOME\" && case \"$HOME\" in /root|/root/*) exit 1;; esac"
r mcp_tool_call "python3 -c '
import json, os, subprocess
cfg = json.load(open(os.environ[\"REEF_MCP_CONFIG\"]))[\"mcpServers\"][\"reef\"]
env = dict(os.environ, **cfg[\"env\"])
p = subprocess.Popen([cfg[\"command\"], *cfg[\"args\"]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
def send(m): p.stdin.write(json.dumps(m) + \"\\n\"); p.stdin.flush()
def answer(i):
    while True:
        m = json.loads(p.stdout.readline())
        if m.get(\"id\") == i: return m
send({{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"initialize\", \"params\": {{\"protocolVersion\": \"2025-06-18\", \"capabilities\": {{}}, \"clientInfo\": {{\"name\": \"hostile\", \"version\": \"1\"}}}}}})
answer(1)
send({{\"jsonrpc\": \"2.0\", \"method\": \"notifications/initialized\"}})
send({{\"jsonrpc\": \"2.0\", \"id\": 2, \"method\": \"tools/call\", \"params\": {{\"name\": \"report_progress\", \"arguments\": {{\"message\": \"hello from inside the sandbox\"}}}}}})
r = answer(2)
p.stdin.close(); p.wait(10)
assert not r[\"result\"].get(\"isError\"), r
'"
"#
    )
}

/// Each probe's outcome in the agent's output against what it should be: the table, and the
/// probes that went the wrong way.
fn judge(result: &str, heading: &str) -> (String, Vec<&'static str>) {
    let mut table = format!("\n{heading:<22} expected   outcome\n");
    let mut wrong = vec![];
    for (probe, allowed) in PROBES {
        let outcome = result.lines().find_map(|l| l.strip_prefix(&format!("{probe}="))).unwrap_or("missing");
        let expected = if allowed { "reached" } else { "blocked" };
        table.push_str(&format!("{probe:<22} {expected:<10} {outcome}\n"));
        if outcome != expected {
            wrong.push(probe);
        }
    }
    (table, wrong)
}

#[test]
fn a_contained_agent_reaches_its_task_and_reef_s_tools_and_nothing_else() {
    let e = Env::new();
    let outside = tempfile::tempdir().unwrap();
    // A key of the operator's, somewhere REEF's user can read.
    let key = outside.path().join("id_ed25519");
    std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
    // A local service the agent must not reach (stands for the store, the gateway's admin API).
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = service.local_addr().unwrap().port();
    e.write_config(&format!(
        "[engine]\nlease_seconds = 5\n[memory]\nembedder = \"hashing\"\n\
         [[executors]]\nname = \"hostile\"\nkinds = [\"probe\"]\ncommand = [\"sh\", \"-c\", {:?}]\ntimeout_seconds = 120\n",
        hostile_script(e.dir.path(), outside.path(), &key, port)
    ));
    e.with_prices();
    let status = e.json(&["status"]);
    assert_eq!(status["sandbox"]["mode"], "bubblewrap", "{status}");
    assert_eq!(status["sandbox"]["usable"], true, "bubblewrap must work on this machine (scripts/test.sh installs it): {status}");
    let id = e.add_task("Probe the walls", &["--type", "probe", "--agent", "rex"]);
    let mut serve = e.serve("both", &[]);
    let done = wait_until(Duration::from_secs(90), || {
        let t = e.json(&["task", "show", &id])["task"].clone();
        t["status"] == "done" || t["status"] == "failed"
    });
    sigterm(&mut serve);
    let task = e.json(&["task", "show", &id])["task"].clone();
    assert!(done, "{task}");
    let result = task["result"].as_str().unwrap_or_default().to_string();

    let (table, wrong) = judge(&result, "probe");
    println!("{table}");
    assert!(wrong.is_empty(), "containment failed for {wrong:?}:{table}\nfull output:\n{result}");
    assert!(!e.dir.path().join("pwned").exists() && !outside.path().join("escaped").exists());
    let progress = e.json(&["audit", "--subject", &id, "--action", "mcp.report_progress"])["audit"].as_array().cloned().unwrap();
    assert_eq!(progress.len(), 1, "the tool call over the socket is audited, as the agent: {progress:?}");
    assert_eq!(progress[0]["actor"], "agent:rex");
    // The work dir lives outside the data dir, named by the task.
    assert!(e.work.path().join(&id).join("mine").exists(), "the agent wrote into its own task directory");
    assert!(!e.dir.path().join("work").exists(), "no working directory inside the data dir");

    // The control: the same agent with the sandbox turned off reaches what the probes look for,
    // so a "blocked" above is the sandbox's doing, not a probe that cannot succeed.
    e.write_config(&format!(
        "[sandbox]\nmode = \"off\"\n[engine]\nlease_seconds = 5\n[memory]\nembedder = \"hashing\"\n\
         [[executors]]\nname = \"hostile\"\nkinds = [\"probe\"]\ncommand = [\"sh\", \"-c\", {:?}]\ntimeout_seconds = 120\n",
        hostile_script(e.dir.path(), outside.path(), &key, port)
    ));
    let id = e.add_task("Probe again, uncontained", &["--type", "probe", "--agent", "rex"]);
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(90), || e.json(&["task", "show", &id])["task"]["status"] == "done"));
    sigterm(&mut serve);
    let result = e.json(&["task", "show", &id])["task"]["result"].as_str().unwrap_or_default().to_string();
    for probe in ["read_store", "write_data_dir", "read_operator_key", "write_outside", "reach_local_service", "mcp_tool_call"] {
        assert!(result.contains(&format!("{probe}=reached")), "uncontained, {probe} succeeds: {result}");
    }
    drop(service);
}

#[test]
fn where_the_sandbox_cannot_be_built_cli_agents_are_refused_unless_the_operator_allowed_it() {
    let e = Env::new();
    e.write_config(
        "[engine]\nlease_seconds = 2\nmax_attempts = 1\n[[executors]]\nname = \"note\"\nkinds = [\"note\"]\ncommand = [\"sh\", \"-c\", \"echo ran unsandboxed\"]\n",
    );
    e.with_prices();
    // No bwrap on PATH: only the system's own directories, and a bwrap-less copy of them.
    let bin = tempfile::tempdir().unwrap();
    for tool in ["sh", "echo", "cat", "true"] {
        let from = std::path::Path::new("/usr/bin").join(tool);
        if from.exists() {
            std::os::unix::fs::symlink(&from, bin.path().join(tool)).unwrap();
        }
    }
    let path = bin.path().display().to_string();
    let status = e.json_with_path(&path, &["status"]);
    assert_eq!(status["sandbox"]["usable"], false, "{status}");
    assert!(status["sandbox"]["detail"].as_str().unwrap().contains("refused"), "{status}");
    let id = e.add_task("Note it", &["--type", "note", "--agent", "rex"]);
    let mut serve = e.serve("both", &[("PATH", &path)]);
    assert!(wait_until(Duration::from_secs(30), || e.json(&["task", "show", &id])["task"]["status"] == "failed"));
    sigterm(&mut serve);
    let t = e.json(&["task", "show", &id])["task"].clone();
    assert!(t["error"].as_str().unwrap_or_default().contains("bubblewrap"), "the refusal says why: {t}");
    assert!(t["result"].is_null(), "the agent never ran: {t}");

    // The operator's explicit word allows it, and status says so.
    e.write_config(
        "[sandbox]\nmode = \"off\"\n[engine]\nlease_seconds = 2\n[[executors]]\nname = \"note\"\nkinds = [\"note\"]\ncommand = [\"sh\", \"-c\", \"echo ran unsandboxed\"]\n",
    );
    let status = e.json_with_path(&path, &["status"]);
    assert!(status["sandbox"]["detail"].as_str().unwrap().starts_with("off"), "{status}");
    let id = e.add_task("Note it again", &["--type", "note", "--agent", "rex"]);
    let mut serve = e.serve("both", &[("PATH", &path)]);
    assert!(wait_until(Duration::from_secs(30), || e.json(&["task", "show", &id])["task"]["status"] == "done"));
    sigterm(&mut serve);
}

#[test]
fn a_secret_an_agent_prints_reports_or_writes_is_never_stored_so_never_sent_in_clear() {
    let e = Env::new();
    let key = "sk-test-0123456789abcdef-provider";
    // The agent is handed a provider key (pass_env) and spills it every way it can: its output
    // (streamed as events), its result, a comment through REEF's tools.
    let script = r#"echo "debug: using $FAKE_PROVIDER_API_KEY"
python3 -c '
import json, os, subprocess
cfg = json.load(open(os.environ["REEF_MCP_CONFIG"]))["mcpServers"]["reef"]
p = subprocess.Popen([cfg["command"], *cfg["args"]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ, **cfg["env"]), text=True)
def send(m): p.stdin.write(json.dumps(m) + "\n"); p.stdin.flush()
def answer(i):
    while True:
        m = json.loads(p.stdout.readline())
        if m.get("id") == i: return m
send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "leaky", "version": "1"}}})
answer(1)
send({"jsonrpc": "2.0", "method": "notifications/initialized"})
send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "add_comment", "arguments": {"body": "the key is " + os.environ["FAKE_PROVIDER_API_KEY"]}}})
answer(2)
p.stdin.close(); p.wait(10)
'
echo "{\"result\": \"done; key $FAKE_PROVIDER_API_KEY\"}""#;
    e.write_config(&format!(
        "[engine]\nlease_seconds = 5\n[memory]\nembedder = \"hashing\"\n\
         [[executors]]\nname = \"leaky\"\nkinds = [\"leak\"]\ncommand = [\"sh\", \"-c\", {script:?}]\npass_env = [\"FAKE_PROVIDER_API_KEY\"]\n"
    ));
    e.with_prices();
    let id = e.add_task("Leak it", &["--type", "leak", "--agent", "rex"]);
    let mut serve = e.serve("both", &[("FAKE_PROVIDER_API_KEY", key)]);
    assert!(
        wait_until(Duration::from_secs(60), || e.json(&["task", "show", &id])["task"]["status"] == "done"),
        "{}",
        e.json(&["task", "show", &id])
    );
    sigterm(&mut serve);
    let t = e.json(&["task", "show", &id])["task"].clone();
    assert!(t["result"].as_str().unwrap().contains("[redacted FAKE_PROVIDER_API_KEY]"), "{t}");
    let comments = t["comments"].to_string();
    assert!(comments.contains("the key is [redacted FAKE_PROVIDER_API_KEY]"), "{comments}");
    let events = e.json(&["events", "--subject", &id, "--limit", "200"]).to_string();
    assert!(events.contains("debug: using [redacted FAKE_PROVIDER_API_KEY]"), "{events}");
    // Nowhere on disk, in any form: the store, its WAL, anything else in the data dir.
    for entry in std::fs::read_dir(e.dir.path()).unwrap().flatten() {
        if entry.path().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()), "{} holds the key in clear", entry.path().display());
        }
    }
}

#[test]
fn an_agent_in_a_worktree_commits_but_cannot_make_the_host_s_git_run_its_code() {
    let e = Env::new();
    let repo = e.fx().join("product");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| crate::common::git_in(&repo, args);
    git(&["init", "-q"]);
    std::fs::write(repo.join("README"), "product\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-qm", "init"]);
    // A hook already in the repository (planted earlier, by anyone): REEF's own git must not run it.
    let ran = e.fx().join("hook-ran");
    let hook = repo.join(".git/hooks/post-checkout");
    std::fs::write(&hook, format!("#!/bin/sh\ntouch {}\n", ran.display())).unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The first attempt probes, commits, then rewrites its worktree's `.git` file to name the
    // repository's own `.git` and fails; the retry probes again through that forged file (REEF
    // must not bind what the file names).
    let script = r#"r() { if sh -c "$2" >/dev/null 2>&1; then echo "$1=reached"; else echo "$1=blocked"; fi; }
if [ ! -f first.txt ]; then
  common="$(cd "$(git rev-parse --git-common-dir)" && pwd)"
  { r plant_hook "printf '#!/bin/sh\necho pwned\n' > '$common/hooks/post-checkout'"
    r set_hooks_path "git config core.hooksPath /tmp"
    r commit "git -c user.email=a@b -c user.name=agent commit --allow-empty -qm agent-was-here"; } > first.txt
  printf 'gitdir: %s\n' "$common" > .git
  exit 1
fi
cat first.txt
common="$(git rev-parse --git-common-dir)"
r forged_plant_hook "printf '#!/bin/sh\necho pwned\n' > '$common/hooks/post-checkout'"
r forged_config "git config core.hooksPath /tmp"
"#;
    e.write_config(&format!(
        "[engine]\nlease_seconds = 5\n[[executors]]\nname = \"builder\"\nkinds = [\"build\"]\ncommand = [\"sh\", \"-c\", {script:?}]\n"
    ));
    e.with_prices();
    let id = e.json(&["task", "add", "Build it", "--type", "build", "--agent", "rex", "--repo", repo.to_str().unwrap()])["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut serve = e.serve("both", &[]);
    assert!(
        wait_until(Duration::from_secs(60), || e.json(&["task", "show", &id])["task"]["status"] == "done"),
        "{}",
        e.json(&["task", "show", &id])
    );
    sigterm(&mut serve);
    let result = e.json(&["task", "show", &id])["task"]["result"].as_str().unwrap_or_default().to_string();
    for (probe, want) in [
        ("plant_hook", "blocked"),
        ("set_hooks_path", "blocked"),
        ("commit", "reached"),
        ("forged_plant_hook", "blocked"),
        ("forged_config", "blocked"),
    ] {
        assert!(result.contains(&format!("{probe}={want}")), "{probe} should be {want}: {result}");
    }
    assert!(!ran.exists(), "the repository's hook ran on the host when REEF made the worktree");
    assert!(std::fs::read_to_string(&hook).unwrap().contains("touch"), "the hook the agent tried to replace is unchanged");
    assert!(git(&["log", "--all", "--format=%s"]).contains("agent-was-here"), "the agent's commit is in the repository");
}

/// `nobody`: REEF and its agents as a user with no privileges at all.
const NOBODY: u32 = 65534;

#[test]
fn as_an_unprivileged_user_the_sandbox_alone_keeps_the_agent_from_reefs_files() {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0) != 0 {
        // Not root: every containment test in this file already runs as an unprivileged user.
        eprintln!("SKIPPED as_an_unprivileged_user…: this run is unprivileged already (the other containment tests are that case)");
        return;
    }
    // Everything REEF's user owns belongs to `nobody`; the operator's key is readable by anyone,
    // so neither file modes nor root's home stand between the agent and them: only the sandbox.
    let root = tempfile::tempdir().unwrap();
    let (bin, data, work, home, outside) = (
        root.path().join("bin"),
        root.path().join("data"),
        root.path().join("work"),
        root.path().join("home"),
        root.path().join("outside"),
    );
    for d in [&bin, &data, &work, &home, &outside] {
        std::fs::create_dir_all(d).unwrap();
    }
    let reef = bin.join("reef");
    std::fs::copy(env!("CARGO_BIN_EXE_reef"), &reef).unwrap();
    let key = outside.join("id_ed25519");
    std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    for (p, mode) in [(root.path(), 0o755), (&bin, 0o755), (&reef, 0o755), (&outside, 0o777), (&key, 0o644)] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    for d in [&data, &work, &home] {
        std::os::unix::fs::chown(d, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = service.local_addr().unwrap().port();
    let as_nobody = |args: &[&str]| {
        let mut c = std::process::Command::new("setpriv");
        c.args([format!("--reuid={NOBODY}"), format!("--regid={NOBODY}"), "--clear-groups".into(), "--".into()])
            .arg(&reef)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &home)
            .env("REEF_DATA_DIR", &data)
            .env("REEF_WORK_DIR", &work)
            .env("REEF_CONFIG", data.join("config.toml"))
            .env("HOSTNAME", "testhost")
            .env("USER", "nobody");
        c
    };
    let json = |args: &[&str]| -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = as_nobody(&a).output().unwrap();
        assert!(out.status.success(), "reef {args:?} as nobody: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let config = |mode: &str| {
        format!(
            "[sandbox]\nmode = {mode:?}\n[engine]\nlease_seconds = 5\n[memory]\nembedder = \"hashing\"\n\
             [[executors]]\nname = \"hostile\"\nkinds = [\"probe\"]\ncommand = [\"sh\", \"-c\", {:?}]\ntimeout_seconds = 120\n",
            hostile_script(&data, &outside, &key, port)
        )
    };
    let write_config = |text: String| {
        std::fs::write(data.join("config.toml"), text).unwrap();
        std::fs::write(
            data.join("litellm-config.yaml"),
            std::fs::read_to_string(super::common::root().join("litellm-config.yaml")).unwrap(),
        )
        .unwrap();
        for f in ["config.toml", "litellm-config.yaml"] {
            std::os::unix::fs::chown(data.join(f), Some(NOBODY), Some(NOBODY)).unwrap();
        }
    };
    let run = |title: &str| -> String {
        let id = json(&["task", "add", title, "--type", "probe", "--agent", "rex"])["_id"].as_str().unwrap().to_string();
        let log = std::fs::File::create(root.path().join(format!("serve-{}.log", title.len()))).unwrap();
        let mut serve = as_nobody(&["serve", "--role", "both"])
            .env("REEF_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let done = wait_until(Duration::from_secs(90), || {
            matches!(json(&["task", "show", &id])["task"]["status"].as_str(), Some("done" | "failed"))
        });
        sigterm(&mut serve);
        let task = json(&["task", "show", &id])["task"].clone();
        assert!(done && task["status"] == "done", "{task}");
        task["result"].as_str().unwrap_or_default().to_string()
    };

    write_config(config("bubblewrap"));
    let status = json(&["status"]);
    assert_eq!(status["sandbox"]["usable"], true, "bubblewrap works for an unprivileged user (user namespaces): {status}");
    let result = run("Probe the walls as nobody");
    let (table, wrong) = judge(&result, "probe (as nobody)");
    println!("{table}");
    assert!(wrong.is_empty(), "containment as nobody failed for {wrong:?}:{table}\nfull output:\n{result}");

    // The control, as the same user without the sandbox: the store, the data dir and the key
    // are all within reach by file modes, so "blocked" above is the sandbox's doing.
    write_config(config("off"));
    let result = run("Probe again as nobody, uncontained");
    for probe in ["read_store", "write_data_dir", "read_operator_key", "write_outside", "reach_local_service"] {
        assert!(result.contains(&format!("{probe}=reached")), "uncontained as nobody, {probe} succeeds: {result}");
    }
    drop(service);
}

#[test]
fn a_product_secret_kept_in_the_keyring_reaches_that_products_agents_and_is_redacted() {
    let e = Env::new();
    let Some(k) = crate::common::Keyring::start() else { return };
    e.set_env("DBUS_SESSION_BUS_ADDRESS", &k.bus);
    e.set_env("REEF_KEYRING_SERVICE", "reef-it-products");
    e.write_config(
        "[engine]\nlease_seconds = 5\n[memory]\nembedder = \"hashing\"\n\
         [[executors]]\nname = \"show\"\nkinds = [\"show\"]\ncommand = [\"sh\", \"-c\", \"echo \\\"key=$API_KEY\\\"\"]\n",
    );
    e.with_prices();
    let value = "alpha-keyring-secret-0123456789";
    let mut set = e.cmd();
    set.args(["secret", "set", "API_KEY", "--product", "alpha"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null());
    let mut child = set.spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(format!("{value}\n").as_bytes()).unwrap();
    }
    assert!(child.wait().unwrap().success(), "reef secret set --product");
    let mine = e.json(&["task", "add", "Use the key", "--type", "show", "--agent", "rex", "--product", "alpha"])["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = e.json(&["task", "add", "Try the key", "--type", "show", "--agent", "rex", "--product", "bravo"])["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut serve = e.serve("both", &[]);
    let done = |id: &str| e.json(&["task", "show", id])["task"]["status"] == "done";
    let finished = wait_until(Duration::from_secs(60), || done(&mine) && done(&other));
    sigterm(&mut serve);
    assert!(finished, "{:?}", e.tasks());
    let result = |id: &str| e.json(&["task", "show", id])["task"]["result"].as_str().unwrap_or_default().to_string();
    // Alpha's agent printed the value it was given: REEF stored it redacted, by its name.
    assert_eq!(result(&mine).trim(), "key=[redacted REEF_PRODUCT_ALPHA_API_KEY]");
    assert_eq!(result(&other).trim(), "key=", "bravo's agent gets nothing of alpha's");
    for entry in std::fs::read_dir(e.dir.path()).unwrap().flatten().filter(|d| d.path().is_file()) {
        let bytes = std::fs::read(entry.path()).unwrap();
        assert!(!bytes.windows(value.len()).any(|w| w == value.as_bytes()), "in clear in {:?}", entry.path());
    }
}
