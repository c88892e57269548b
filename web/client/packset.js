// A packset on a static host (docs/PACKSET.md): the signed root manifest pins every
// layer's pack manifest by SHA-256; each layer is a Pack (its own digest table). The base
// is read list by list like a pack; deltas are small and read whole at open (head and
// lists in one range, tombstones), so the merged view — newest mention wins, tombstones, live delta
// vectors grouped under their nearest base centroid — is resolved once, by the core's own
// rule (packset/liveness.c in wasm).
import { AnnpackError } from './errors.js';
import { Http, Rounds } from './http.js';
import { Pack } from './pack.js';
import { checkWhole } from './digests.js';
import { spkiFromPem, keyId, verifyManifest } from './signature.js';
import { loadCore } from './wasm.js';

const ROOT = 'pack.manifest.json';

function need(cond, file, why) {
  if (!cond) throw new AnnpackError(`${file}: ${why}`, { file, kind: 'format' });
}

function u32(b, o) { return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24) >>> 0; }

export class Packset {
  static async open(url, opts = {}) {
    const base = url.endsWith('/') ? url : `${url}/`;
    const rounds = new Rounds(); // shared with the layers
    const http = new Http(base, { ...opts, rounds });
    const t0 = performance.now();
    const spki = opts.publicKey ? spkiFromPem(opts.publicKey) : null;
    const [core, rootBytes, sig] = await Promise.all([loadCore(opts.wasm), http.get(ROOT),
      spki ? http.get(`${ROOT}.sig`, { optional: true }) : null]);
    let signature = 'unchecked';
    let ps_by = null;
    let kid = null;
    if (spki) {
      if (!sig) throw new AnnpackError(`${ROOT}.sig: missing (HTTP 404) but a public key is configured: refused`, { file: `${ROOT}.sig`, kind: 'signature' });
      ps_by = await verifyManifest(ROOT, spki, sig, rootBytes);
      signature = 'verified';
      kid = await keyId(spki);
    }
    let root;
    try {
      root = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(rootBytes));
    } catch (e) {
      throw new AnnpackError(`${ROOT}: not JSON (${e.message})`, { file: ROOT, kind: 'format' });
    }
    need(root.format === 'annpack-packset' && root.schema_version === 3 && root.base, ROOT, 'not a packset root manifest (schema 3)');
    if (root.expires && !(Date.parse(root.expires) >= Date.now()) && !opts.allowExpired) {
      throw new AnnpackError(`${ROOT}: expired at ${root.expires}: refused`, { file: ROOT, kind: 'signature' });
    }
    const pathOk = (L) => need(typeof L.path === 'string' && !L.path.startsWith('/') && !L.path.split('/').includes('..'), ROOT, `layer path ${L.path} escapes the packset`);
    const layerOf = (L) => {
      pathOk(L);
      return Pack.open(new URL(`${L.path}/`, http.base).href,
        { ...opts, core, rounds, manifestSha256: L.sha256_manifest, label: `${L.path}/`, embedder: L === root.base,
          lists: L !== root.base });
    };
    // Queries embed with the base's embedder (and its pack.idf): the deltas' are not loaded.
    // The deltas' tombstones (pinned by the root manifest) in parallel with the layers.
    const tombstones = (root.deltas || []).map((d) => { pathOk(d); return http.get(`${d.path}/tombstones.jsonl`); });
    tombstones.forEach((t) => t.catch(() => {})); // reported below, after the layers
    const layers = await Promise.all([root.base, ...(root.deltas || [])].map(layerOf));
    const ps = new Packset(http, core, root, layers, opts);
    ps.signature = signature;
    ps.signatureBy = ps_by;
    ps.keyId = kid;
    for (const [i, L] of [root.base, ...(root.deltas || [])].entries()) {
      const files = layers[i].manifest.files;
      need(files['pack.annpack'].sha256 === L.sha256_annpack, ROOT, `${L.path}/pack.annpack: its SHA-256 differs from the root manifest's`);
      need(layers[i].dim === layers[0].dim, ROOT, `${L.path}: dim ${layers[i].dim}, the base has ${layers[0].dim}`);
    }
    await ps.resolve(await Promise.all(tombstones));
    ps.stats.open_ms = performance.now() - t0;
    ps.stats.open_requests = ps.requests();
    ps.stats.open_bytes = ps.bytesRead();
    ps.stats.open_rounds = rounds.count;
    return ps;
  }

  constructor(http, core, root, layers, opts) {
    this.http = http;
    this.core = core;
    this.root = root;
    this.manifest = root;
    this.layers = layers;
    this.base = layers[0];
    this.seqs = [0, ...(root.deltas || []).map((d) => d.seq)];
    this.stats = { queries: 0 };
    this.opts = opts;
  }

  get dim() { return this.base.dim; }
  get nLists() { return this.base.nLists; }
  get nVectors() { return this.live; }
  requests() { return this.http.requests + this.layers.reduce((s, l) => s + l.http.requests, 0); }
  bytesRead() { return this.http.bytes + this.layers.reduce((s, l) => s + l.http.bytes, 0); }

  // From every delta's lists (read whole at its open) and tombstones (fetched with the
  // layers), resolves the newest mention of each id in wasm, and groups the live delta
  // vectors under the base lists.
  async resolve(tombstones) {
    const deltas = this.root.deltas || [];
    const mentions = [];
    this.tombs = [new Set()];
    const stored = await Promise.all(deltas.map(async (d, k) => {
      const layer = k + 1;
      const p = this.layers[layer];
      const all = await p.lists([...Array(p.nLists).keys()]); // in the cache since its open
      const tb = tombstones[k];
      await checkWhole(`${d.path}/tombstones.jsonl`, tb, { size: tb.length, sha256: d.sha256_tombstones });
      const tomb = new TextDecoder().decode(tb).split('\n').filter((l) => l.trim()).map((l) => BigInt(JSON.parse(l).id));
      for (const id of tomb) mentions.push({ id, layer });
      this.tombs[layer] = new Set(tomb);
      for (const [, bytes] of all) {
        const n = u32(bytes, 0);
        const dv = new DataView(bytes.buffer, bytes.byteOffset + 4, 8 * n);
        for (let j = 0; j < n; j++) mentions.push({ id: dv.getBigUint64(8 * j, true), layer });
      }
      return all;
    }));
    this.mentions = this.core.mentions(mentions);
    const dim = this.dim;
    const items = []; // live delta vectors: {id bytes, vec bytes, seq}
    stored.forEach((all, k) => {
      const layer = k + 1;
      for (const [i, bytes] of [...all].sort((a, b) => a[0] - b[0])) {
        const { count, dead } = this.core.deadBits(this.mentions, bytes, dim, layer, i, `${deltas[k].path}/pack.annpack`);
        for (let j = 0; j < count; j++) {
          if (dead[j >> 3] & (1 << (j & 7))) continue;
          items.push({ id: bytes.subarray(4 + 8 * j, 12 + 8 * j),
            vec: bytes.subarray(4 + 8 * count + 2 * dim * j, 4 + 8 * count + 2 * dim * (j + 1)), seq: deltas[k].seq });
        }
      }
    });
    const vecs = new Uint8Array(items.length * 2 * dim);
    items.forEach((it, i) => vecs.set(it.vec, i * 2 * dim));
    const assign = items.length ? this.core.assign(this.base.centroidsPtr, this.nLists, dim, vecs, items.length) : [];
    // Per base list, per seq: a list in the stored layout (count, ids, vectors).
    this.extras = new Map();
    const groups = new Map();
    items.forEach((it, i) => {
      const key = `${assign[i]}:${it.seq}`;
      if (!groups.has(key)) groups.set(key, { list: assign[i], seq: it.seq, items: [] });
      groups.get(key).items.push(it);
    });
    for (const g of groups.values()) {
      const n = g.items.length;
      const b = new Uint8Array(4 + n * (8 + 2 * dim));
      new DataView(b.buffer).setUint32(0, n, true);
      g.items.forEach((it, j) => { b.set(it.id, 4 + 8 * j); b.set(it.vec, 4 + 8 * n + 2 * dim * j); });
      if (!this.extras.has(g.list)) this.extras.set(g.list, []);
      this.extras.get(g.list).push({ bytes: b, seq: g.seq });
    }
    // Live documents: the base's vectors that no delta mentions, plus the live delta
    // vectors (the mentioned ids looked up in the base's id index).
    const ids = [...new Set(mentions.map((m) => m.id))];
    const inBase = ids.length ? (await this.base.entries(ids)).filter(Boolean).length : 0;
    this.live = this.base.nVectors - inBase + items.length;
  }

  vector(query) { return this.base.vector(query); }

  prepare(opts) { return this.base.prepare(opts); }

  async search(query, { k = 10, probe = 8, filters = null } = {}) {
    const t0 = performance.now();
    const r0 = this.requests();
    const b0 = this.bytesRead();
    this.http.rounds.reset();
    // As a pack: a first text query under the hash embedder v2 reads the base's pack.idf
    // with the base's metadata prerequisites, in one round.
    if (typeof query === 'string' && this.base.idf && !this.base.embedder) await this.base.prepare();
    const q = await this.vector(query);
    const chosen = this.core.probe(this.base.centroidsPtr, this.nLists, this.dim, q, probe);
    const [bytes] = await Promise.all([this.base.lists(chosen), this.base.prepare({ text: false })]);
    const lists = [];
    for (const i of chosen) {
      const b = bytes.get(i);
      const entry = { index: i, bytes: b, layer: 0, file: `${this.root.base.path}/pack.annpack` };
      if (this.mentions.n) entry.dead = this.core.deadBits(this.mentions, b, this.dim, 0, i, entry.file).dead;
      lists.push(entry);
    }
    for (const i of chosen) {
      for (const x of this.extras.get(i) || []) lists.push({ index: i, bytes: x.bytes, layer: x.seq, file: 'the merged delta vectors' });
    }
    const kk = filters ? Math.min(1000, Math.max(k * 4, k + 32)) : k;
    let hits = this.core.search(q, kk, lists, this.dim);
    // Rows from the layer holding each live hit.
    const byLayer = new Map();
    hits.forEach((h, i) => {
      const l = this.seqs.indexOf(h.layer);
      if (!byLayer.has(l)) byLayer.set(l, []);
      byLayer.get(l).push(i);
    });
    const metas = new Array(hits.length);
    await Promise.all([...byLayer].map(async ([l, idx]) => {
      const rows = await this.layers[l].rows(idx.map((i) => hits[i].id));
      idx.forEach((i, j) => { metas[i] = rows[j]; });
    }));
    hits = hits.map((h, i) => ({ ...h, meta: metas[i] }));
    if (filters) hits = hits.filter((x) => Object.entries(filters).every(([f, v]) => (Array.isArray(v) ? v.includes(x.meta[f]) : x.meta[f] === v))).slice(0, k);
    this.stats.queries++;
    const took = performance.now() - t0;
    this.stats.last = { lists: chosen.length, requests: this.requests() - r0, bytes: this.bytesRead() - b0, rounds: this.http.rounds.count, took_ms: took };
    return { k, probe: Math.min(probe, this.nLists), took_ms: took, lists: chosen, results: hits };
  }

  // The live row of id: the newest layer mentioning it decides (a tombstone: null).
  async doc(id) {
    const big = BigInt(id);
    for (let l = this.layers.length - 1; l >= 1; l--) {
      // A delta mentioning id decides: its row, or null for a tombstone.
      const row = await this.layers[l].doc(id);
      if (row) return row;
      if (this.tombstoned(l, big)) return null;
    }
    return this.layers[0].doc(id);
  }

  tombstoned(layer, id) { return this.tombs[layer].has(id); }
}
