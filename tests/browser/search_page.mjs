// Drives the annpack search page in headless Debian Chromium (playwright-core, no browser
// download). Usage:
//   node search_page.mjs URL OUTDIR SPEC_JSON
// SPEC_JSON: {"query": "...", "expect_id": N, "expect_text": "...", "serve_pid": PID,
//             "xss_query": "..." (optional)}
// Checks: focus on load, the facts, search-as-you-type finds expect_id, query words are
// highlighted, metadata is shown as text (no markup injected), Enter searches, and after
// SIGTERM to serve_pid the error banner appears. Writes OUTDIR/search.png and
// OUTDIR/error.png; prints one JSON line with what it saw; exits 1 on the first failure.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const [url, outdir, specJson] = process.argv.slice(2);
if (!url || !outdir || !specJson) {
  console.error('usage: node search_page.mjs URL OUTDIR SPEC_JSON');
  process.exit(2);
}
const spec = JSON.parse(specJson);
const seen = {};

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}; seen so far: ${JSON.stringify(seen)}`);
}

async function untilRefused(u, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      await fetch(u);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'annpack-chromium-'));
// The machine has no network: these flags keep Chromium from trying to reach any service.
// A fresh profile directory (playwright passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1100, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let rc = 0;
try {
  const page = browser.pages()[0] || await browser.newPage();
  const consoleErrors = [];
  const external = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('request', (r) => { if (!r.url().startsWith(url)) external.push(r.url()); });
  await page.addInitScript(() => { window.__xss = 0; });

  await page.goto(url);
  // The facts come from /health and the manifest.
  await page.waitForFunction(() => document.querySelector('[data-fact="n_vectors"]').textContent !== '…');
  seen.facts = await page.evaluate(() => Object.fromEntries(
    [...document.querySelectorAll('[data-fact]')].map((d) => [d.dataset.fact, d.textContent])));
  seen.focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  check(seen.focused === 'q', 'the search box has focus on load');
  check(Number(seen.facts.n_vectors) > 0, 'the facts show the vector count');

  // Search as you type: no Enter; the debounce fires the query.
  await page.keyboard.type(spec.query, { delay: 15 });
  const sel = `#results li[data-id="${spec.expect_id}"]`;
  await page.waitForFunction((t) => document.getElementById('results').dataset.query === t,
    spec.query, { timeout: 15000 });
  await page.waitForSelector(sel, { timeout: 15000 });
  seen.ids = await page.$$eval('#results li', (lis) => lis.map((li) => Number(li.dataset.id)));
  seen.top_text = await page.$eval(sel, (li) => li.textContent);
  seen.marks = await page.$$eval(`${sel} mark`, (ms) => ms.map((m) => m.textContent));
  seen.status = await page.textContent('#status');
  check(seen.ids.includes(spec.expect_id), `document ${spec.expect_id} is in the results`);
  check(seen.top_text.includes(spec.expect_text), `its text "${spec.expect_text}" is shown`);
  check(seen.marks.length > 0, 'query words are highlighted');
  check(await page.isHidden('#error'), 'no error banner after a good search');
  await page.screenshot({ path: path.join(outdir, 'search.png'), fullPage: true });

  if (spec.xss_query) {
    // Enter searches at once; metadata with markup must show as text.
    await page.fill('#q', spec.xss_query);
    await page.press('#q', 'Enter');
    await page.waitForFunction((t) => document.getElementById('results').dataset.query === t,
      spec.xss_query, { timeout: 15000 });
    seen.xss_text = await page.$eval('#results li', (li) => li.textContent);
    check(seen.xss_text.includes('<img'), 'the markup in the metadata is shown as text');
    seen.xss = await page.evaluate(() => ({
      fired: window.__xss,
      injected: document.querySelectorAll('#results img, #results script, #results b').length,
    }));
    check(seen.xss.fired === 0 && seen.xss.injected === 0, 'metadata is inserted as text');
  }

  seen.console_errors = [...consoleErrors];
  check(consoleErrors.length === 0, 'no console errors (CSP violations, script errors)');

  // Stop the server; the next search shows the error banner.
  process.kill(spec.serve_pid, 'SIGTERM');
  check(await untilRefused(url, 30000), 'the server stopped');
  await page.fill('#q', `${spec.query} again`);
  await page.press('#q', 'Enter');
  await page.waitForSelector('#error:not([hidden])', { timeout: 15000 });
  seen.banner = await page.textContent('#error');
  check(/did not answer|failed/i.test(seen.banner), 'the banner says the request failed');
  await page.screenshot({ path: path.join(outdir, 'error.png'), fullPage: true });

  seen.external_requests = external;
  check(external.length === 0, 'the page requests nothing from another origin');
  console.log(JSON.stringify(seen));
} catch (e) {
  console.error(e.message);
  rc = 1;
} finally {
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(rc);
