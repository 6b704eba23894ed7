// The window at a large change (run by scripts/bench-diff.sh; a benchmark, not a test): from the
// click on a task to its change's file list on screen, through "Open the diff", p50/p95 over runs,
// for a change of thousands of files (`reef bench diff --seed`) against the demo's 5-file change
// in the same run and the same window.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import { remote } from "webdriverio";

const [app, seedFile, runsArg] = process.argv.slice(2);
const seed = JSON.parse(readFileSync(seedFile, "utf8"));
const runs = Number(runsArg ?? 7);
const port = await new Promise((ok) => { const s = net.createServer(); s.listen(0, () => { const p = s.address().port; s.close(() => ok(p)); }); });
const driver = spawn("WebKitWebDriver", [`--port=${port}`], { stdio: "ignore", env: { ...process.env, TAURI_WEBVIEW_AUTOMATION: "true" } });
for (let i = 0; i < 150; i++) {
  const up = await new Promise((ok) => { const c = net.connect(port, "127.0.0.1", () => { c.end(); ok(true); }); c.on("error", () => ok(false)); });
  if (up) break;
  await new Promise((r) => setTimeout(r, 100));
}
const browser = await remote({ hostname: "127.0.0.1", port, logLevel: "error", capabilities: { "webkitgtk:browserOptions": { binary: app, args: [] } } });
try {
  await browser.$("h1=Overview").waitForExist({ timeout: 30000 });
  await (await browser.$('button[data-view="tasks"]')).click();
  const demo = seed.demo_task;
  await browser.$(`[data-task="${demo}"]`).waitForExist({ timeout: 30000 });
  // One timed open: select the task, wait for its change, open the diff, wait for the file rows
  // to be painted; then close it and select the other task, so every run starts from nothing.
  const once = (id, other) => browser.executeAsync((id, other, done) => {
    const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
    const until = async (sel) => { while (!document.querySelector(sel)) await frame(); };
    (async () => {
      const t0 = performance.now();
      document.querySelector(`[data-task="${id}"]`).click();
      await until(`[data-change="${id}"] [data-open-diff]`);
      const t1 = performance.now();
      document.querySelector(`[data-change="${id}"] [data-open-diff]`).click();
      await until("[data-file-list] [data-file]");
      await frame();
      const t2 = performance.now();
      const rows = document.querySelectorAll("[data-file-list] [data-file]").length;
      document.querySelector("[data-close-diff]").click();
      document.querySelector(`[data-task="${other}"]`).click();
      await until(`[data-change="${other}"]`);
      done({ change: t1 - t0, list: t2 - t1, total: t2 - t0, rows, files: document.querySelector("[data-file-filter]") ? null : null });
    })();
  }, id, other);
  const measure = async (id, other) => {
    await once(id, other); // warm: code paths compiled, the view mounted once
    const r = [];
    for (let i = 0; i < runs; i++) r.push(await once(id, other));
    return r;
  };
  const pct = (v, p) => { const s = [...v].sort((a, b) => a - b); return s[Math.round((s.length - 1) * p)]; };
  const big = await measure(seed.task, demo);
  const small = await measure(demo, seed.task);
  const line = (name, r) => `${name}: click → file list on screen p50 ${pct(r.map((x) => x.total), 0.5).toFixed(0)} ms, p95 ${pct(r.map((x) => x.total), 0.95).toFixed(0)} ms (change read ${pct(r.map((x) => x.change), 0.5).toFixed(0)} ms + list drawn ${pct(r.map((x) => x.list), 0.5).toFixed(0)} ms; ${r[0].rows} rows drawn)`;
  console.log(line(`a change of ${seed.files} files, ${seed.lines} lines`, big));
  console.log(line("the demo's change of 5 files (baseline, same run)", small));
  console.log(`ratio p50: ${(pct(big.map((x) => x.total), 0.5) / pct(small.map((x) => x.total), 0.5)).toFixed(2)}× · target: under 1,000 ms for the large one`);
} finally {
  await browser.deleteSession().catch(() => {});
  driver.kill();
}
