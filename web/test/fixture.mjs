// Test packs built with the real CLI (ANNPACK_BUILD, default ../../build), which writes
// pack.digests: the examples' tiny pack, a larger synthetic one (several idx chunks and
// zstd frames), one of dim 50 and a packset, each signed with a fresh key.
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

// The client runs the hash embedder v1 in WebAssembly; an annpack whose default is v2
// (pack.idf, not read by the client yet) is asked for v1.
function v1Args() {
  let help = '';
  try {
    help = execFileSync(ANNPACK, ['build', '--help'], { encoding: 'utf8' });
  } catch (e) {
    help = `${e.stdout || ''}`;
  }
  return help.includes('--embedder-version') ? ['--embedder-version', 1] : [];
}

export function makePacks() {
  const v1 = v1Args();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'annpack-client-'));
  const key = JSON.parse(annpack('keygen', '--out', path.join(dir, 'k')));
  const packs = {};
  const build = (name, csv, lists, ...extra) => {
    const out = path.join(dir, 'root', name);
    annpack('build', '--input', csv, '--text-col', 'text', '--id-col', 'id', '--output', out,
      '--lists', lists, '--seed', 1, ...v1, ...extra);
    annpack('sign', out, '--key', path.join(dir, 'k.pem'));
    packs[name] = out;
  };
  fs.mkdirSync(path.join(dir, 'root'));
  build('tiny', path.join(ROOT, 'examples', 'tiny_docs.csv'), 4);
  fs.writeFileSync(path.join(dir, 'synth.csv'), synthetic(3000, 7));
  build('synth', path.join(dir, 'synth.csv'), 24);
  // dim 50 = 32 + 16 + 2: every part of the kernels' summation order (docs: search.h).
  build('odd', path.join(dir, 'synth.csv'), 9, '--dim', 50);
  // A packset over the synthetic rows: two deltas with adds, updates and tombstones,
  // one tombstoning an id the first delta added and re-adding one it deleted.
  const ps = path.join(dir, 'root', 'ps');
  annpack('packset', 'build-base', '--input', path.join(dir, 'synth.csv'), '--text-col', 'text',
    '--id-col', 'id', '--packset', ps, '--lists', 24, '--seed', 1, ...v1);
  fs.writeFileSync(path.join(dir, 'add1.csv'), 'id,title,text,topic\n' +
    '4,updated row,coffee espresso river updated,river\n' +
    '100000,new row,piano violin harbour glacier new,harbour\n' +
    '100003,another,thunder compass saddle another,saddle\n');
  annpack('packset', 'build-delta', '--packset', ps, '--out', path.join(ps, 'deltas', '0001.delta'),
    '--add', path.join(dir, 'add1.csv'), '--delete-ids', '1,7,10');
  fs.writeFileSync(path.join(dir, 'add2.csv'), 'id,title,text,topic\n' +
    '7,back again,copper falcon canyon back again,canyon\n');
  annpack('packset', 'build-delta', '--packset', ps, '--out', path.join(ps, 'deltas', '0002.delta'),
    '--add', path.join(dir, 'add2.csv'), '--delete-ids', '100003');
  annpack('sign', ps, '--key', path.join(dir, 'k.pem'));
  packs.ps = ps;
  return { dir, root: path.join(dir, 'root'), packs, publicKey: fs.readFileSync(path.join(dir, 'k.pub'), 'utf8'),
    keyId: key.key_id, wrongKey: (() => { annpack('keygen', '--out', path.join(dir, 'w')); return fs.readFileSync(path.join(dir, 'w.pub'), 'utf8'); })() };
}
