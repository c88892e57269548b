// A pack on a static host, read with verified HTTP Range requests (docs/CLIENT.md).
//
// Open (at most 4 requests, 2 rounds): pack.manifest.json, its .sig and pack.digests in
// parallel; the signature checked over the manifest's bytes before they are parsed,
// pack.digests against the manifest's sha256; then the head (header + centroids) in one
// range, checked against its digest. The hash embedder v2's table pack.idf is not part of
// the open: only text queries need it, so the first one fetches it (checked against the
// manifest's sha256) in one round with the other things every first query needs (the
// metadata seek table, the id index's ends), or prepare() does, ahead of the query. Query:
// the lists chosen in wasm, fetched as merged ranges in parallel, each checked against its
// digest before the core scores it; then the metadata rows of the hits: pack.meta.idx
// chunks (64 KiB, found by interpolation on the ids) and the seekable zstd frames holding
// the rows, each checked, decompressed by fzstd.
import { decompress } from 'fzstd';
import { AnnpackError } from './errors.js';
import { Http, Rounds, mergeRanges } from './http.js';
import { Lru } from './lru.js';
import { parseDigests, checkRange, checkWhole, sha256, hex } from './digests.js';
import { spkiFromPem, keyId, verifyManifest } from './signature.js';
import { loadCore } from './wasm.js';

const MANIFEST = 'pack.manifest.json';
const DIGESTS = 'pack.digests';
const IDF = 'pack.idf';
const IDF_MAX = 32 + 4 * 2 ** 24;
const IDX = 'pack.meta.idx';
const IDX_ENTRY = 24;
const IDX_HEAD = 16;
const SMALL_IDX = 1 << 20;
const SKIPPABLE = 0x184d2a5e;
const SEEKABLE = 0x8f92eab1;

function need(cond, file, why) {
  if (!cond) throw new AnnpackError(`${file}: ${why}`, { file, kind: 'format' });
}

// The hash embedder v2 block of a manifest ({dim, seed, sha256} of its pack.idf), or null
// for another embedder (docs/FORMAT.md "pack.idf": the block names exactly pack.idf, which
// the signed files list must hold).
function idfOf(manifest) {
  const e = manifest.embedder || {};
  if (e.name !== 'hash' || e.version !== 2) return null;
  const files = manifest.files || {};
  need(e.idf && e.idf.file === IDF && /^[0-9a-f]{64}$/.test(e.idf.sha256), MANIFEST,
    `embedder hash v2: its block must name ${IDF} with a sha256`);
  need(files[IDF] && files[IDF].sha256 === e.idf.sha256, MANIFEST,
    `${IDF} is not listed in files with the embedder block's sha256: refused`);
  // The core reads at most 2^24 buckets (docs/FORMAT.md): refused before the download.
  need(files[IDF].size <= IDF_MAX, MANIFEST, `${IDF}: ${files[IDF].size} bytes, more than ${IDF_MAX}`);
  return { dim: e.dim, seed: e.seed, sha256: e.idf.sha256 };
}

export class Pack {
  static async open(url, opts = {}) {
    const label = opts.label || '';
    const http = new Http(url, { ...opts, rounds: opts.rounds || new Rounds() });
    const spki = opts.publicKey && !opts.manifestSha256 ? spkiFromPem(opts.publicKey) : null;
    const t0 = performance.now();
    const [core, manifestBytes, sig, digestBytes] = await Promise.all([
      opts.core || loadCore(opts.wasm),
      http.get(MANIFEST),
      spki ? http.get(`${MANIFEST}.sig`, { optional: true }) : Promise.resolve(null),
      http.get(DIGESTS, { optional: true }),
    ]);
    let signature = 'unchecked';
    let signatureBy = null;
    let keyIdHex = null;
    if (opts.manifestSha256) {
      // A layer of a packset: its manifest is pinned by the (signed) root manifest.
      if (hex(await sha256(manifestBytes)) !== opts.manifestSha256) {
        throw new AnnpackError(`${opts.label || ''}${MANIFEST}: its SHA-256 differs from the root manifest's: refused`,
          { file: MANIFEST, kind: 'digest' });
      }
      signature = 'chained';
    } else if (spki) {
      if (!sig) {
        throw new AnnpackError(`${MANIFEST}.sig: missing (HTTP 404) but a public key is configured: refused`,
          { file: `${MANIFEST}.sig`, kind: 'signature' });
      }
      signatureBy = await verifyManifest(MANIFEST, spki, sig, manifestBytes);
      signature = 'verified';
      keyIdHex = await keyId(spki);
    }
    let manifest;
    try {
      manifest = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(manifestBytes));
    } catch (e) {
      throw new AnnpackError(`${MANIFEST}: not JSON (${e.message})`, { file: MANIFEST, kind: 'format' });
    }
    if (manifest.expires && !(Date.parse(manifest.expires) >= Date.now()) && !opts.allowExpired) {
      throw new AnnpackError(`${label}${MANIFEST}: expired at ${manifest.expires}: refused`, { file: MANIFEST, kind: 'signature' });
    }
    const files = manifest.files || {};
    need(manifest.format === 'annpack' && files['pack.annpack'], MANIFEST, 'not a pack manifest (no files["pack.annpack"])');
    need(digestBytes, DIGESTS, 'missing (HTTP 404): the client verifies every range it reads against it; rebuild the pack with a current annpack');
    need(files[DIGESTS], MANIFEST, `${DIGESTS} is not listed in files, so the signature does not cover it: refused`);
    await checkWhole(`${label}${DIGESTS}`, digestBytes, files[DIGESTS]);
    const digests = parseDigests(digestBytes);
    for (const [name, d] of digests) {
      need(files[name] && files[name].size === d.size, DIGESTS, `${name}: size ${d.size} differs from the manifest's`);
    }
    const annp = digests.get('pack.annpack');
    need(annp && annp.ranges.length >= 2, DIGESTS, 'no ranges for pack.annpack');
    const head = annp.ranges[0];
    // The hash embedder v2's block is checked now; its table pack.idf is read on first use.
    const idf = opts.embedder === false ? null : idfOf(manifest);
    // A packset's delta is read whole (opts.lists): its head and every list in one range,
    // up to the offset table (the last range), the lists checked below.
    const upTo = opts.lists ? annp.ranges[annp.ranges.length - 1].offset : head.offset + head.length;
    const buf = await http.range('pack.annpack', head.offset, upTo, annp.size);
    const headBytes = buf.subarray(0, head.length);
    await checkRange(`${label}pack.annpack`, head, headBytes, 'the head (header and centroids)');
    const h = core.header(headBytes, annp.size, 'pack.annpack');
    need(head.length === 72 + 4 * h.n_lists * h.dim, DIGESTS, 'pack.annpack range 0 is not the header and centroids');
    need(annp.ranges.length === h.n_lists + 2, DIGESTS, `pack.annpack has ${annp.ranges.length} ranges, ${h.n_lists} lists need ${h.n_lists + 2}`);
    need(annp.ranges[h.n_lists + 1].offset === h.offset_table_pos, DIGESTS, 'pack.annpack: the last range is not the offset table');
    need(!idf || idf.dim === h.dim, MANIFEST, `embedder dim ${idf && idf.dim}, pack.annpack has ${h.dim}`);
    const centroids = new Float32Array(headBytes.slice(72).buffer);
    const p = new Pack(http, core, manifest, digests, h, centroids, opts);
    p.idf = idf;
    if (opts.lists) {
      for (let i = 0; i < h.n_lists; i++) {
        const r = annp.ranges[i + 1];
        const bytes = buf.subarray(r.offset, r.offset + r.length);
        await checkRange(p.f('pack.annpack'), r, bytes, `list ${i}`);
        p.cache.set(`l${i}`, bytes, bytes.length);
      }
    }
    p.signature = signature;
    p.signatureBy = signatureBy;
    p.keyId = keyIdHex;
    p.stats.open_ms = performance.now() - t0;
    p.stats.open_requests = http.requests;
    p.stats.open_bytes = http.bytes;
    p.stats.open_rounds = http.rounds.count;
    return p;
  }

  constructor(http, core, manifest, digests, header, centroids, opts) {
    this.http = http;
    this.label = opts.label || '';
    this.f = (n) => `${this.label}${n}`;
    this.core = core;
    this.manifest = manifest;
    this.digests = digests;
    this.header = header;
    this.centroidsPtr = core.centroids(centroids);
    this.cache = new Lru(opts.cacheBytes || 64 << 20);
    this.pending = new Map(); // list index -> the promise of its verified bytes
    this.stats = { queries: 0 };
    this.metaName = (manifest.shards && manifest.shards[0] && manifest.shards[0].meta) || 'pack.meta.jsonl.zst';
    this.seek = null; // the seekable zstd frames: [{coff, clen, doff, dlen}]
    this.idxEnds = null; // [first id, last id] of pack.meta.idx, once read
    this.idf = null; // the hash embedder v2's {dim, seed, sha256}: its pack.idf is read on first use
    this.embedder = null; // the loaded hash embedder v2
    this.once = new Map(); // name -> the promise of a fetch-once piece (seek table, idx, idf)
  }

  get dim() { return this.header.dim; }
  get nLists() { return this.header.n_lists; }
  get nVectors() { return this.header.n_vectors; }

  // The query vector: a Float32Array of dim, or text through the pack's embedder (for the
  // hash embedder v2, after its pack.idf is read: the first text query fetches it).
  async vector(query) {
    if (typeof query !== 'string') {
      const q = query instanceof Float32Array ? query : Float32Array.from(query);
      if (q.length !== this.dim) throw new AnnpackError(`the vector has ${q.length} values, the pack's dim is ${this.dim}`, { kind: 'arg' });
      return q;
    }
    const e = this.manifest.embedder || {};
    if (e.name === 'hash' && e.version === 2 && this.idf) {
      await this.textEmbedder();
      return this.core.embedWith(this.embedder, query, e.dim);
    }
    if (e.name !== 'hash' || e.version !== 1) {
      throw new AnnpackError(`${MANIFEST}: embedder ${e.name} v${e.version} cannot run in the browser (the hash embedder v1 and v2 can): search with a vector`, { file: MANIFEST, kind: 'arg' });
    }
    return this.core.embedHash(query, e.dim, e.seed);
  }

  // fn's promise, started once. A refusal (wrong bytes, a bad format) sticks: every later
  // call reports it without fetching again; after a network or HTTP error the next call
  // starts again.
  fetchOnce(name, fn) {
    if (!this.once.has(name)) {
      const p = fn();
      this.once.set(name, p);
      p.catch((e) => {
        const retry = !(e instanceof AnnpackError) || e.kind === 'http';
        if (retry && this.once.get(name) === p) this.once.delete(name);
      });
    }
    return this.once.get(name);
  }

  // The hash embedder v2, loaded from pack.idf: whole, checked against the manifest's size
  // and sha256 (the block and the files list agree, checked at open), then parsed and
  // checked again by the core (ap_idf_parse, hash2.c's load).
  textEmbedder() {
    if (!this.idf || this.embedder) return Promise.resolve();
    return this.fetchOnce('idf', async () => {
      const bytes = await this.http.get(IDF);
      await checkWhole(this.f(IDF), bytes, this.manifest.files[IDF]);
      this.embedder = await this.core.hash2(this.idf.dim, this.idf.seed, this.idf.sha256, bytes, this.f(IDF));
    });
  }

  // Fetches, in one round, what a first query needs whatever it asks: the seek table, the
  // id index (a small one whole, else its first and last chunks) and, with text, the hash
  // embedder v2's pack.idf. The first query does it itself; a page can call it when the
  // user starts typing, so that round overlaps the typing.
  async prepare({ text = true } = {}) {
    await Promise.all([text ? this.textEmbedder() : null, this.seekTable(), this.idxPrefetch()]);
  }

  // The id index's part every lookup needs: a small index (at most SMALL_IDX bytes) whole,
  // so later queries need only their frames; a large one's ends (the id range).
  idxPrefetch() {
    const d = this.digests.get(IDX);
    if (!d) return Promise.resolve();
    return this.fetchOnce('idx', async () => {
      if (d.size <= SMALL_IDX) await this.idxChunks(d.ranges.map((r, i) => i));
      await this.idxEnds0();
    });
  }

  // Verified bytes of lists (indexes), fetched as merged ranges in one parallel round. A
  // list another query is already fetching is waited for, not fetched again.
  async lists(indexes) {
    const annp = this.digests.get('pack.annpack');
    const out = new Map();
    const want = [];
    const waits = [];
    for (const i of indexes) {
      const c = this.cache.get(`l${i}`);
      if (c) out.set(i, c);
      else if (this.pending.has(i)) waits.push(this.pending.get(i).then((b) => out.set(i, b)));
      else want.push(i);
    }
    const ranges = want.map((i) => ({ start: annp.ranges[i + 1].offset, end: annp.ranges[i + 1].offset + annp.ranges[i + 1].length }));
    const spans = mergeRanges(ranges).map((span) => {
      const got = (async () => {
        const buf = await this.http.range('pack.annpack', span.start, span.end, annp.size);
        const m = new Map();
        for (const k of span.parts) {
          const i = want[k];
          const r = annp.ranges[i + 1];
          const bytes = buf.subarray(r.offset - span.start, r.offset - span.start + r.length);
          await checkRange(this.f('pack.annpack'), r, bytes, `list ${i}`);
          this.cache.set(`l${i}`, bytes, bytes.length);
          m.set(i, bytes);
        }
        return m;
      })();
      for (const k of span.parts) {
        const i = want[k];
        const p = got.then((m) => m.get(i));
        p.catch(() => {}); // the awaiting query reports it
        this.pending.set(i, p);
        p.finally(() => { if (this.pending.get(i) === p) this.pending.delete(i); }).catch(() => {});
      }
      return got.then((m) => { for (const [i, b] of m) out.set(i, b); });
    });
    await Promise.all([...spans, ...waits]);
    return out;
  }

  async search(query, { k = 10, probe = 8, filters = null } = {}) {
    const t0 = performance.now();
    const r0 = this.http.requests;
    const b0 = this.http.bytes;
    this.http.rounds.reset();
    // A first text query under the hash embedder v2 reads pack.idf with the metadata
    // prerequisites (one round); otherwise those go with the lists.
    if (typeof query === 'string' && this.idf && !this.embedder) await this.prepare();
    const q = await this.vector(query);
    const chosen = this.core.probe(this.centroidsPtr, this.nLists, this.dim, q, probe);
    const [bytes] = await Promise.all([this.lists(chosen), this.prepare({ text: false })]);
    const t1 = performance.now();
    const lists = chosen.map((i) => ({ index: i, bytes: bytes.get(i), layer: 0, file: this.f('pack.annpack') }));
    // With filters, ask the core for more and keep those whose metadata match.
    const kk = filters ? Math.min(1000, Math.max(k * 4, k + 32)) : k;
    let hits = this.core.search(q, kk, lists, this.dim);
    const rows = await this.rows(hits.map((x) => x.id));
    hits = hits.map((x, i) => ({ ...x, meta: rows[i] }));
    if (filters) hits = hits.filter((x) => matches(x.meta, filters)).slice(0, k);
    this.stats.queries++;
    const took = performance.now() - t0;
    this.stats.last = { lists: chosen.length, requests: this.http.requests - r0,
      bytes: this.http.bytes - b0, rounds: this.http.rounds.count, lists_ms: t1 - t0, took_ms: took };
    return { k, probe: Math.min(probe, this.nLists), took_ms: took, lists: chosen, results: hits };
  }

  // The metadata row of id (an object), or null when the pack has no such id.
  async doc(id) {
    const [row] = await this.rows([id], { missingOk: true });
    return row;
  }

  // --- metadata: the seek table, the id index, the frames ---------------------------

  seekTable() {
    if (this.seek) return Promise.resolve(this.seek);
    return this.fetchOnce('seek', () => this.readSeekTable());
  }

  async readSeekTable() {
    const name = this.metaName;
    const d = this.digests.get(name);
    need(d && d.ranges.length >= 1, DIGESTS, `no ranges for ${name}`);
    const last = d.ranges[d.ranges.length - 1];
    const b = await this.http.range(name, last.offset, last.offset + last.length, d.size);
    await checkRange(this.f(name), last, b, 'the seek table');
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    need(b.length >= 17 && dv.getUint32(0, true) === SKIPPABLE, name, 'the last range is not the seek table (skippable frame)');
    const n = dv.getUint32(b.length - 9, true);
    need(dv.getUint32(b.length - 4, true) === SEEKABLE && b[b.length - 5] === 0, name, 'seek table footer: wrong magic or descriptor');
    need(b.length === 8 + 8 * n + 9 && n === d.ranges.length - 1, name, `seek table of ${n} frames does not fit pack.digests' ${d.ranges.length - 1}`);
    const frames = [];
    let doff = 0;
    for (let f = 0; f < n; f++) {
      const clen = dv.getUint32(8 + 8 * f, true);
      const dlen = dv.getUint32(12 + 8 * f, true);
      need(clen === d.ranges[f].length, name, `frame ${f}: ${clen} bytes in the seek table, ${d.ranges[f].length} in pack.digests`);
      frames.push({ coff: d.ranges[f].offset, clen, doff, dlen });
      doff += dlen;
    }
    this.seek = frames;
    return frames;
  }

  // Verified 64 KiB chunks c of pack.meta.idx, in one parallel round.
  async idxChunks(cs) {
    const d = this.digests.get(IDX);
    need(d, DIGESTS, `no ranges for ${IDX}`);
    const out = new Map();
    const want = [...new Set(cs)].filter((c) => {
      const v = this.cache.get(`i${c}`);
      if (v) out.set(c, v);
      return !v;
    });
    const ranges = want.map((c) => ({ start: d.ranges[c].offset, end: d.ranges[c].offset + d.ranges[c].length }));
    await Promise.all(mergeRanges(ranges).map(async (span) => {
      const buf = await this.http.range(IDX, span.start, span.end, d.size);
      for (const k of span.parts) {
        const c = want[k];
        const r = d.ranges[c];
        const bytes = buf.subarray(r.offset - span.start, r.offset - span.start + r.length);
        await checkRange(this.f(IDX), r, bytes, `chunk ${c}`);
        this.cache.set(`i${c}`, bytes, bytes.length);
        out.set(c, bytes);
      }
    }));
    return out;
  }

  // Entry e of pack.meta.idx from loaded chunks: {id: BigInt, off, len}, or undefined.
  entryAt(chunks, e) {
    const d = this.digests.get(IDX);
    const a = IDX_HEAD + e * IDX_ENTRY;
    const b = new Uint8Array(IDX_ENTRY);
    for (let i = 0; i < IDX_ENTRY; i++) {
      const pos = a + i;
      const c = chunkOf(d, pos);
      const bytes = chunks.get(c);
      if (!bytes) return undefined;
      b[i] = bytes[pos - d.ranges[c].offset];
    }
    const dv = new DataView(b.buffer);
    return { id: dv.getBigUint64(0, true), off: Number(dv.getBigUint64(8, true)), len: Number(dv.getBigUint64(16, true)) };
  }

  // The index entries of ids: interpolation between known entries, a round of chunk
  // fetches per step (one round when ids are dense); null for an id not in the index.
  async entries(ids) {
    const d = this.digests.get(IDX);
    need(d, DIGESTS, `no ranges for ${IDX}`);
    const ends = await this.idxPrefetch().then(() => this.idxEnds);
    const count = this.idxCount;
    if (count === 0) return ids.map(() => null);
    const want = ids.map((x) => ({ id: BigInt(x), lo: 0, hi: count - 1, found: undefined }));
    for (let round = 0; round < 64 && want.some((w) => w.found === undefined); round++) {
      const chunksNeeded = [];
      for (const w of want) {
        if (w.found !== undefined) continue;
        if (w.lo > w.hi || w.id < ends[0] || w.id > ends[1]) { w.found = null; continue; }
        w.guess = guess(w, ends, count);
        const a = IDX_HEAD + w.guess * IDX_ENTRY;
        chunksNeeded.push(chunkOf(d, a), chunkOf(d, a + IDX_ENTRY - 1));
      }
      const chunks = await this.idxChunks(chunksNeeded);
      for (const w of want) {
        if (w.found !== undefined) continue;
        // The guessed entry (both its chunks are loaded), then every entry wholly inside
        // the guess's chunk (~2700), narrow the bounds; each round excludes the guess.
        const g = this.entryAt(chunks, w.guess);
        if (g.id === w.id) { w.found = g; continue; }
        if (g.id < w.id) { w.lo = w.guess + 1; w.loId = g.id; } else { w.hi = w.guess - 1; w.hiId = g.id; }
        const c = chunkOf(d, IDX_HEAD + w.guess * IDX_ENTRY);
        const r = d.ranges[c];
        const first = Math.max(w.lo, Math.ceil((r.offset - IDX_HEAD) / IDX_ENTRY));
        const last = Math.min(w.hi, Math.floor((r.offset + r.length - IDX_HEAD) / IDX_ENTRY) - 1);
        if (first > last) continue;
        const eFirst = this.entryAt(chunks, first);
        const eLast = this.entryAt(chunks, last);
        if (w.id < eFirst.id) { w.hi = first - 1; w.hiId = eFirst.id; continue; }
        if (w.id > eLast.id) { w.lo = last + 1; w.loId = eLast.id; continue; }
        let lo = first;
        let hi = last;
        w.found = null; // inside this chunk's span: here or nowhere
        while (lo <= hi) {
          const mid = (lo + hi) >> 1;
          const e = this.entryAt(chunks, mid);
          if (e.id === w.id) { w.found = e; break; }
          if (e.id < w.id) lo = mid + 1; else hi = mid - 1;
        }
      }
    }
    return want.map((w) => w.found || null);
  }

  // The index's header (checked) and its first and last ids: [first id, last id].
  async idxEnds0() {
    if (this.idxEnds) return this.idxEnds;
    const d = this.digests.get(IDX);
    need(d, DIGESTS, `no ranges for ${IDX}`);
    const count = Math.floor((d.size - IDX_HEAD) / IDX_ENTRY);
    const cs = [0];
    if (count > 0) cs.push(chunkOf(d, IDX_HEAD + IDX_ENTRY - 1), chunkOf(d, IDX_HEAD + (count - 1) * IDX_ENTRY), chunkOf(d, d.size - 1));
    const chunks = await this.idxChunks(cs);
    const h0 = chunks.get(0);
    need(h0.length >= IDX_HEAD && new TextDecoder().decode(h0.subarray(0, 8)) === 'APMIDX01', IDX, 'wrong magic (not APMIDX01)');
    const n = Number(new DataView(h0.buffer, h0.byteOffset).getBigUint64(8, true));
    need(IDX_HEAD + n * IDX_ENTRY === d.size, IDX, `${n} entries do not fit ${d.size} bytes`);
    this.idxCount = n;
    this.idxEnds = n ? [this.entryAt(chunks, 0).id, this.entryAt(chunks, n - 1).id] : [1n, 0n];
    return this.idxEnds;
  }

  // The rows (objects) of ids, in order: each from its verified, decompressed frame and
  // checked to carry its id.
  async rows(ids, { missingOk = false } = {}) {
    if (!ids.length) return [];
    const [entries, frames] = await Promise.all([this.entries(ids), this.seekTable()]);
    const name = this.metaName;
    const d = this.digests.get(name);
    const need_ = new Set();
    const where = entries.map((e, i) => {
      if (!e) {
        if (missingOk) return null;
        throw new AnnpackError(`${IDX}: id ${ids[i]} (a search hit) is not in the index`, { file: IDX, kind: 'format' });
      }
      const f = frameOf(frames, e.off);
      need(f >= 0 && e.off + e.len <= frames[f].doff + frames[f].dlen, name, `row of id ${ids[i]} is not inside one frame`);
      need_.add(f);
      return { e, f };
    });
    const have = new Map();
    const fetch = [];
    for (const f of need_) {
      const c = this.cache.get(`f${f}`);
      if (c) have.set(f, c); else fetch.push(f);
    }
    const ranges = fetch.map((f) => ({ start: frames[f].coff, end: frames[f].coff + frames[f].clen }));
    await Promise.all(mergeRanges(ranges).map(async (span) => {
      const buf = await this.http.range(name, span.start, span.end, d.size);
      for (const k of span.parts) {
        const f = fetch[k];
        const r = d.ranges[f];
        const bytes = buf.subarray(r.offset - span.start, r.offset - span.start + r.length);
        await checkRange(this.f(name), r, bytes, `frame ${f}`);
        let plain;
        try {
          plain = decompress(bytes);
        } catch (e) {
          throw new AnnpackError(`${name}: frame ${f} does not decompress (${e.message})`, { file: name, kind: 'format' });
        }
        need(plain.length === frames[f].dlen, name, `frame ${f} decompresses to ${plain.length} bytes, the seek table says ${frames[f].dlen}`);
        this.cache.set(`f${f}`, plain, plain.length);
        have.set(f, plain);
      }
    }));
    const dec = new TextDecoder('utf-8', { fatal: true });
    return where.map((w, i) => {
      if (!w) return null;
      const plain = have.get(w.f);
      const at = w.e.off - frames[w.f].doff;
      let row;
      try {
        row = JSON.parse(dec.decode(plain.subarray(at, at + w.e.len)));
      } catch (e) {
        throw new AnnpackError(`${name}: the row of id ${ids[i]} is not JSON (${e.message})`, { file: name, kind: 'format' });
      }
      need(row && BigInt(row.id) === BigInt(ids[i]), name, `the row at the index's offset for id ${ids[i]} has id ${row && row.id}`);
      return row;
    });
  }
}

function chunkOf(d, pos) {
  // Fixed 64 KiB chunks: direct, then a check.
  let c = Math.floor(pos / 65536);
  while (c > 0 && d.ranges[c] === undefined) c--;
  while (c < d.ranges.length - 1 && pos >= d.ranges[c].offset + d.ranges[c].length) c++;
  while (c > 0 && pos < d.ranges[c].offset) c--;
  return c;
}

function frameOf(frames, off) {
  let lo = 0;
  let hi = frames.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (off < frames[mid].doff) hi = mid - 1;
    else if (off >= frames[mid].doff + frames[mid].dlen) lo = mid + 1;
    else return mid;
  }
  return -1;
}

function guess(w, ends, count) {
  const loId = w.loId !== undefined ? w.loId : ends[0];
  const hiId = w.hiId !== undefined ? w.hiId : ends[1];
  if (hiId <= loId) return w.lo;
  const frac = Number(w.id - loId) / Number(hiId - loId);
  return Math.min(w.hi, Math.max(w.lo, w.lo + Math.round(frac * (w.hi - w.lo))));
}

// filters: {field: value | [values]}: a row matches when every field equals (one of) them.
function matches(row, filters) {
  if (!row) return false;
  return Object.entries(filters).every(([k, v]) => (Array.isArray(v) ? v.includes(row[k]) : row[k] === v));
}
