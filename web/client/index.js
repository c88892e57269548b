// annpack's direct client: search a pack on any static host (plain files, HTTP Range)
// with the C core in WebAssembly, every byte checked against the signed digests.
// docs/CLIENT.md describes the API, the requests and the integrity rules.
export { AnnpackError } from './errors.js';
export { Pack } from './pack.js';
import { Pack } from './pack.js';

export function openPack(url, opts) {
  return Pack.open(url, opts);
}

export { Packset } from './packset.js';
import { Packset } from './packset.js';

export function openPackset(url, opts) {
  return Packset.open(url, opts);
}
