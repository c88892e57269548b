// The C core in WebAssembly (web/wasm/annpack_wasm.c): instantiation and thin typed calls.
// Every score, every list choice and every query vector comes from it; this file only
// copies bytes in and results out.
import { AnnpackError } from './errors.js';
import { sodium } from './sodium.js';

const ENOSYS = 52;

const shared = new Map(); // one core per source (a pack's pointers are into its core)

// source: a URL (string or URL), bytes (ArrayBuffer / Uint8Array), or undefined for the
// build's own file (next to the page, pinned by its SRI hash).
export function loadCore(source) {
  const key = source === undefined ? '' : source;
  if (!shared.has(key)) shared.set(key, instantiate(source));
  return shared.get(key);
}

async function bytesOf(source) {
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) return source;
  let url = source;
  let integrity;
  if (url === undefined) {
    /* global ANNPACK_WASM_NAME, ANNPACK_WASM_INTEGRITY */
    if (typeof ANNPACK_WASM_NAME === 'undefined' || !ANNPACK_WASM_NAME) {
      throw new AnnpackError('the WebAssembly core is not built: run npm run build in web/', { kind: 'arg' });
    }
    if (!globalThis.document) throw new AnnpackError('outside a page, pass the core as opts.wasm (its bytes or URL)', { kind: 'arg' });
    url = new URL(ANNPACK_WASM_NAME, document.baseURI);
    integrity = ANNPACK_WASM_INTEGRITY;
  }
  const res = await fetch(url, integrity ? { integrity } : {});
  if (!res.ok) throw new AnnpackError(`${url}: HTTP ${res.status}`, { file: String(url), kind: 'http' });
  return res.arrayBuffer();
}

async function instantiate(source) {
  const [bytes, s] = await Promise.all([bytesOf(source), sodium()]);
  let mem = null;
  const u8 = () => new Uint8Array(mem.buffer);
  const imports = {
    sodium: {
      // int crypto_shorthash(out, in, unsigned long long inlen, key)
      crypto_shorthash(out, inp, inlen, key) {
        const m = u8();
        const n = Number(inlen);
        const h = s.crypto_shorthash(m.slice(inp, inp + n), m.slice(key, key + 16));
        u8().set(h, out);
        return 0;
      },
    },
    // The core never opens files; wasi-libc's stdio links these in but nothing calls them.
    wasi_snapshot_preview1: {
      fd_close: () => ENOSYS, fd_seek: () => ENOSYS, fd_write: () => ENOSYS,
    },
  };
  const { instance } = await WebAssembly.instantiate(bytes, imports);
  mem = instance.exports.memory;
  instance.exports._initialize();
  return new Core(instance.exports);
}

export class Core {
  constructor(x) {
    this.x = x;
  }

  get u8() {
    return new Uint8Array(this.x.memory.buffer);
  }

  alloc(n) {
    const p = this.x.apw_malloc(n);
    if (!p) throw new AnnpackError(`WebAssembly core: out of memory (${n} bytes)`);
    return p;
  }

  put(bytes) {
    const p = this.alloc(bytes.byteLength);
    this.u8.set(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), p);
    return p;
  }

  cstr(s) {
    return this.put(new TextEncoder().encode(`${s}\0`));
  }

  free(...ps) {
    for (const p of ps) if (p) this.x.apw_free(p);
  }

  // The f16 kernel's name ('wasm-simd128', or 'portable').
  kernel() {
    return this.cstrAt(this.x.apw_kernel());
  }

  cstrAt(p) {
    const m = this.u8;
    let e = p;
    while (m[e]) e++;
    return new TextDecoder().decode(m.subarray(p, e));
  }

  error() {
    const p = this.x.apw_error();
    const m = this.u8;
    let e = p;
    while (m[e]) e++;
    return new TextDecoder().decode(m.subarray(p, e));
  }

  // {dim, n_lists, n_vectors, offset_table_pos} of an ANNP file's first bytes.
  header(bytes, fileSize, name) {
    const b = this.put(bytes);
    const n = this.cstr(name);
    const out = this.alloc(24);
    try {
      if (this.x.apw_header(b, bytes.length, BigInt(fileSize), n, out) !== 0) {
        throw new AnnpackError(this.error(), { file: name, kind: 'format' });
      }
      const dv = new DataView(this.x.memory.buffer, out, 24);
      return { dim: dv.getUint32(0, true), n_lists: dv.getUint32(4, true),
        n_vectors: dv.getUint32(8, true), offset_table_pos: Number(dv.getBigUint64(16, true)) };
    } finally {
      this.free(b, n, out);
    }
  }

  // The query vector of text under the hash embedder (as `annpack embed`).
  embedHash(text, dim, seed) {
    const t = this.put(new TextEncoder().encode(text));
    const out = this.alloc(dim * 4);
    try {
      if (this.x.apw_embed_hash(dim, BigInt(seed), t, new TextEncoder().encode(text).length, out) !== 0) {
        throw new AnnpackError(this.error(), { kind: 'arg' });
      }
      return new Float32Array(this.x.memory.buffer.slice(out, out + dim * 4));
    } finally {
      this.free(t, out);
    }
  }

  // A resident copy of the centroids (n_lists x dim float32), for probe().
  centroids(f32) {
    return this.put(new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength));
  }

  probe(centroidsPtr, nLists, dim, q, probe) {
    const qp = this.put(new Uint8Array(q.buffer, q.byteOffset, q.byteLength));
    const out = this.alloc(4 * Math.max(1, Math.min(probe, nLists)));
    try {
      const n = this.x.apw_probe(centroidsPtr, nLists, dim, qp, probe, out);
      return Array.from(new Uint32Array(this.x.memory.buffer, out, n));
    } finally {
      this.free(qp, out);
    }
  }

  // Resolved mentions of a packset's deltas, resident: [{id: BigInt, layer}] -> {ptr, n}.
  mentions(list) {
    const buf = new Uint8Array(16 * Math.max(1, list.length));
    const dv = new DataView(buf.buffer);
    list.forEach((m, i) => { dv.setBigUint64(16 * i, m.id, true); dv.setUint32(16 * i + 8, m.layer, true); });
    const ptr = this.put(buf);
    return { ptr, n: this.x.apw_mentions_resolve(ptr, list.length) };
  }

  // The list each f16 vector (rows of 2 * dim bytes in vecs) is grouped under.
  assign(centroidsPtr, nLists, dim, vecs, n) {
    const vp = this.put(vecs);
    const out = this.alloc(4 * Math.max(1, n));
    try {
      if (this.x.apw_assign(centroidsPtr, nLists, dim, vp, n, out) !== 0) throw new AnnpackError(this.error());
      return Array.from(new Uint32Array(this.x.memory.buffer, out, n));
    } finally {
      this.free(vp, out);
    }
  }

  // Dead bits of a stored list of layer under resident mentions, and its count.
  deadBits(mentions, bytes, dim, layer, index, name) {
    const p = this.put(bytes);
    const np = this.cstr(name);
    try {
      const count = this.x.apw_list_count(p, BigInt(bytes.length), dim, index, np);
      if (count < 0n) throw new AnnpackError(this.error(), { file: name, list: index, kind: 'format' });
      const c = Number(count);
      const d = this.alloc((c + 7) >> 3);
      const live = this.x.apw_dead_bits(mentions.ptr, mentions.n, p, c, layer, d);
      const dead = this.u8.slice(d, d + ((c + 7) >> 3));
      this.free(d);
      return { count: c, live, dead };
    } finally {
      this.free(p, np);
    }
  }

  // One query's scan: lists = [{bytes, index, layer, file, dead?}] (verified bytes; layer
  // is what hits report; dead: bits of dead vectors), q = Float32Array.
  // Returns [{id (Number when safe, else BigInt), score, layer}] best first.
  search(q, k, lists, dim) {
    const t = this.x.apw_topk_new(k);
    if (!t) throw new AnnpackError(`k = ${k} outside [1, 1000]`, { kind: 'arg' });
    const qp = this.put(new Uint8Array(q.buffer, q.byteOffset, q.byteLength));
    try {
      for (const l of lists) {
        const p = this.put(l.bytes);
        const np = this.cstr(l.file);
        const dp = l.dead ? this.put(l.dead) : 0;
        try {
          const count = this.x.apw_list_count(p, BigInt(l.bytes.length), dim, l.index, np);
          if (count < 0n) throw new AnnpackError(this.error(), { file: l.file, list: l.index, kind: 'format' });
          this.x.apw_scan(t, qp, dim, p, Number(count), dp, 0n, l.layer || 0);
        } finally {
          this.free(p, np, dp);
        }
      }
      const n = this.x.apw_topk_finish(t);
      const hp = this.x.apw_topk_hits(t);
      const dv = new DataView(this.x.memory.buffer, hp, 16 * n);
      const hits = [];
      for (let i = 0; i < n; i++) {
        const id = dv.getBigUint64(16 * i, true);
        hits.push({ id: id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : id,
          score: dv.getFloat32(16 * i + 8, true), layer: dv.getUint32(16 * i + 12, true) });
      }
      return hits;
    } finally {
      this.free(qp);
      this.x.apw_topk_free(t);
    }
  }
}
