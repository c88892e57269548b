// Ed25519 over the manifest's exact bytes (pack.manifest.json.sig: 64 raw bytes), with a
// public key in OpenSSL's PEM (SubjectPublicKeyInfo, as `annpack keygen` writes it):
// WebCrypto Ed25519 where the browser has it, else libsodium.js.
import { AnnpackError } from './errors.js';
import { sodium } from './sodium.js';

const SPKI_ED25519_PREFIX = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

export function spkiFromPem(pem) {
  const m = /-----BEGIN PUBLIC KEY-----([\s\S]+?)-----END PUBLIC KEY-----/.exec(pem);
  if (!m) throw new AnnpackError('public key: not a PEM "PUBLIC KEY"', { kind: 'arg' });
  const der = Uint8Array.from(atob(m[1].replace(/\s+/g, '')), (c) => c.charCodeAt(0));
  if (der.length !== 44 || SPKI_ED25519_PREFIX.some((b, i) => der[i] !== b)) {
    throw new AnnpackError('public key: not an Ed25519 key', { kind: 'arg' });
  }
  return der;
}

// The key id annpack prints: the first 8 bytes of SHA-256 of the raw key, in hex.
export async function keyId(spki) {
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', spki.subarray(12)));
  return Array.from(h.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function webcryptoVerify(spki, sig, msg) {
  let key;
  try {
    key = await crypto.subtle.importKey('spki', spki, { name: 'Ed25519' }, false, ['verify']);
  } catch {
    return null; // no Ed25519 in this WebCrypto
  }
  return crypto.subtle.verify({ name: 'Ed25519' }, key, sig, msg);
}

// Resolves with 'webcrypto' or 'libsodium' (which did the check); throws when bad.
export async function verifyManifest(file, spki, sig, msg) {
  if (sig.length !== 64) {
    throw new AnnpackError(`${file}.sig: ${sig.length} bytes, an Ed25519 signature has 64: refused`,
      { file: `${file}.sig`, kind: 'signature' });
  }
  let ok = await webcryptoVerify(spki, sig, msg);
  let by = 'webcrypto';
  if (ok === null) {
    const s = await sodium();
    ok = s.crypto_sign_verify_detached(sig, msg, spki.subarray(12));
    by = 'libsodium';
  }
  if (!ok) {
    throw new AnnpackError(`${file}: bad signature (${file}.sig does not verify with the configured key): refused`,
      { file, kind: 'signature' });
  }
  return by;
}
