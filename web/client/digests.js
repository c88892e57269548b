// pack.digests: the signed per-range SHA-256 table (docs/FORMAT.md, "pack.digests"), and
// checking fetched bytes against it with WebCrypto's SHA-256.
import { AnnpackError } from './errors.js';

const MAGIC = 'APDIGST1';
const ENTRY = 64;
const RANGE = 48;

function u64(dv, off) {
  const v = dv.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('u64 beyond 2^53');
  return Number(v);
}

// name -> {size, ranges: [{offset, length, sha256: Uint8Array(32)}]}; checks the rules
// (sorted unique names, ranges tiling each file in order).
export function parseDigests(buf, file = 'pack.digests') {
  const bad = (why) => new AnnpackError(`${file}: ${why}`, { file, kind: 'format' });
  if (buf.length < 16 || new TextDecoder().decode(buf.subarray(0, 8)) !== MAGIC) throw bad('wrong magic (not APDIGST1)');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== 1) throw bad(`version ${version} not supported (need 1)`);
  const n = dv.getUint32(12, true);
  if (16 + n * ENTRY > buf.length) throw bad(`${n} file entries do not fit ${buf.length} bytes`);
  const files = new Map();
  let prev = null;
  for (let i = 0; i < n; i++) {
    const e = 16 + i * ENTRY;
    const raw = buf.subarray(e, e + 32);
    const nul = raw.indexOf(0);
    const name = new TextDecoder().decode(raw.subarray(0, nul < 0 ? 32 : nul));
    if (!name || (prev !== null && name <= prev)) throw bad(`file entry ${i} ("${name}") not in name order`);
    prev = name;
    let size, nr, at;
    try {
      size = u64(dv, e + 32);
      nr = dv.getUint32(e + 40, true);
      at = u64(dv, e + 48);
    } catch (x) {
      throw bad(`file entry ${name}: ${x.message}`);
    }
    if (at + nr * RANGE > buf.length || at < 16 + n * ENTRY) throw bad(`${name}: range table outside the file`);
    const ranges = [];
    let pos = 0;
    for (let k = 0; k < nr; k++) {
      const r = at + k * RANGE;
      const offset = u64(dv, r);
      const length = u64(dv, r + 8);
      if (offset !== pos) throw bad(`${name}: range ${k} starts at ${offset}, not ${pos}`);
      pos += length;
      ranges.push({ offset, length, sha256: buf.slice(r + 16, r + 48) });
    }
    if (pos !== size) throw bad(`${name}: ranges end at ${pos}, the file has ${size} bytes`);
    files.set(name, { size, ranges });
  }
  return files;
}

export async function sha256(bytes) {
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes));
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

// Checks bytes (exactly digest range r of file) against its SHA-256; what names the piece
// in the error ("list 3", "frame 0", "the head").
export async function checkRange(file, r, bytes, what) {
  const got = await sha256(bytes);
  if (bytes.length !== r.length || !equal(got, r.sha256)) {
    throw new AnnpackError(`${file}: ${what} (bytes ${r.offset}-${r.offset + r.length - 1}) ` +
      `does not match its SHA-256 in pack.digests: refused`, { file, kind: 'digest' });
  }
}

// Checks a whole small file against the manifest's sha256 (hex).
export async function checkWhole(file, bytes, want) {
  if (bytes.length !== want.size || hex(await sha256(bytes)) !== want.sha256) {
    throw new AnnpackError(`${file}: its size or SHA-256 differs from the manifest's: refused`,
      { file, kind: 'digest' });
  }
}
