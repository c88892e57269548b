// annpack's direct client: search a pack on any static host (plain files, HTTP Range)
// with the C core in WebAssembly, every byte checked against the signed digests.
// docs/CLIENT.md describes the API, the requests and the integrity rules.
export { AnnpackError } from './errors.js';
export { Pack } from './pack.js';
import { Pack } from './pack.js';

export function openPack(url, opts) {
  return Pack.open(url, opts);
}

export async function openPackset(url) {
  const { AnnpackError } = await import('./errors.js');
  throw new AnnpackError(`${url}: packsets are not readable by the direct client yet (open the base pack, or serve the mount)`, { kind: 'arg' });
}
