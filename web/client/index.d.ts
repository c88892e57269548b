// Types of annpack's direct client (web/client/index.js; docs/CLIENT.md).

export type ErrorKind = 'http' | 'range' | 'digest' | 'signature' | 'format' | 'arg' | 'error';

/** Every refusal: the message names the file (and the list, frame or chunk). */
export class AnnpackError extends Error {
  readonly file: string | null;
  readonly list: number | null;
  readonly kind: ErrorKind;
}

export interface OpenOptions {
  /** The Ed25519 public key (PEM, as `annpack keygen` writes it). When given, the
   *  manifest's signature must verify with it; when absent, signature is 'unchecked'. */
  publicKey?: string;
  /** The WebAssembly core: its URL or bytes. Default: the build's own file, fetched with
   *  its Subresource Integrity hash. */
  wasm?: string | URL | ArrayBuffer | Uint8Array;
  /** Bytes of verified lists, index chunks and decompressed frames kept (default 64 MiB). */
  cacheBytes?: number;
  /** Read a manifest whose `expires` has passed (default: refused). */
  allowExpired?: boolean;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** The fetch cache mode of range requests (default 'no-store': the client's LRU holds
   *  verified pieces; 'default' lets the browser's HTTP cache keep them across pages). */
  httpCache?: RequestCache;
  /** Extra request headers (e.g. an authorisation header of a private CDN). */
  headers?: Record<string, string>;
}

export interface SearchOptions {
  /** Results, 1..1000 (default 10). */
  k?: number;
  /** Lists scanned (default 8; at least n_lists is an exact search). */
  probe?: number;
  /** Keep only hits whose metadata field equals the value (or one of the values). */
  filters?: Record<string, unknown | unknown[]>;
}

export interface Hit {
  /** A Number when below 2^53, else a BigInt. */
  id: number | bigint;
  /** The float32 score, bit-identical to `annpack search`'s. */
  score: number;
  /** 0 = base. */
  layer: number;
  /** The document's metadata row. */
  meta: Record<string, unknown>;
}

export interface SearchResult {
  k: number;
  probe: number;
  took_ms: number;
  /** The lists scanned, best first. */
  lists: number[];
  results: Hit[];
}

export interface PackStats {
  open_ms: number;
  open_requests: number;
  open_bytes: number;
  /** Network round trips of the open (requests in parallel count once). */
  open_rounds: number;
  queries: number;
  last?: { lists: number; requests: number; bytes: number; rounds: number; lists_ms: number; took_ms: number };
}

export class Pack {
  readonly manifest: Record<string, unknown>;
  /** 'verified' (with keyId) or 'unchecked' (no public key configured). */
  readonly signature: 'verified' | 'unchecked';
  /** Which library checked the signature. */
  readonly signatureBy: 'webcrypto' | 'libsodium' | null;
  readonly keyId: string | null;
  readonly dim: number;
  readonly nLists: number;
  readonly nVectors: number;
  readonly stats: PackStats;
  /** Text (embedded in WebAssembly with the pack's hash embedder, v1 or v2 with its pack.idf) or a vector of dim. */
  search(query: string | Float32Array | number[], opts?: SearchOptions): Promise<SearchResult>;
  /** The metadata row of id, or null when the pack has none. */
  doc(id: number | bigint): Promise<Record<string, unknown> | null>;
  /** The query vector of text, as `annpack embed` prints it (for the hash embedder v2,
   *  after its pack.idf is read: the first call fetches it). */
  vector(query: string | Float32Array | number[]): Promise<Float32Array>;
  /** Fetches, in one round, what the first query needs whatever it asks (the metadata seek
   *  table, the id index or its ends and, unless text is false, the hash embedder v2's
   *  pack.idf), so that the first query needs only its lists and frames. Optional: the
   *  first query does it itself. A page calls it when the user starts typing. */
  prepare(opts?: { text?: boolean }): Promise<void>;
}

/** Opens the pack directory at url (ending in '/'): manifest, signature, digest table and
 *  head (at most 4 requests in 2 rounds); everything checked before use. */
export function openPack(url: string, opts?: OpenOptions): Promise<Pack>;
/** A packset's merged view (base + deltas − tombstones); the same search and doc. */
export class Packset extends Pack {
  readonly layers: Pack[];
}
export function openPackset(url: string, opts?: OpenOptions): Promise<Packset>;
