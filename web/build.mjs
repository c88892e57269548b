// `npm run build`: the search page and its direct client into web/dist/.
//   1. the C core in WebAssembly (wasm/build.sh -> dist/annpack.wasm), copied under a
//      content-hashed name;
//   2. app.js and everything it imports (the client, fzstd, libsodium.js) bundled and
//      minified by esbuild into one script, style.css minified, both content-hashed;
//   3. index.html with those names and their Subresource Integrity (sha384) attributes.
// The bundle learns the wasm file's name and SRI hash through esbuild's `define`, and the
// client fetches it with that integrity, so every byte the page runs is pinned by the page.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'dist');
const sri = (buf) => `sha384-${createHash('sha384').update(buf).digest('base64')}`;
const short = (buf) => createHash('sha256').update(buf).digest('hex').slice(0, 12);

fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(dist, { recursive: true });

let wasmName = '';
let wasmSri = '';
if (fs.existsSync(path.join(here, 'wasm', 'build.sh'))) {
  execFileSync('bash', [path.join(here, 'wasm', 'build.sh'), path.join(dist, 'annpack.wasm')],
    { stdio: 'inherit' });
  const wasm = fs.readFileSync(path.join(dist, 'annpack.wasm'));
  wasmName = `annpack-${short(wasm)}.wasm`;
  wasmSri = sri(wasm);
  fs.writeFileSync(path.join(dist, wasmName), wasm);
}

const result = await build({
  entryPoints: [path.join(here, 'app.js'), path.join(here, 'style.css')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome120', 'firefox120', 'safari17'],
  entryNames: '[name]-[hash]',
  outdir: dist,
  metafile: true,
  legalComments: 'none',
  define: {
    ANNPACK_WASM_NAME: JSON.stringify(wasmName),
    ANNPACK_WASM_INTEGRITY: JSON.stringify(wasmSri),
  },
  logLevel: 'warning',
});

const out = {};
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  if (meta.entryPoint) out[path.basename(meta.entryPoint)] = path.basename(file);
}
let html = fs.readFileSync(path.join(here, 'index.html'), 'utf8');
const pin = (name) => `${out[name]}" integrity="${sri(fs.readFileSync(path.join(dist, out[name])))}`;
html = html.replace('href="style.css"', `href="${pin('style.css')}"`)
  .replace('<script src="app.js">', `<script src="${pin('app.js')}">`);
if (!html.includes(out['app.js']) || !html.includes(out['style.css'])) {
  throw new Error('index.html: the <script src="app.js"> or href="style.css" to rewrite is missing');
}
fs.writeFileSync(path.join(dist, 'index.html'), html);
const sizes = fs.readdirSync(dist).map((f) => `${f} ${fs.statSync(path.join(dist, f)).size}`);
console.log(`web/dist: ${sizes.join(', ')}`);
