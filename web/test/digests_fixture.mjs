// Test fixture only: writes pack.digests (the agreed layout, docs/FORMAT.md) into a pack
// directory built by an annpack that does not write it yet, and lists it in the manifest's
// files (so signing covers it). Usage: node digests_fixture.mjs PACK_DIR
// Remove once `annpack build` writes pack.digests itself (issue 18).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CHUNK = 65536;

function cuts(name, buf) {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (name === 'pack.annpack') {
    const dim = dv.getUint32(20, true);
    const nLists = dv.getUint32(28, true);
    const table = Number(dv.getBigUint64(36, true));
    const out = [[0, 72 + 4 * nLists * dim]];
    for (let i = 0; i < nLists; i++) {
      out.push([Number(dv.getBigUint64(table + 16 * i, true)), Number(dv.getBigUint64(table + 16 * i + 8, true))]);
    }
    out.push([table, buf.length - table]);
    return out;
  }
  if (name.endsWith('.zst')) {
    const n = dv.getUint32(buf.length - 9, true);
    const seekLen = 8 + 8 * n + 9;
    const seekAt = buf.length - seekLen;
    const out = [];
    let pos = 0;
    for (let f = 0; f < n; f++) {
      const c = dv.getUint32(seekAt + 8 + 8 * f, true);
      out.push([pos, c]);
      pos += c;
    }
    out.push([seekAt, seekLen]);
    return out;
  }
  const out = [];
  for (let p = 0; p < buf.length; p += CHUNK) out.push([p, Math.min(CHUNK, buf.length - p)]);
  if (!out.length) out.push([0, 0]);
  return out;
}

export function writeDigests(dir) {
  const mpath = path.join(dir, 'pack.manifest.json');
  const manifest = JSON.parse(fs.readFileSync(mpath, 'utf8'));
  const names = Object.keys(manifest.files).filter((n) => n !== 'pack.digests').sort();
  const tables = names.map((n) => {
    const buf = fs.readFileSync(path.join(dir, n));
    return { name: n, size: buf.length, ranges: cuts(n, buf).map(([o, l]) => ({ o, l, h: createHash('sha256').update(buf.subarray(o, o + l)).digest() })) };
  });
  let at = 16 + 64 * tables.length;
  const total = at + tables.reduce((s, t) => s + 48 * t.ranges.length, 0);
  const out = Buffer.alloc(total);
  out.write('APDIGST1', 0, 'latin1');
  out.writeUInt32LE(1, 8);
  out.writeUInt32LE(tables.length, 12);
  tables.forEach((t, i) => {
    const e = 16 + 64 * i;
    out.write(t.name, e, 'latin1');
    out.writeBigUInt64LE(BigInt(t.size), e + 32);
    out.writeUInt32LE(t.ranges.length, e + 40);
    out.writeBigUInt64LE(BigInt(at), e + 48);
    for (const r of t.ranges) {
      out.writeBigUInt64LE(BigInt(r.o), at);
      out.writeBigUInt64LE(BigInt(r.l), at + 8);
      r.h.copy(out, at + 16);
      at += 48;
    }
  });
  fs.writeFileSync(path.join(dir, 'pack.digests'), out);
  const files = {};
  for (const n of [...Object.keys(manifest.files).filter((x) => x !== 'pack.digests'), 'pack.digests'].sort()) {
    files[n] = n === 'pack.digests' ? { size: out.length, sha256: createHash('sha256').update(out).digest('hex') } : manifest.files[n];
  }
  manifest.files = files;
  fs.writeFileSync(mpath, JSON.stringify(manifest, null, '\t'));
  fs.rmSync(`${mpath}.sig`, { force: true });
}

const sha = (b) => createHash('sha256').update(b).digest('hex');

// A packset: pack.digests in the base and every delta, then the hashes that chain to their
// pack manifests (the delta manifests' and the root manifest's) updated to match.
export function writeDigestsPackset(dir) {
  const rpath = path.join(dir, 'pack.manifest.json');
  const root = JSON.parse(fs.readFileSync(rpath, 'utf8'));
  for (const layer of [root.base, ...root.deltas]) {
    const ldir = path.join(dir, layer.path);
    writeDigests(ldir);
    const mbytes = fs.readFileSync(path.join(ldir, 'pack.manifest.json'));
    layer.sha256_manifest = sha(mbytes);
    if (layer.delta_manifest) {
      const dpath = path.join(dir, layer.delta_manifest);
      const dm = JSON.parse(fs.readFileSync(dpath, 'utf8'));
      dm.files['pack.manifest.json'] = { size: mbytes.length, sha256: sha(mbytes) };
      fs.writeFileSync(dpath, JSON.stringify(dm, null, '\t'));
      layer.sha256_delta_manifest = sha(fs.readFileSync(dpath));
    }
  }
  fs.writeFileSync(rpath, JSON.stringify(root, null, '\t'));
  fs.rmSync(`${rpath}.sig`, { force: true });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const d = process.argv[2];
  const m = JSON.parse(fs.readFileSync(path.join(d, 'pack.manifest.json'), 'utf8'));
  if (m.format === 'annpack-packset') writeDigestsPackset(d); else writeDigests(d);
}
