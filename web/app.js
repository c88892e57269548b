// The annpack search page. Plain JavaScript, no dependencies. Every piece of pack data is
// inserted with textContent / text nodes (never innerHTML), so metadata cannot inject markup.
'use strict';

(() => {
  const DEBOUNCE_MS = 200;
  const MAX_NAME = 1024; // the mount's cap on a query file name (docs/MOUNT.md)

  const $ = (id) => document.getElementById(id);
  const form = $('search');
  const q = $('q');
  const kIn = $('k');
  const probeIn = $('probe');
  const banner = $('error');
  const status = $('status');
  const list = $('results');

  let timer = 0;
  let seq = 0;            // the newest request; older answers are dropped
  let inflight = null;    // AbortController of the request in flight
  let generation = null;  // the generation the facts were read from
  // Direct mode (?pack=URL or ?packset=URL): the client reads a pack directory on a static host with
  // verified Range requests and searches it in WebAssembly (docs/CLIENT.md); the public
  // key is the page's own direct.json ({"publicKey": PEM}), never the address's.
  const params = new URLSearchParams(location.search);
  const isPackset = params.has('packset');
  const directUrl = params.get('packset') || params.get('pack');
  let pack = null;        // the open pack in direct mode

  function showError(msg) {
    banner.textContent = msg;
    banner.hidden = false;
  }

  function clearError() {
    banner.hidden = true;
    banner.textContent = '';
  }

  function readable(url) {
    try {
      return decodeURIComponent(url);
    } catch (e) {
      return url;
    }
  }

  async function getJSON(url, signal) {
    let res;
    try {
      res = await fetch(url, { signal, cache: 'no-store' });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new Error(`the server did not answer (GET /${readable(url)}); is annpack serve running?`);
    }
    if (!res.ok) {
      const what = url.startsWith('query/')
        ? 'the mount refused the query (empty or invalid text, k or probe out of range)'
        : `/${url}`;
      throw new Error(`HTTP ${res.status}: ${what}`);
    }
    try {
      return await res.json();
    } catch (e) {
      throw new Error(`not JSON: ${url}`);
    }
  }

  // ---- the pack's facts ----

  function setFact(name, value) {
    const dd = document.querySelector(`[data-fact="${name}"]`);
    if (dd) dd.textContent = value === undefined || value === null ? '—' : String(value);
    return dd;
  }

  async function loadDirect() {
    try {
      const client = await import('./client/index.js');
      let publicKey;
      const conf = await fetch('direct.json', { cache: 'no-store' }).catch(() => null);
      if (conf && conf.ok) publicKey = (await conf.json()).publicKey;
      const open = isPackset ? client.openPackset : client.openPack;
      pack = await open(new URL(directUrl, document.baseURI).href, { publicKey });
      const m = pack.manifest;
      setFact('n_vectors', pack.nVectors);
      setFact('dim', pack.dim);
      setFact('n_lists', pack.nLists);
      setFact('generation', null);
      setFact('version', m.version);
      setFact('deltas', isPackset ? pack.layers.length - 1 : 0);
      const sig = setFact('signature', pack.signature);
      sig.className = pack.signature === 'verified' ? 'ok' : 'warn';
      setFact('key_id', pack.keyId || 'none');
      const e = m.embedder || {};
      setFact('embedder', e.name ? `${e.name} (dim ${e.dim}, seed ${e.seed})` : null);
      document.body.dataset.mode = 'direct';
      return true;
    } catch (e) {
      showError(`Cannot open the pack at ${directUrl}: ${e.message}`);
      return false;
    }
  }

  async function loadFacts() {
    if (directUrl) return loadDirect();
    try {
      const [health, manifest] = await Promise.all([
        getJSON('health'), getJSON('pack/pack.manifest.json')]);
      const ps = manifest.packset || {};
      generation = health.generation;
      setFact('n_vectors', health.n_vectors);
      setFact('dim', health.dim);
      setFact('n_lists', health.n_lists);
      setFact('generation', health.generation);
      setFact('version', health.version);
      setFact('deltas', health.deltas);
      const sig = setFact('signature', ps.signature || health.signature);
      sig.className = (ps.signature || health.signature) === 'verified' ? 'ok' : 'warn';
      setFact('key_id', ps.key_id || health.key_id || 'none');
      const e = manifest.embedder || {};
      setFact('embedder', e.name ? `${e.name} (dim ${e.dim}, seed ${e.seed})` : null);
      return true;
    } catch (e) {
      showError(`Cannot read the pack's facts: ${e.message}`);
      return false;
    }
  }

  // ---- highlighting ----

  function queryWords(text) {
    const words = (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) || []).filter((w) => w.length > 1);
    return [...new Set(words)].sort((a, b) => b.length - a.length);
  }

  function wordRegex(words) {
    if (!words.length) return null;
    const esc = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    // Matches at the start of a word: "plant" marks "plants", not "explant".
    return new RegExp(`(?<![\\p{L}\\p{N}])(${esc.join('|')})`, 'giu');
  }

  // Appends text to el as text nodes, with matches of re wrapped in <mark>.
  function appendHighlighted(el, text, re) {
    if (!re) {
      el.append(text);
      return;
    }
    let last = 0;
    for (const m of text.matchAll(re)) {
      if (m.index > last) el.append(text.slice(last, m.index));
      const mark = document.createElement('mark');
      mark.textContent = m[0];
      el.append(mark);
      last = m.index + m[0].length;
    }
    if (last < text.length) el.append(text.slice(last));
  }

  // ---- results ----

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function render(data, text) {
    const re = wordRegex(queryWords(text));
    const items = (data.results || []).map((hit, i) => {
      const li = el('li', 'result');
      li.dataset.id = String(hit.id);
      const head = el('div', 'hit');
      head.append(el('span', 'rank', `#${i + 1}`),
        el('span', 'score', `score ${Number(hit.score).toFixed(4)}`),
        el('span', 'id', `id ${hit.id}`),
        el('span', 'layer', hit.layer === 0 ? 'layer 0 (base)' : `layer ${hit.layer} (delta)`));
      li.append(head);
      const fields = el('dl', 'meta');
      for (const [key, value] of Object.entries(hit.meta || {})) {
        if (key === 'id') continue;
        const row = el('div', 'field');
        row.append(el('dt', null, key));
        const dd = el('dd');
        appendHighlighted(dd, typeof value === 'string' ? value : JSON.stringify(value), re);
        row.append(dd);
        fields.append(row);
      }
      li.append(fields);
      return li;
    });
    list.classList.remove('stale');
    list.replaceChildren(...items);
    list.dataset.query = text; // what these results answer (tests wait for it)
    const n = items.length;
    status.textContent = `${n} result${n === 1 ? '' : 's'} in ${Number(data.took_ms).toFixed(2)} ms` +
      ` · k ${data.k} · probe ${data.probe} · generation ${data.generation}`;
    // A reload of the mount (a new signed version) changes the facts too.
    if (!pack && generation !== null && data.generation !== generation) loadFacts();
  }

  function intIn(input, lo, hi, name) {
    const v = Number(input.value);
    if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`${name} must be an integer in [${lo}, ${hi}]`);
    return v;
  }

  function remember(text, k, probe) {
    const p = new URLSearchParams();
    if (directUrl) p.set(isPackset ? 'packset' : 'pack', directUrl);
    if (text) p.set('q', text);
    p.set('k', k);
    p.set('probe', probe);
    history.replaceState(null, '', `?${p}`);
  }

  async function search() {
    clearTimeout(timer);
    const text = q.value.trim();
    let k;
    let probe;
    try {
      k = intIn(kIn, 1, 1000, 'k');
      probe = intIn(probeIn, 1, 65536, 'probe');
    } catch (e) {
      showError(e.message);
      return;
    }
    remember(text, k, probe);
    if (inflight) inflight.abort();
    inflight = null;
    const my = ++seq;
    if (!text) {
      list.replaceChildren();
      status.textContent = '';
      clearError();
      return;
    }
    if (directUrl) {
      searchDirect(text, k, probe, my);
      return;
    }
    const name = `${encodeURIComponent(text)}?k=${k}&probe=${probe}`;
    if (new TextEncoder().encode(name).length > MAX_NAME) {
      showError(`The query is too long: the mount takes query names up to ${MAX_NAME} bytes.`);
      return;
    }
    inflight = new AbortController();
    status.textContent = 'Searching…';
    try {
      const data = await getJSON(`query/${name}`, inflight.signal);
      if (my !== seq) return;
      clearError();
      render(data, text);
    } catch (e) {
      if (e.name === 'AbortError' || my !== seq) return;
      list.classList.add('stale');
      status.textContent = '';
      showError(`Search failed: ${e.message}`);
    }
  }

  async function searchDirect(text, k, probe, my) {
    status.textContent = 'Searching…';
    try {
      if (!pack) throw new Error('the pack is not open (see above)');
      const r = await pack.search(text, { k, probe });
      if (my !== seq) return;
      clearError();
      const last = pack.stats.last;
      render({ results: r.results, took_ms: r.took_ms, k, probe: r.probe, generation: '—' }, text);
      status.textContent += ` · ${last.requests} requests in ${last.rounds} rounds, ${last.bytes} bytes`;
    } catch (e) {
      if (my !== seq) return;
      list.classList.add('stale');
      status.textContent = '';
      showError(`Search failed: ${e.message}`);
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(search, DEBOUNCE_MS);
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    search();
  });
  for (const input of [q, kIn, probeIn]) input.addEventListener('input', schedule);
  // Direct mode: what the first query needs whatever it asks (the hash embedder v2's
  // pack.idf, the metadata seek table, the id index) is fetched while the user types, not
  // at open (the open stays at 4 requests) nor after the query (one round less for it).
  let prepared = false; // once: a failure shows with the query that needs the piece
  const prepare = () => {
    if (pack && !prepared) {
      prepared = true;
      pack.prepare().catch(() => {});
    }
  };
  q.addEventListener('focus', prepare);
  q.addEventListener('input', prepare);
  q.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      q.value = '';
      search();
    }
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === '/' && document.activeElement !== q &&
        !(document.activeElement instanceof HTMLInputElement)) {
      e.preventDefault();
      q.focus();
      q.select();
    }
  });

  // Start: facts, then a query from the address (?q=&k=&probe=) if there is one.
  if (params.has('k')) kIn.value = params.get('k');
  if (params.has('probe')) probeIn.value = params.get('probe');
  if (params.has('q')) q.value = params.get('q');
  q.focus();
  loadFacts().then(() => {
    if (q.value.trim()) search();
  });
})();
