// A real MCP client (the official TypeScript SDK) driving REEF's MCP server for the tests in
// crates/reef-cli/tests/it/mcp.rs. Nothing here knows REEF's internals: it speaks MCP only.
//
//   node client.mjs agent                      act as a CLI agent REEF started (reads REEF_MCP_CONFIG)
//   node client.mjs stdio <reef> '<steps>'     start `<reef> mcp` (token from REEF_MCP_TOKEN), run steps
//   node client.mjs http <url> <token> '<steps>'  the same over streamable HTTP with a bearer token
//
// Steps: [{"list_tools":true} | {"list_resources":true} | {"read":"reef://task"} | {"tool":"name","args":{…}}]
// Prints one JSON line: {"results":[…]} with each step's outcome.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { readFileSync, appendFileSync } from "node:fs";

function parse(result) {
  if (result.structuredContent !== undefined) return result.structuredContent;
  const text = (result.content || []).map((c) => c.text || "").join("");
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function step(client, s) {
  try {
    if (s.list_tools) {
      const r = await client.listTools();
      return { ok: true, value: r.tools.map((t) => ({ name: t.name, readOnly: t.annotations?.readOnlyHint ?? false, required: t.inputSchema?.required ?? [] })) };
    }
    if (s.list_resources) {
      const r = await client.listResources();
      return { ok: true, value: r.resources.map((x) => x.uri) };
    }
    if (s.read) {
      const r = await client.readResource({ uri: s.read });
      return { ok: true, value: JSON.parse(r.contents[0].text) };
    }
    const r = await client.callTool({ name: s.tool, arguments: s.args || {} });
    return { ok: !r.isError, value: parse(r) };
  } catch (e) {
    return { ok: false, protocol_error: String(e && e.message ? e.message : e) };
  }
}

async function runSteps(transport, steps) {
  const client = new Client({ name: "reef-test-client", version: "1.0.0" });
  try {
    await client.connect(transport);
  } catch (e) {
    return [{ ok: false, connect_error: String(e && e.message ? e.message : e), status: e && e.code }];
  }
  const results = [];
  for (const s of steps) results.push(await step(client, s));
  await client.close();
  return results;
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === "stdio") {
  const [reef, steps] = rest;
  const env = Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined));
  const t = new StdioClientTransport({ command: reef, args: ["mcp"], env, stderr: "inherit" });
  console.log(JSON.stringify({ results: await runSteps(t, JSON.parse(steps)) }));
} else if (mode === "http") {
  const [url, token, steps] = rest;
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const t = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  console.log(JSON.stringify({ results: await runSteps(t, JSON.parse(steps)) }));
} else if (mode === "agent") {
  // What Claude Code does with --mcp-config: start the server the config names, with its env.
  const cfg = JSON.parse(readFileSync(process.env.REEF_MCP_CONFIG, "utf8")).mcpServers.reef;
  const t = new StdioClientTransport({ command: cfg.command, args: cfg.args, env: cfg.env, stderr: "inherit" });
  const client = new Client({ name: "reef-test-agent", version: "1.0.0" });
  await client.connect(t);
  const log = (what, v) => appendFileSync(process.env.REEF_TEST_OUT, JSON.stringify({ what, attempt: process.env.REEF_ATTEMPT, ...v }) + "\n");
  const tools = (await client.listTools()).tools.map((x) => x.name);
  const me = parse(await client.callTool({ name: "task_status", arguments: {} }));
  log("start", { tools, status: me.status, approvals: me.approvals.map((a) => a.status), comments: me.comments.map((c) => c.body) });
  const answered = me.comments.map((c) => c.body).find((b) => b.startsWith("[answer] "));
  if (answered) {
    await client.close();
    console.log(JSON.stringify({ result: "went with the operator's answer: " + answered.slice(9) }));
  } else if (process.env.REEF_TEST_ASK) {
    // Ask the operator, then take a while to wrap up (the operator may answer meanwhile).
    const ticket = parse(await client.callTool({ name: "ask_operator", arguments: { question: "Launch on Monday or Thursday?" } }));
    log("asked", { ticket, pid: process.pid });
    await new Promise((r) => setTimeout(r, Number(process.env.REEF_TEST_ASK) * 1000));
    await client.close();
    console.log(JSON.stringify({ result: "asked the operator" }));
  } else if (me.approvals.some((a) => a.status === "approved")) {
    await client.callTool({ name: "report_progress", arguments: { message: "approved: sending the launch email", percent: 90 } });
    await client.close();
    console.log(JSON.stringify({ result: "sent the launch email after approval" }));
  } else {
    const sub = parse(await client.callTool({ name: "create_task", arguments: { title: "Draft the launch email", description: "Short, friendly, one link.", kind: "draft", budget_usd: 0.25 } }));
    const found = parse(await client.callTool({ name: "search_memory", arguments: { query: "launch email tone for invoicely customers", k: 3 } }));
    await client.callTool({ name: "report_progress", arguments: { message: "split the work; drafting", percent: 30 } });
    const ticket = parse(await client.callTool({ name: "request_approval", arguments: { action_class: "customer_message", summary: "Send the launch email to 212 Invoicely customers" } }));
    log("asked", { sub, hits: found.hits.map((h) => h.content), ticket, pid: process.pid });
    // An agent that ignores "end your turn": REEF must stop it after the grace and park the task.
    if (process.env.REEF_TEST_STUBBORN) await new Promise(() => setInterval(() => {}, 1000));
    await client.close();
    console.log(JSON.stringify({ result: "waiting for approval " + ticket.ticket }));
  }
} else {
  console.error("usage: client.mjs agent | stdio <reef> <steps> | http <url> <token> <steps>");
  process.exit(2);
}
