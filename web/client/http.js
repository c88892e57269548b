// HTTP for a pack on a static host: whole small files, and byte ranges that must come back
// as 206 with exactly the bytes asked for. A server (or cache) that ignores Range answers
// 200 with the whole file: those are not the bytes asked for, so they are refused.
import { AnnpackError } from './errors.js';

// Network round trips, for the stats: a request is in round r + 1 when the latest round
// among the requests answered (body read) before it started is r. Exact for a query (its
// phases wait for one another); for independent chains in parallel (a packset's layers)
// an upper bound, as one chain's answer can bump another's next request. One tracker is
// shared by a packset's layers; reset() starts a new count (an open, a query).
export class Rounds {
  constructor() { this.reset(); }
  reset() { this.answered = 0; this.count = 0; }
  start() { const r = this.answered + 1; this.count = Math.max(this.count, r); return r; }
  done(r) { this.answered = Math.max(this.answered, r); }
}

export class Http {
  constructor(base, { fetch: f = globalThis.fetch.bind(globalThis), headers = {}, label = '', httpCache = 'no-store', rounds = new Rounds() } = {}) {
    this.rounds = rounds;
    this.label = label; // prefixes file names in errors (a packset layer's path)
    this.cache = httpCache; // the fetch cache mode of range requests
    this.base = base.endsWith('/') ? base : `${base}/`;
    this.fetch = f;
    this.headers = headers;
    this.requests = 0; // requests made (for the stats)
    this.bytes = 0; // body bytes received
  }

  url(name) {
    return new URL(name, this.base).href;
  }

  async get(name, { optional = false } = {}) {
    let res;
    this.requests++;
    const round = this.rounds.start();
    try {
      res = await this.fetch(this.url(name), { headers: this.headers });
    } catch (e) {
      throw new AnnpackError(`${this.label}${name}: the server did not answer (${e.message})`, { file: `${this.label}${name}`, kind: 'http' });
    }
    if (optional && res.status === 404) {
      this.rounds.done(round);
      return null;
    }
    if (res.status !== 200) {
      throw new AnnpackError(`${this.label}${name}: HTTP ${res.status}`, { file: `${this.label}${name}`, kind: 'http' });
    }
    const buf = new Uint8Array(await res.arrayBuffer());
    this.rounds.done(round);
    this.bytes += buf.length;
    return buf;
  }

  // Bytes [start, end) of name, whose size is fileSize (from the signed manifest).
  async range(name, start, end, fileSize) {
    if (end <= start) return new Uint8Array(0);
    let res;
    this.requests++;
    const round = this.rounds.start();
    try {
      // no-store: the client's own LRU caches verified pieces; the browser's HTTP cache
      // would otherwise revalidate or re-request parts of cached ranges on its own.
      res = await this.fetch(this.url(name), {
        headers: { ...this.headers, Range: `bytes=${start}-${end - 1}` }, cache: this.cache,
      });
    } catch (e) {
      throw new AnnpackError(`${this.label}${name}: the server did not answer a range request (${e.message})`,
        { file: `${this.label}${name}`, kind: 'http' });
    }
    if (res.status === 200) {
      // Cancel the body: it is the whole file, not what was asked for.
      try { await res.body?.cancel(); } catch { /* already closed */ }
      throw new AnnpackError(`${this.label}${name}: the server answered 200 to Range bytes=${start}-${end - 1} ` +
        '(it ignores Range requests, so its bytes are not the ones asked for): refused',
        { file: `${this.label}${name}`, kind: 'range' });
    }
    if (res.status !== 206) {
      throw new AnnpackError(`${this.label}${name}: HTTP ${res.status} to Range bytes=${start}-${end - 1}`,
        { file: `${this.label}${name}`, kind: 'http' });
    }
    const cr = res.headers.get('Content-Range'); // null cross-origin unless exposed (CORS)
    if (cr !== null) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr.trim());
      if (!m || Number(m[1]) !== start || Number(m[2]) !== end - 1 ||
          (m[3] !== '*' && fileSize !== undefined && Number(m[3]) !== fileSize)) {
        throw new AnnpackError(`${this.label}${name}: Content-Range "${cr}" is not bytes ${start}-${end - 1}/${fileSize}`,
          { file: `${this.label}${name}`, kind: 'range' });
      }
    }
    const buf = new Uint8Array(await res.arrayBuffer());
    this.rounds.done(round);
    this.bytes += buf.length;
    if (buf.length !== end - start) {
      throw new AnnpackError(`${this.label}${name}: ${buf.length} bytes for Range bytes=${start}-${end - 1} ` +
        `(${end - start} asked)`, { file: `${this.label}${name}`, kind: 'range' });
    }
    return buf;
  }
}

// Sorted, coalesced spans covering the given [start, end) ranges when they touch: one
// request per span. Returns [{start, end, parts: [index into ranges]}].
export function mergeRanges(ranges) {
  const order = ranges.map((r, i) => i).filter((i) => ranges[i].end > ranges[i].start)
    .sort((a, b) => ranges[a].start - ranges[b].start);
  const spans = [];
  for (const i of order) {
    const r = ranges[i];
    const last = spans[spans.length - 1];
    if (last && r.start <= last.end) {
      last.end = Math.max(last.end, r.end);
      last.parts.push(i);
    } else {
      spans.push({ start: r.start, end: r.end, parts: [i] });
    }
  }
  return spans;
}
