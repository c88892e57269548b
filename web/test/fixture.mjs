// Test packs built with the real CLI (ANNPACK_BUILD, default ../../build), which writes
// pack.digests: the examples' tiny pack, a larger synthetic one (several idx chunks and
// zstd frames), one of dim 50 and a packset, each signed with a fresh key; under the hash
// embedder v1 and, when the CLI has it, v2 (with pack.idf).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');
export const BUILD = process.env.ANNPACK_BUILD || path.join(ROOT, 'build');
export const ANNPACK = path.join(BUILD, 'tools', 'annpack');
export const WASM = path.join(ROOT, 'web', 'dist', 'annpack.wasm');

export function annpack(...args) {
  return execFileSync(ANNPACK, args.map(String), { encoding: 'utf8', maxBuffer: 64 << 20 });
}

const WORDS = ('river mountain coffee espresso garden tomato bicycle chain kettle bread yeast ' +
  'violin guitar piano harbour lantern meadow orchard pepper basil winter summer ferry ' +
  'glacier canyon desert thunder compass saddle pottery quilt marble copper falcon').split(' ');

function synthetic(n, seed) {
  let x = seed >>> 0;
  const rnd = () => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return x / 2 ** 32; };
  const rows = ['id,title,text,topic'];
  for (let i = 0; i < n; i++) {
    const w = Array.from({ length: 8 }, () => WORDS[Math.floor(rnd() * WORDS.length)]);
    rows.push(`${i * 3 + 1},${w[0]} ${w[1]},${w.join(' ')},${w[2]}`);
  }
  return `${rows.join('\n')}\n`;
}

// Whether this annpack has the hash embedder v2 (then its build takes --embedder-version).
export function hasV2() {
  let help = '';
  try {
    help = execFileSync(ANNPACK, ['build', '--help'], { encoding: 'utf8' });
  } catch (e) {
    help = `${e.stdout || ''}`;
  }
  return help.includes('--embedder-version');
}

// Packs for one embedder version (suffix '' for v1, '2' for v2: tiny2, synth2, odd2, ps2).
function buildSet(dir, packs, suffix, ver) {
  const build = (name, csv, lists, ...extra) => {
    const out = path.join(dir, 'root', name + suffix);
    annpack('build', '--input', csv, '--text-col', 'text', '--id-col', 'id', '--output', out,
      '--lists', lists, '--seed', 1, ...ver, ...extra);
    annpack('sign', out, '--key', path.join(dir, 'k.pem'));
    packs[name + suffix] = out;
  };
  build('tiny', path.join(ROOT, 'examples', 'tiny_docs.csv'), 4);
  build('synth', path.join(dir, 'synth.csv'), 24);
  // dim 50 = 32 + 16 + 2: every part of the kernels' summation order (docs: search.h).
  build('odd', path.join(dir, 'synth.csv'), 9, '--dim', 50);
  // With the int8 sidecar (pack.sq8), which the client does not read (docs/CLIENT.md).
  build('synth8', path.join(dir, 'synth.csv'), 24, '--sq8');
  // A packset over the synthetic rows: two deltas with adds, updates and tombstones,
  // one tombstoning an id the first delta added and re-adding one it deleted.
  const ps = path.join(dir, 'root', `ps${suffix}`);
  annpack('packset', 'build-base', '--input', path.join(dir, 'synth.csv'), '--text-col', 'text',
    '--id-col', 'id', '--packset', ps, '--lists', 24, '--seed', 1, ...ver);
  annpack('packset', 'build-delta', '--packset', ps, '--out', path.join(ps, 'deltas', '0001.delta'),
    '--add', path.join(dir, 'add1.csv'), '--delete-ids', '1,7,10');
  annpack('packset', 'build-delta', '--packset', ps, '--out', path.join(ps, 'deltas', '0002.delta'),
    '--add', path.join(dir, 'add2.csv'), '--delete-ids', '100003');
  annpack('sign', ps, '--key', path.join(dir, 'k.pem'));
  packs[`ps${suffix}`] = ps;
}

// v1 packs always (tiny, synth, odd, ps); with an annpack that has the hash embedder v2,
// the same packs under v2 too (tiny2, synth2, odd2, ps2). fx.v2: whether there are.
export function makePacks() {
  const v2 = hasV2();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'annpack-client-'));
  const key = JSON.parse(annpack('keygen', '--out', path.join(dir, 'k')));
  const packs = {};
  fs.mkdirSync(path.join(dir, 'root'));
  fs.writeFileSync(path.join(dir, 'synth.csv'), synthetic(3000, 7));
  fs.writeFileSync(path.join(dir, 'add1.csv'), 'id,title,text,topic\n' +
    '4,updated row,coffee espresso river updated,river\n' +
    '100000,new row,piano violin harbour glacier new,harbour\n' +
    '100003,another,thunder compass saddle another,saddle\n');
  fs.writeFileSync(path.join(dir, 'add2.csv'), 'id,title,text,topic\n' +
    '7,back again,copper falcon canyon back again,canyon\n');
  buildSet(dir, packs, '', v2 ? ['--embedder-version', 1] : []);
  if (v2) buildSet(dir, packs, '2', ['--embedder-version', 2]);
  return { dir, root: path.join(dir, 'root'), packs, v2, publicKey: fs.readFileSync(path.join(dir, 'k.pub'), 'utf8'),
    keyId: key.key_id, wrongKey: (() => { annpack('keygen', '--out', path.join(dir, 'w')); return fs.readFileSync(path.join(dir, 'w.pub'), 'utf8'); })() };
}
