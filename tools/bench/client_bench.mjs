// The direct client in Chromium against a loopback nginx (docs/CLIENT.md): the time to
// open a pack, per-query latency, and requests and bytes per query (from nginx's access
// log and the page's status line). Usage:
//   node tools/bench/client_bench.mjs PACK_DIR [--queries N] [--probe P] [--k K] [--words W]
//        [--pubkey KEY.pub] [--runs R]
// PACK_DIR needs pack.digests (annpack build writes it);
// with --pubkey the page checks its signature (direct.json). Queries are W-vocabulary
// words "wN" (tools/bench/gen_csv.py's), typed into the page as a user would (Enter).
// Each of R runs (default 3) is a fresh browser profile: page load, open, N + 1 queries
// (the first reported apart). Prints JSON: per run and the medians over runs, with the CPU
// and the load average before and after (the machine may be shared).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const { chromium } = await import(path.join(root, 'tests/browser/node_modules/playwright-core/index.mjs'));
const { startNginx } = await import(path.join(root, 'web/test/nginx.mjs'));

const args = process.argv.slice(2);
const packDir = path.resolve(args[0]);
const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : def; };
const nq = opt('queries', 30);
const probe = opt('probe', 8);
const k = opt('k', 10);
const words = opt('words', 2000);
const runs = opt('runs', 3);

const site = fs.mkdtempSync(path.join(os.tmpdir(), 'annpack-bench-'));
fs.cpSync(path.join(root, 'web', 'dist'), site, { recursive: true });
fs.symlinkSync(packDir, path.join(site, 'pack'));
const pi = args.indexOf('--pubkey');
if (pi >= 0) fs.writeFileSync(path.join(site, 'direct.json'), JSON.stringify({ publicKey: fs.readFileSync(args[pi + 1], 'utf8') }));
const host = await startNginx(site);
const log = () => host.requests().filter((r) => r.uri && r.uri.startsWith('/pack/'));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : null; };
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * p))]; };
let x = 12345;
const rnd = () => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x / 2 ** 32; };
const queries = Array.from({ length: nq + 1 }, () => Array.from({ length: 3 }, () => `w${Math.floor(rnd() * words)}`).join(' '));

// Waits until nginx has logged at least n lines after n0 and nothing new for 300 ms.
async function settle(n0, n = 0) {
  let last = -1;
  for (let t = 0, still = 0; t < 5000 && still < 300; t += 50) {
    const got = log().length - n0;
    still = got === last && got >= n ? still + 50 : 0;
    last = got;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function run() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'annpack-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const out = {};
  try {
    const page = browser.pages()[0] || await browser.newPage();
    const n0 = log().length;
    const t0 = Date.now();
    // (the log's lines for the open are read after the first query is typed: nginx writes
    // a line once its response is out, so they are all there by then)
    await page.goto(`${host.url}?pack=pack/&k=${k}&probe=${probe}`);
    await page.waitForFunction(() => document.querySelector('[data-fact="n_vectors"]').textContent !== '…' || !document.getElementById('error').hidden, null, { timeout: 120000 });
    out.open_ms_wall = Date.now() - t0; // page load + wasm + open
    const banner = await page.isHidden('#error') ? null : await page.textContent('#error');
    if (banner) throw new Error(banner);
    await settle(n0);
    const opened = log().slice(n0);
    out.open_requests = opened.length;
    out.open_files = opened.map((r) => `${r.uri.split('/').pop()} ${r.range || ''} ${r.status}`);
    out.open_bytes = opened.reduce((s, r) => s + r.bytes, 0);
    out.n_vectors = await page.textContent('[data-fact="n_vectors"]');
    out.signature = await page.textContent('[data-fact="signature"]');
    const rows = [];
    for (const q of queries) {
      const m0 = log().length;
      const w0 = Date.now();
      // Set the text without an input event (no debounced search racing the Enter).
      await page.$eval('#q', (el, t) => { el.value = t; }, q);
      await page.press('#q', 'Enter');
      await page.waitForFunction((t) => document.getElementById('results').dataset.query === t || !document.getElementById('error').hidden, q, { timeout: 60000 });
      const wall = Date.now() - w0;
      const st = await page.textContent('#status');
      const said = Number((/(\d+) requests/.exec(st) || [])[1] || 0);
      await settle(m0, said);
      const reqs = log().slice(m0);
      const took = Number((/in ([\d.]+) ms/.exec(st) || [])[1]);
      const rounds = Number((/in (\d+) rounds/.exec(st) || [])[1]);
      rows.push({ q, wall, took, rounds, requests: reqs.length, status: st, files: reqs.map((r) => `${r.uri.split('/').pop()} ${r.range} ${r.status}`), bytes: reqs.reduce((s, r) => s + r.bytes, 0),
        list_ranges: reqs.filter((r) => r.uri.endsWith('pack.annpack')).length });
    }
    const first = rows.shift();
    out.first_query = first;
    out.second_query = rows[0];
    for (const r of rows) delete r.files;
    out.per_query = {
      took_ms_p50: median(rows.map((r) => r.took)), took_ms_p90: pct(rows.map((r) => r.took), 0.9),
      wall_ms_p50: median(rows.map((r) => r.wall)),
      requests_p50: median(rows.map((r) => r.requests)), requests_max: Math.max(...rows.map((r) => r.requests)),
      rounds_p50: median(rows.map((r) => r.rounds)), rounds_max: Math.max(...rows.map((r) => r.rounds)),
      list_ranges_p50: median(rows.map((r) => r.list_ranges)),
      bytes_p50: median(rows.map((r) => r.bytes)), bytes_max: Math.max(...rows.map((r) => r.bytes)),
    };
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  return out;
}

const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1];
const result = { pack: packDir, probe, k, queries: nq, cpu, cores: os.cpus().length, load_before: os.loadavg(), runs: [] };
try {
  for (let r = 0; r < runs; r++) result.runs.push(await run());
} finally {
  await host.stop();
  fs.rmSync(site, { recursive: true, force: true });
}
result.load_after = os.loadavg();
const med = (f) => median(result.runs.map(f));
result.median = {
  open_ms_wall: med((o) => o.open_ms_wall), open_requests: med((o) => o.open_requests), open_bytes: med((o) => o.open_bytes),
  first_query_wall_ms: med((o) => o.first_query.wall), first_query_requests: med((o) => o.first_query.requests),
  first_query_bytes: med((o) => o.first_query.bytes),
  took_ms_p50: med((o) => o.per_query.took_ms_p50), took_ms_p90: med((o) => o.per_query.took_ms_p90),
  wall_ms_p50: med((o) => o.per_query.wall_ms_p50), requests_p50: med((o) => o.per_query.requests_p50),
  rounds_p50: med((o) => o.per_query.rounds_p50), bytes_p50: med((o) => o.per_query.bytes_p50),
};
result.wasm_bytes = fs.statSync(path.join(root, 'web', 'dist', 'annpack.wasm')).size;
result.bundle_bytes = fs.readdirSync(path.join(root, 'web', 'dist')).filter((f) => /^app-.*\.js$/.test(f)).map((f) => fs.statSync(path.join(root, 'web', 'dist', f)).size)[0];
console.log(JSON.stringify(result, null, 1));
