"""Verification and signatures (docs/SECURITY.md)."""
import ctypes

from . import _lib as L


def _pubkeys(path):
    keys, n, err = (L.Pubkey * L.AP_MAX_PUBKEYS)(), ctypes.c_size_t(), L.Err()
    L.check(L.lib.ap_pubkeys_load(L.enc(path), keys, ctypes.byref(n), ctypes.byref(err)), err)
    return keys, n.value


def verify_pack(path, deep=False, pubkey=None, allow_expired=False):
    """Verifies a pack or packset; returns the JSON report as a dict. Raises
    AnnpackVerifyError (with .report) when verification fails."""
    o = L.VerifyOpts(deep=bool(deep), allow_expired=bool(allow_expired))
    if pubkey is not None:
        keys, n = _pubkeys(pubkey)
        o.pubkeys, o.npubkeys = keys, n
    rep, err = ctypes.c_void_p(), L.Err()
    st = L.lib.ap_verify_dir(L.enc(path), ctypes.byref(o), ctypes.byref(rep), ctypes.byref(err))
    report = L.take_json(rep)
    L.check(st, err, report)
    return report


def sign_manifest(path, key_path):
    """Signs a verified pack or packset (writes pack.manifest.json.sig); returns the key id."""
    key, err = ctypes.c_void_p(), L.Err()
    L.check(L.lib.ap_seckey_load(L.enc(key_path), ctypes.byref(key), ctypes.byref(err)), err)
    try:
        keyid = ctypes.create_string_buffer(L.AP_KEYID_HEX)
        L.check(L.lib.ap_dir_sign(L.enc(path), key, None, keyid, ctypes.byref(err)), err)
        return keyid.value.decode()
    finally:
        L.lib.ap_seckey_free(key)


def verify_manifest_signature(path, pubkey_path):
    """Checks the manifest signature (and every hash) with the key(s) in pubkey_path;
    returns the key id that verified. Raises AnnpackVerifyError otherwise."""
    return verify_pack(path, pubkey=pubkey_path)["signature"]["key_id"]
