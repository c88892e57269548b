// The direct client against a real nginx serving packs as plain files: the WebAssembly
// core's answers equal the C CLI's (same ids, bit-identical float32 scores) for text and
// vector queries at several probes; its query vectors equal `annpack embed`'s; the
// request pattern; and the refusals (a bad signature, a tampered list, a server that
// ignores Range), each naming the file and the list.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { openPack, openPackset, AnnpackError } from '../client/index.js';
import { annpack, makePacks, WASM } from './fixture.mjs';
import { startNginx } from './nginx.mjs';

let fx;
let host;
let wasm;

before(async () => {
  assert.ok(fs.existsSync(WASM), `${WASM} missing: run npm run build`);
  wasm = fs.readFileSync(WASM);
  fx = makePacks();
  host = await startNginx(fx.root);
});

after(async () => {
  if (host) await host.stop();
  if (fx) fs.rmSync(fx.dir, { recursive: true, force: true });
});

const open = (name, extra = {}) => openPack(`${host.url}${name}/`, { wasm, publicKey: fx.publicKey, ...extra });

const QUERIES = {
  tiny: ['water my houseplants', 'bicycle chain', 'espresso crema', 'x', 'Ünïcödé wörds'],
  synth: ['coffee espresso river', 'piano violin harbour', 'copper falcon canyon', 'thunder'],
};
QUERIES.odd = QUERIES.synth;
// The hash embedder v2 packs (pack.idf), when the CLI builds them: the same queries, and
// ones that exercise its letter/digit parts and rare words.
const V2 = ['tiny2', 'synth2', 'odd2'];
QUERIES.tiny2 = [...QUERIES.tiny, 'ssh2 x86 config', 'PIANO piano piano'];
QUERIES.synth2 = [...QUERIES.synth, 'ferry2 quilt', 'the and of'];
QUERIES.odd2 = QUERIES.synth2;
const v2test = (name, fn) => test(name, (t) => (fx.v2 ? fn() : t.skip('this annpack has no hash embedder v2')));

function cliSearch(dir, text, k, probe) {
  return JSON.parse(annpack('search', dir, text, '-k', k, '--probe', probe));
}

function same(got, want, what) {
  assert.deepEqual(got.results.map((h) => h.id), want.results.map((h) => h.id), `${what}: ids`);
  got.results.forEach((h, i) => {
    // 9 significant digits round-trip a float32 exactly: equal after fround means equal bits.
    assert.equal(h.score, Math.fround(want.results[i].score), `${what}: score of id ${h.id}`);
    assert.deepEqual(h.meta, want.results[i].meta, `${what}: metadata of id ${h.id}`);
  });
}

test('the core scans with the WebAssembly SIMD kernel', async () => {
  const { loadCore } = await import('../client/wasm.js');
  const core = await loadCore(wasm);
  assert.equal(core.kernel(), 'wasm-simd128');
});

test('open: the signature verified, four requests', async () => {
  const before_ = host.requests().length;
  const p = await open('tiny');
  assert.equal(p.signature, 'verified');
  assert.equal(p.keyId, fx.keyId);
  assert.equal(p.nVectors, 40);
  const reqs = (await host.settle(before_ + 4)).slice(before_);
  assert.deepEqual(reqs.map((r) => r.uri).sort(),
    ['/tiny/pack.annpack', '/tiny/pack.digests', '/tiny/pack.manifest.json', '/tiny/pack.manifest.json.sig']);
  assert.equal(reqs.find((r) => r.uri.endsWith('.annpack')).status, 206);
  assert.equal(p.stats.open_requests, 4);
  assert.equal(p.stats.open_rounds, 2);
});

for (const name of ['tiny', 'synth', 'odd', ...V2]) {
  const t = V2.includes(name) ? v2test : test;
  t(`${name}: text queries equal the CLI's at several probes`, async () => {
    const p = await open(name);
    const dir = fx.packs[name];
    for (const text of QUERIES[name]) {
      for (const probe of [1, 3, 8, 100]) {
        const want = cliSearch(dir, text, 10, probe);
        const got = await p.search(text, { k: 10, probe });
        same(got, want, `${name} "${text}" probe ${probe}`);
      }
    }
  });

  t(`${name}: vector queries equal the CLI's, query vectors equal annpack embed's`, async () => {
    const p = await open(name);
    const dir = fx.packs[name];
    for (const text of QUERIES[name]) {
      const cliVec = JSON.parse(annpack('embed', dir, text));
      const v = await p.vector(text);
      assert.equal(v.length, cliVec.length);
      v.forEach((x, i) => assert.equal(x, Math.fround(cliVec[i]), `"${text}" component ${i}`));
      for (const probe of [2, 5]) {
        const got = await p.search(Float32Array.from(cliVec), { k: 7, probe });
        same(got, cliSearch(dir, text, 7, probe), `${name} vector of "${text}" probe ${probe}`);
      }
    }
  });
}

test('synth: per query one round of list ranges, then only the metadata it needs', async () => {
  const p = await open('synth');
  await p.search('warm up the caches', { k: 5, probe: 4 }); // the seek table, idx ends
  const n0 = host.requests().length;
  const r = await p.search('glacier compass saddle', { k: 5, probe: 4 });
  const reqs = (await host.settle(n0 + p.stats.last.requests)).slice(n0);
  const lists = reqs.filter((x) => x.uri.endsWith('pack.annpack'));
  assert.ok(lists.length >= 1 && lists.length <= 4, JSON.stringify(reqs));
  assert.ok(reqs.every((x) => x.status === 206 && x.range), JSON.stringify(reqs));
  assert.equal(reqs.length, p.stats.last.requests);
  // Two rounds: the lists, then the frames (the small id index came with the first query).
  assert.equal(p.stats.last.rounds, 2);
  // The same query again comes from the cache: no request at all.
  const n1 = host.requests().length;
  const again = await p.search('glacier compass saddle', { k: 5, probe: 4 });
  assert.equal(host.requests().length, n1);
  assert.deepEqual(again.results.map((h) => h.id), r.results.map((h) => h.id));
});

test('a pack with the int8 sidecar: pack.sq8 never read, results equal the CLI\'s exact scan', async () => {
  const dir = fx.packs.synth8;
  assert.ok(fs.existsSync(path.join(dir, 'pack.sq8')));
  const n0 = host.requests().length;
  const p = await open('synth8');
  for (const text of QUERIES.synth) {
    for (const probe of [1, 3, 8, 24]) {
      const got = await p.search(text, { k: 10, probe });
      const f16 = JSON.parse(annpack('search', dir, text, '-k', 10, '--probe', probe, '--scan', 'f16'));
      same(got, f16, `synth8 "${text}" probe ${probe}`);
      // --scan auto (the CLI's default here) re-ranks max(64, 8k) int8 candidates exactly:
      // the same hits whenever the exact top k are among them, as on these queries.
      const auto = JSON.parse(annpack('search', dir, text, '-k', 10, '--probe', probe, '--scan', 'auto'));
      same(got, auto, `synth8 "${text}" probe ${probe} against --scan auto`);
    }
  }
  const reqs = (await host.settle(n0 + p.stats.open_requests)).slice(n0);
  assert.ok(reqs.length > 4 && !reqs.some((r) => r.uri.endsWith('pack.sq8')), JSON.stringify(reqs));
});

test('concurrent queries fetch a shared list once', async () => {
  const p = await open('synth');
  await p.search('warm up', { k: 3, probe: 1 });
  const n0 = host.requests().length;
  const [a, b] = await Promise.all([p.search('glacier compass saddle', { k: 5, probe: 24 }),
    p.search('glacier compass saddle', { k: 5, probe: 24 })]);
  assert.deepEqual(a.results, b.results);
  const lists = host.requests().slice(n0).filter((r) => r.uri.endsWith('pack.annpack'));
  const ranges = lists.map((r) => r.range);
  assert.equal(new Set(ranges).size, ranges.length, JSON.stringify(ranges));
});

test('doc(id) and filters', async () => {
  const p = await open('synth');
  const row = await p.doc(4);
  assert.equal(row.id, 4);
  assert.equal(await p.doc(5), null); // ids are 1, 4, 7, ...
  const r = await p.search('coffee espresso', { k: 5, probe: 24, filters: { topic: 'river' } });
  assert.ok(r.results.length > 0 && r.results.every((h) => h.meta.topic === 'river'));
});

async function refused(promise, kind, re) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof AnnpackError, e.stack);
    assert.equal(e.kind, kind, e.message);
    assert.match(e.message, re);
    return true;
  });
}

test('without WebCrypto Ed25519 the signature is checked by libsodium.js', async () => {
  const subtle = globalThis.crypto.subtle;
  const orig = subtle.importKey;
  subtle.importKey = function (fmt, key, alg, ...rest) {
    if (alg && alg.name === 'Ed25519') return Promise.reject(new Error('NotSupportedError'));
    return orig.call(this, fmt, key, alg, ...rest);
  };
  try {
    const p = await open('tiny');
    assert.equal(p.signature, 'verified');
    assert.equal(p.signatureBy, 'libsodium');
    await refused(open('tiny', { publicKey: fx.wrongKey }), 'signature', /bad signature/);
  } finally {
    subtle.importKey = orig;
  }
  assert.equal((await open('tiny')).signatureBy, 'webcrypto');
});

test('a bad signature is refused, naming the manifest', async () => {
  await refused(open('tiny', { publicKey: fx.wrongKey }), 'signature', /pack\.manifest\.json: bad signature/);
});

test('a server that ignores Range is refused, naming the file', async () => {
  await refused(openPack(`${host.urlNoRange}tiny/`, { wasm, publicKey: fx.publicKey }), 'range',
    /pack\.annpack: the server answered 200 to Range/);
});

test('a tampered list is refused, naming the list', async () => {
  const src = fx.packs.tiny;
  const dir = path.join(fx.root, 'tampered');
  fs.cpSync(src, dir, { recursive: true });
  const p = await open('tampered');
  const q = 'water my houseplants';
  const list = p.core.probe(p.centroidsPtr, p.nLists, p.dim, await p.vector(q), 1)[0];
  const r = p.digests.get('pack.annpack').ranges[list + 1];
  const f = path.join(dir, 'pack.annpack');
  const b = fs.readFileSync(f);
  b[r.offset + r.length - 1] ^= 0x40; // one bit of the list's last vector
  fs.writeFileSync(f, b);
  await refused(p.search(q, { k: 3, probe: 1 }), 'digest', new RegExp(`pack\\.annpack: list ${list} \\(bytes`));
});

for (const ps of ['ps', 'ps2']) {
  (ps === 'ps2' ? v2test : test)(`${ps}: the merged view equals the CLI's (text and vector, several probes)`, async () => {
    const p = await openPackset(`${host.url}${ps}/`, { wasm, publicKey: fx.publicKey });
    assert.equal(p.signature, 'verified');
    // Root manifest and signature; layer manifests and digest tables, with the deltas'
    // tombstones; heads (a delta's with all its lists, one range); the base's id index
    // (the live count): 4 rounds, 2 + 3·2 + 2 + 3 + 1 requests. (The client counts a
    // request as a round after the latest one answered before it started: a layer's head
    // can count one more when another layer's head was answered first, so 5 at most.)
    assert.ok(p.stats.open_rounds >= 4 && p.stats.open_rounds <= 5, `${p.stats.open_rounds} rounds`);
    assert.equal(p.stats.open_requests, 14);
    const status = JSON.parse(annpack('packset', 'status', fx.packs[ps]));
    assert.equal(p.nVectors, status.live);
    const texts = [...QUERIES.synth, 'coffee espresso river updated', 'piano violin harbour glacier new',
      'thunder compass saddle another', 'copper falcon canyon back again'];
    let fromDeltas = 0;
    for (const text of texts) {
      for (const probe of [1, 4, 24]) {
        const want = cliSearch(fx.packs[ps], text, 10, probe);
        const got = await p.search(text, { k: 10, probe });
        same(got, want, `${ps} "${text}" probe ${probe}`);
        assert.deepEqual(got.results.map((h) => h.layer), want.results.map((h) => h.layer));
        fromDeltas += got.results.filter((h) => h.layer > 0).length;
      }
      const v = JSON.parse(annpack('embed', fx.packs[ps], text));
      same(await p.search(Float32Array.from(v), { k: 5, probe: 3 }), cliSearch(fx.packs[ps], text, 5, 3), `${ps} vector "${text}"`);
    }
    assert.ok(fromDeltas > 0, 'some hits come from the deltas');
    // Newest mention wins: an update, a tombstone, a re-add, a tombstoned add.
    assert.equal((await p.doc(4)).title, 'updated row');
    assert.equal(await p.doc(1), null);
    assert.equal((await p.doc(7)).title, 'back again');
    assert.equal(await p.doc(100003), null);
    assert.equal((await p.doc(100000)).title, 'new row');
    assert.equal((await p.doc(13)).id, 13);
  });
}

test('packset: a tampered delta list or tombstones file is refused at open, naming it', async () => {
  for (const [file, at, what] of [
    ['pack.annpack', (d) => d.get('pack.annpack').ranges[1].offset + 5, /deltas\/0001\.delta\/pack\.annpack: list 0 \(bytes/],
    ['tombstones.jsonl', () => 2, /deltas\/0001\.delta\/tombstones\.jsonl: its size or SHA-256 differs/]]) {
    const dir = path.join(fx.root, `ps-tampered-${file}`);
    fs.cpSync(fx.packs.ps, dir, { recursive: true });
    const delta = await openPack(`${host.url}ps/deltas/0001.delta/`, { wasm });
    const f = path.join(dir, 'deltas', '0001.delta', file);
    const b = fs.readFileSync(f);
    b[at(delta.digests)] ^= 0x01;
    fs.writeFileSync(f, b);
    await refused(openPackset(`${host.url}ps-tampered-${file}/`, { wasm, publicKey: fx.publicKey }), 'digest', what);
  }
});

test('packset: a bad root signature is refused', async () => {
  await refused(openPackset(`${host.url}ps/`, { wasm, publicKey: fx.wrongKey }), 'signature', /pack\.manifest\.json: bad signature/);
});

test('a tampered metadata frame or index chunk is refused, naming it', async () => {
  for (const [file, what] of [['pack.meta.jsonl.zst', /pack\.meta\.jsonl\.zst: frame 0 \(bytes/],
    ['pack.meta.idx', /pack\.meta\.idx: chunk 0 \(bytes/]]) {
    const dir = path.join(fx.root, `tampered-${file}`);
    fs.cpSync(fx.packs.tiny, dir, { recursive: true });
    const p = await openPack(`${host.url}tampered-${file}/`, { wasm, publicKey: fx.publicKey });
    const f = path.join(dir, file);
    const b = fs.readFileSync(f);
    b[20] ^= 0x01; // inside frame 0 / chunk 0
    fs.writeFileSync(f, b);
    await refused(p.search('water my houseplants', { k: 3, probe: 4 }), 'digest', what);
  }
});

// A fetch that records each request's file and its round trip: a request is in round
// r + 1 when the latest round among the requests answered before it started is r.
function roundRecorder() {
  const rec = { log: [], answered: [] };
  rec.reset = () => { rec.log = []; rec.answered = []; };
  rec.fetch = async (url, init = {}) => {
    const e = { file: new URL(url).pathname, range: (init.headers || {}).Range || null,
      round: 1 + Math.max(0, ...rec.answered) };
    rec.log.push(e);
    const res = await globalThis.fetch(url, init);
    rec.answered.push(e.round);
    return res;
  };
  rec.rounds = () => {
    const out = [];
    for (const e of rec.log) (out[e.round - 1] ||= []).push(e.file.split('/').pop());
    return out.map((r) => r.sort());
  };
  return rec;
}

v2test('v2: open is four requests in two rounds; pack.idf comes with the first text query', async () => {
  const rec = roundRecorder();
  const p = await open('tiny2', { fetch: rec.fetch });
  assert.equal(p.manifest.embedder.version, 2);
  assert.deepEqual(rec.rounds(), [['pack.digests', 'pack.manifest.json', 'pack.manifest.json.sig'], ['pack.annpack']]);
  assert.equal(p.stats.open_requests, 4);
  assert.equal(p.stats.open_rounds, 2);
  // A vector query never needs the table.
  const v = JSON.parse(annpack('embed', fx.packs.tiny2, 'espresso crema'));
  rec.reset();
  await p.search(Float32Array.from(v), { k: 3, probe: 2 });
  assert.ok(!rec.log.some((e) => e.file.endsWith('pack.idf')), JSON.stringify(rec.log));
  // The first text query: pack.idf in one round with nothing it would wait for (the seek
  // table and the small id index are already in: the vector query read them), then the lists.
  rec.reset();
  same(await p.search('water my houseplants', { k: 5, probe: 2 }), cliSearch(fx.packs.tiny2, 'water my houseplants', 5, 2), 'tiny2 after a vector query');
  assert.deepEqual(rec.rounds()[0], ['pack.idf'], JSON.stringify(rec.log));
  assert.ok(rec.rounds().slice(1).flat().every((f) => f !== 'pack.idf'));
  // A fresh pack: the first text query reads pack.idf, the seek table and the id index in
  // one round, then the lists, then the frames; the next text query no pack.idf.
  const q = await open('tiny2', { fetch: rec.fetch });
  rec.reset();
  same(await q.search('espresso crema', { k: 5, probe: 2 }), cliSearch(fx.packs.tiny2, 'espresso crema', 5, 2), 'tiny2 first text query');
  const [first, second, third] = rec.rounds();
  assert.deepEqual(first, ['pack.idf', 'pack.meta.idx', 'pack.meta.jsonl.zst'], JSON.stringify(rec.log));
  assert.ok(second.every((f) => f === 'pack.annpack') && third.every((f) => f === 'pack.meta.jsonl.zst'), JSON.stringify(rec.log));
  assert.equal(rec.rounds().length, 3);
  assert.equal(q.stats.last.rounds, 3); // the client's own count agrees
  rec.reset();
  await q.search('bicycle chain', { k: 5, probe: 2 });
  assert.ok(!rec.log.some((e) => e.file.endsWith('pack.idf')), JSON.stringify(rec.log));
  // prepare() reads them ahead of the query (the page calls it when the user starts typing).
  const r = await open('tiny2', { fetch: rec.fetch });
  rec.reset();
  await r.prepare();
  assert.deepEqual(rec.rounds(), [['pack.idf', 'pack.meta.idx', 'pack.meta.jsonl.zst']]);
  rec.reset();
  await r.search('espresso crema', { k: 5, probe: 2 });
  assert.ok(rec.rounds()[0].every((f) => f === 'pack.annpack'), JSON.stringify(rec.log));
  // A packset opens without any pack.idf, and its first text query loads only the base's.
  rec.reset();
  const ps = await openPackset(`${host.url}ps2/`, { wasm, publicKey: fx.publicKey, fetch: rec.fetch });
  assert.ok(!rec.log.some((e) => e.file.endsWith('pack.idf')), JSON.stringify(rec.log));
  rec.reset();
  await ps.search('coffee espresso river', { k: 5, probe: 3 });
  assert.deepEqual(rec.log.filter((e) => e.file.endsWith('pack.idf')).map((e) => e.file), ['/ps2/base/pack.idf']);
  assert.ok(rec.log.filter((e) => e.file.endsWith('pack.idf'))[0].round === 1);
});

v2test('v2: a tampered pack.idf is refused at the first text query, naming it', async () => {
  const dir = path.join(fx.root, 'tampered-idf');
  fs.cpSync(fx.packs.tiny2, dir, { recursive: true });
  const f = path.join(dir, 'pack.idf');
  const b = fs.readFileSync(f);
  b[40] ^= 0x01; // one document count
  fs.writeFileSync(f, b);
  const p = await openPack(`${host.url}tampered-idf/`, { wasm, publicKey: fx.publicKey });
  await refused(p.search('water my houseplants', { k: 3 }), 'digest',
    /pack\.idf: its size or SHA-256 differs from the manifest's: refused/);
  // Again, and by prepare(): the refusal sticks, without fetching the table again.
  const r0 = p.http.requests;
  await refused(p.search('bicycle chain', { k: 3 }), 'digest', /pack\.idf: its size or SHA-256/);
  await refused(p.prepare(), 'digest', /pack\.idf: its size or SHA-256/);
  assert.equal(p.http.requests, r0);
  // Vector queries do not use the table.
  const v = JSON.parse(annpack('embed', fx.packs.tiny2, 'water my houseplants'));
  same(await p.search(Float32Array.from(v), { k: 3, probe: 2 }), cliSearch(fx.packs.tiny2, 'water my houseplants', 3, 2), 'vector on a pack with a bad pack.idf');
});

v2test('v2: the embedder block must match the listed pack.idf; the core checks the table itself', async () => {
  // Unsigned copies, so the manifest can be edited (a signed one would fail its signature).
  const copy = (name, edit) => {
    const dir = path.join(fx.root, name);
    fs.cpSync(fx.packs.tiny2, dir, { recursive: true });
    fs.rmSync(path.join(dir, 'pack.manifest.json.sig'));
    const mf = path.join(dir, 'pack.manifest.json');
    const m = JSON.parse(fs.readFileSync(mf, 'utf8'));
    edit(m, dir);
    fs.writeFileSync(mf, JSON.stringify(m));
    // The block is checked at open; the table itself when the first text query reads it.
    return openPack(`${host.url}${name}/`, { wasm }).then((p) => p.search('espresso', { k: 1 }));
  };
  await refused(copy('idf-block', (m) => { m.embedder.idf.sha256 = '0'.repeat(64); }), 'format',
    /pack\.manifest\.json: pack\.idf is not listed in files with the embedder block's sha256/);
  // A table whose bucket counts more documents than n_docs, listed consistently: the
  // client's checks pass, the core's ap_idf_parse refuses it by name.
  await refused(copy('idf-counts', (m, dir) => {
    const f = path.join(dir, 'pack.idf');
    const b = fs.readFileSync(f);
    b.writeUInt32LE(b.readUInt32LE(16) + 1, 32); // bucket 0 = n_docs + 1
    fs.writeFileSync(f, b);
    const sha = crypto.createHash('sha256').update(b).digest('hex');
    m.files['pack.idf'].sha256 = sha;
    m.embedder.idf.sha256 = sha;
  }), 'format', /pack\.idf: bucket 0 counts \d+ documents, more than n_docs/);
});
