// libsodium.js (npm libsodium-wrappers): SipHash-2-4 for the hash embedder inside the
// WebAssembly core, and Ed25519 where WebCrypto lacks it. Loaded once, on first use.
let ready = null;

export function sodium() {
  if (!ready) {
    ready = import('libsodium-wrappers').then(async (m) => {
      const s = m.default || m;
      await s.ready;
      return s;
    });
  }
  return ready;
}
