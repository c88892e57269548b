// Drives the built search page's direct mode in headless Debian Chromium against a static
// nginx (tests/test_client_browser.py starts it). Usage:
//   node direct_page.mjs SPEC_JSON
// SPEC_JSON: {"url": page URL with ?pack=..., "access_log": nginx's log, "query": "...",
//   "expect_id": N, "expect_text": "...", "queries": ["...", ...] (more, for the counts),
//   "tamper": {"file": path, "offset": N, "list": L, "url": page URL with probe=all},
//   "norange_url": the page on the server that ignores Range, "outdir": screenshots}
// (tamper and norange_url are optional: a packset run leaves them out). Per query it
// reports nginx's lines and the page's own count of round trips ("in R rounds").
// Prints one JSON line with what it saw; exits 1 on the first failed check.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const spec = JSON.parse(process.argv[2]);
const seen = { queries: [] };

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}; seen so far: ${JSON.stringify(seen)}`);
}

const logLines = () => fs.readFileSync(spec.access_log, 'utf8').split('\n').filter(Boolean);
const packRequests = (lines) => lines.filter((l) => /\/packs\//.test(l));
// nginx writes a request's line after its response has gone out, so the page can show a
// result before the line is there: waits until at least n lines after n0 and no new line
// for 300 ms (at most 5 s).
async function settle(n0, n = 0) {
  let last = -1;
  for (let t = 0, still = 0; t < 5000 && still < 300; t += 50) {
    const got = logLines().length - n0;
    still = got === last && got >= n ? still + 50 : 0;
    last = got;
    await new Promise((r) => setTimeout(r, 50));
  }
  return logLines().slice(n0);
}

async function search(page, text) {
  const n0 = logLines().length;
  const t0 = Date.now();
  await page.fill('#q', text);
  await page.press('#q', 'Enter');
  await page.waitForFunction((t) => document.getElementById('results').dataset.query === t ||
    !document.getElementById('error').hidden, text, { timeout: 20000 });
  const ms = Date.now() - t0;
  const said = /(\d+) requests/.exec(await page.textContent('#status'));
  const reqs = packRequests(await settle(n0, said ? Number(said[1]) : 0));
  const ids = await page.$$eval('#results li', (lis) => lis.map((li) => Number(li.dataset.id)));
  const status = await page.textContent('#status');
  const rounds = /in (\d+) rounds/.exec(status);
  return { text, ms, ids, requests: reqs.length, lines: reqs, rounds: rounds ? Number(rounds[1]) : null,
    bytes: reqs.reduce((s, l) => s + Number(l.split(' ').pop()), 0),
    status: await page.textContent('#status'), banner: await page.isHidden('#error') ? null : await page.textContent('#error') };
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'annpack-chromium-'));
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
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  // Open: the facts appear once the manifest, its signature, the digests and the head are in.
  const n0 = logLines().length;
  const t0 = Date.now();
  await page.goto(spec.url);
  await page.waitForFunction(() => document.querySelector('[data-fact="n_vectors"]').textContent !== '…' ||
    !document.getElementById('error').hidden, null, { timeout: 20000 });
  seen.open_ms = Date.now() - t0;
  seen.open_banner = await page.isHidden('#error') ? null : await page.textContent('#error');
  check(seen.open_banner === null, 'the pack opens');
  seen.facts = await page.evaluate(() => Object.fromEntries(
    [...document.querySelectorAll('[data-fact]')].map((d) => [d.dataset.fact, d.textContent])));
  seen.open_requests = packRequests(await settle(n0));
  seen.mode = await page.evaluate(() => document.body.dataset.mode);

  // Type the query (search as you type), see the expected document.
  await page.click('#q');
  const nq = logLines().length;
  await page.keyboard.type(spec.query, { delay: 10 });
  await page.waitForFunction((t) => document.getElementById('results').dataset.query === t,
    spec.query, { timeout: 20000 });
  const sel = `#results li[data-id="${spec.expect_id}"]`;
  await page.waitForSelector(sel, { timeout: 20000 });
  seen.typed = { ids: await page.$$eval('#results li', (lis) => lis.map((li) => Number(li.dataset.id))),
    text: await page.$eval(sel, (li) => li.textContent), lines: packRequests(await settle(nq)) };
  check(seen.typed.text.includes(spec.expect_text), `the expected document's text "${spec.expect_text}" is shown`);
  await page.screenshot({ path: path.join(spec.outdir, 'direct.png'), fullPage: true });

  for (const q of spec.queries) seen.queries.push(await search(page, q));
  seen.console_errors = [...consoleErrors];

  if (spec.tamper) {
    // A list tampered on disk: a fresh page (no cached lists) scanning every list refuses it.
    const b = fs.readFileSync(spec.tamper.file);
    b[spec.tamper.offset] ^= 0x40;
    fs.writeFileSync(spec.tamper.file, b);
    await page.goto(spec.tamper.url);
    await page.waitForFunction(() => document.querySelector('[data-fact="n_vectors"]').textContent !== '…', null, { timeout: 20000 });
    seen.tampered = await search(page, spec.query);
    await page.screenshot({ path: path.join(spec.outdir, 'tampered.png'), fullPage: true });

    // A server that ignores Range: the open is refused.
    await page.goto(spec.norange_url);
    await page.waitForSelector('#error:not([hidden])', { timeout: 20000 });
    seen.norange_banner = await page.textContent('#error');
  }
  console.log(JSON.stringify(seen));
} catch (e) {
  console.error(e.message);
  rc = 1;
} finally {
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(rc);
