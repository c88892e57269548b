/* The part of libsodium's API that core/embed/hash.c uses, for the WebAssembly build:
 * crypto_shorthash (SipHash-2-4) is imported from libsodium.js (npm libsodium-wrappers),
 * which the JavaScript side instantiates and passes in as the "sodium" import module
 * (web/client/wasm.js). The same library as the native build, through its JS build. */
#ifndef ANNPACK_WASM_SODIUM_H
#define ANNPACK_WASM_SODIUM_H

#define crypto_shorthash_BYTES 8U
#define crypto_shorthash_KEYBYTES 16U

__attribute__((import_module("sodium"), import_name("crypto_shorthash"))) int
crypto_shorthash(unsigned char *out, const unsigned char *in, unsigned long long inlen,
                 const unsigned char *k);

#endif
