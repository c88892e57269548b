"""Packsets: base + deltas + tombstones (docs/PACKSET.md)."""
import ctypes

from . import _lib as L
from .api import Pack


def _ids(delete_ids):
    if delete_ids is None:
        return []
    if isinstance(delete_ids, (str, bytes)):
        raise L.AnnpackValueError("delete_ids must be a list of integers, not a string",
                                  L.AP_ERR_ARG)
    out = []
    for x in delete_ids:
        out.append(L.positive("delete id", x))
    return out


def build_packset_base(input_csv, packset_dir, text_col="text", id_col="id", lists=None, seed=0,
                       offline=None, dim=None, force=False, embedder=None, embed_url=None,
                       model=None, doc_prefix=None, query_prefix=None, embed_dim=None,
                       embed_batch=None, embed_key_file=None):
    """Builds packset_dir/base from a CSV and writes the root manifest (version 1).
    The embedder options are build_pack's."""
    name, http = L.embed_options(embedder, model, doc_prefix, query_prefix, embed_dim,
                                 embed_batch, offline)
    if http is not None:
        L.set_endpoint(embed_url, embed_key_file)
    o = L.BuildOpts(input_csv=L.enc(input_csv), text_col=L.enc(text_col), id_col=L.enc(id_col),
                    output_dir=L.enc(packset_dir),
                    lists=L.positive("lists", lists, 1, 2**32 - 1) if lists is not None else 0,
                    seed=L.positive("seed", seed), dim=L.positive("dim", dim, 1, 2**32 - 1) if dim else 0,
                    force=bool(force), embedder=name,
                    http=ctypes.cast(ctypes.pointer(http), ctypes.c_void_p) if http else None)
    rep, err = L.BuildReport(), L.Err()
    L.check(L.lib.ap_packset_build_base(ctypes.byref(o), ctypes.byref(rep), ctypes.byref(err)), err)
    return status(packset_dir)


def build_delta(base_dir, out_delta_dir, add_csv=None, delete_ids=None, text_col="text",
                id_col="id", lists=None, seed=0, offline=None, force=False, embed_url=None,
                embed_key_file=None):
    """Builds a delta directory against the base pack at base_dir (adds/updates from
    add_csv, deletes from delete_ids), embedded with the base's recorded embedder (for an
    embedding service: through embed_url, else ANNPACK_EMBED_URL, after its canaries are
    checked). Append it with update_packset_manifest. `offline` has no effect here."""
    del offline
    if embed_url is not None or embed_key_file is not None:
        L.set_endpoint(embed_url, embed_key_file)
    ids = _ids(delete_ids)
    arr = (ctypes.c_uint64 * max(1, len(ids)))(*ids)
    o = L.DeltaOpts(base_dir=L.enc(base_dir), add_csv=L.enc(add_csv), text_col=L.enc(text_col),
                    id_col=L.enc(id_col), delete_ids=arr, n_delete=len(ids),
                    out_dir=L.enc(out_delta_dir),
                    lists=L.positive("lists", lists, 1, 2**32 - 1) if lists is not None else 0,
                    seed=L.positive("seed", seed), force=bool(force))
    err = L.Err()
    L.check(L.lib.ap_delta_build(ctypes.byref(o), ctypes.byref(err)), err)
    return str(out_delta_dir)


def _change_opts(pubkey=None, force=False):
    """What a packset operation checks first (docs/PACKSET.md): the packset is verified,
    and a signed one needs its public key (a PEM file path) so the signature is checked."""
    o = L.ChangeOpts(force=bool(force))
    if pubkey is not None:
        keys, n, err = (L.Pubkey * L.AP_MAX_PUBKEYS)(), ctypes.c_size_t(), L.Err()
        L.check(L.lib.ap_pubkeys_load(L.enc(pubkey), keys, ctypes.byref(n), ctypes.byref(err)),
                err)
        o.pubkeys, o.npubkeys = keys, n.value
        o._keys = keys  # keep the array alive as long as the options
    return o


def update_packset_manifest(packset_dir, delta_dir, seq=None, pubkey=None):
    """Appends a delta directory (inside the packset) to the root manifest at seq
    (default: next). Refused when the packset does not verify (a signed one needs
    pubkey), seq is not greater than every existing seq, the delta was built against
    another base, or it fails verification. The old signature is removed: re-sign."""
    s = 0 if seq is None else L.positive("seq", seq, 1, 2**32 - 1)
    o, err = _change_opts(pubkey), L.Err()
    L.check(L.lib.ap_packset_append_delta(L.enc(packset_dir), L.enc(delta_dir), s,
                                          ctypes.byref(o), ctypes.byref(err)), err)
    return status(packset_dir)


def promote_delta(packset_dir, delta_dir, pubkey=None, force=False):
    """Copies an outside delta in as the next seq and appends it; returns the seq. A
    directory in the way that is not a copy of it is replaced only with force."""
    seq, o, err = ctypes.c_uint64(), _change_opts(pubkey, force), L.Err()
    L.check(L.lib.ap_packset_promote_delta(L.enc(packset_dir), L.enc(delta_dir), ctypes.byref(o),
                                           ctypes.byref(seq), ctypes.byref(err)), err)
    return seq.value


def revert_packset(packset_dir, to_seq, pubkey=None):
    """Drops every delta after to_seq (the version still increases)."""
    o, err = _change_opts(pubkey), L.Err()
    L.check(L.lib.ap_packset_revert(L.enc(packset_dir), L.positive("to_seq", to_seq),
                                    ctypes.byref(o), ctypes.byref(err)), err)
    return status(packset_dir)


def rebase_packset(packset_dir, out_dir, lists=None, seed=0, pubkey=None, force=False):
    """Compacts the merged view into a new packset at out_dir (the source is verified
    first; a signed one needs pubkey)."""
    o, err = _change_opts(pubkey, force), L.Err()
    L.check(L.lib.ap_packset_rebase(L.enc(packset_dir), L.enc(out_dir),
                                    L.positive("lists", lists, 1, 2**32 - 1) if lists else 0,
                                    L.positive("seed", seed), ctypes.byref(o), L.PROGRESS(),
                                    None, ctypes.byref(err)), err)
    return status(out_dir)


def create_packset(base_dir, delta_dirs, out_dir, force=False):
    """Assembles a new packset from a base pack and delta directories (copied)."""
    ds = [L.enc(d) for d in delta_dirs]
    arr = (ctypes.c_char_p * max(1, len(ds)))(*ds)
    o, err = _change_opts(None, force), L.Err()
    L.check(L.lib.ap_packset_create(L.enc(base_dir), arr, len(ds), L.enc(out_dir),
                                    ctypes.byref(o), ctypes.byref(err)), err)
    return status(out_dir)


def open_packset(packset_dir, embed_url=None, embed_key_file=None):
    """Opens a packset (or a pack) as its merged view (embed_url: see open_pack)."""
    return Pack(packset_dir, embed_url, embed_key_file)


def status(packset_dir):
    """The `annpack packset status` report as a dict."""
    with Pack(packset_dir) as p:
        return p.status()
