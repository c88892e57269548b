"""Loading libannpack and the ctypes declarations of the C API used by the package.

The structs and constants below mirror the public headers (core/include/annpack/):
tests/test_abi.py compares every one with the C definitions (sizeof, offsetof, values)."""
import ctypes
import ctypes.util
import json
import os
import pathlib

# ap_status (status.h): explicit values, part of the ABI.
AP_OK = 0
AP_ERR_ARG = 1
AP_ERR_IO = 2
AP_ERR_NOMEM = 3
AP_ERR_FORMAT = 4
AP_ERR_LIMIT = 5
AP_ERR_NOTFOUND = 6
AP_ERR_EXISTS = 7
AP_ERR_VERIFY = 8
AP_ERR_UNSUPPORTED = 9
AP_ERR_INTERNAL = 10
AP_ERR_MSG_MAX = 1024
# ap_meta_codec (meta.h) and sign.h's sizes.
AP_META_ZSTD = 0
AP_META_NONE = 1
AP_PUBKEY_BYTES = 32
AP_KEYID_HEX = 17
AP_MAX_PUBKEYS = 64


class AnnpackError(Exception):
    """An error reported by libannpack; .status is the C status code."""

    def __init__(self, message, status=AP_ERR_INTERNAL):
        super().__init__(message)
        self.status = status


class AnnpackValueError(AnnpackError, ValueError):
    """Bad input: malformed files, invalid arguments, caps exceeded."""


class AnnpackFileNotFoundError(AnnpackError, FileNotFoundError):
    """A file or directory does not exist."""

    def __init__(self, message, status=AP_ERR_NOTFOUND):
        AnnpackError.__init__(self, message, status)

    def __str__(self):
        return self.args[0]


class AnnpackVerifyError(AnnpackError):
    """Verification failed (hash, signature, structure); .report holds the JSON report."""

    def __init__(self, message, status=AP_ERR_VERIFY, report=None):
        super().__init__(message, status)
        self.report = report


class Err(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int), ("msg", ctypes.c_char * AP_ERR_MSG_MAX)]


PROGRESS = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint64,
                            ctypes.c_uint64)


class BuildOpts(ctypes.Structure):
    _fields_ = [("input_csv", ctypes.c_char_p), ("text_col", ctypes.c_char_p),
                ("id_col", ctypes.c_char_p), ("output_dir", ctypes.c_char_p),
                ("lists", ctypes.c_uint32), ("seed", ctypes.c_uint64), ("dim", ctypes.c_uint32),
                ("max_rows", ctypes.c_uint64), ("meta_codec", ctypes.c_int),
                ("force", ctypes.c_bool), ("embedder", ctypes.c_char_p),
                ("embedder_json", ctypes.c_char_p), ("progress", PROGRESS),
                ("progress_ud", ctypes.c_void_p), ("vectors", ctypes.c_char_p),
                ("kmeans_iters", ctypes.c_uint32), ("sq8", ctypes.c_bool),
                ("bits", ctypes.c_bool),
                ("http", ctypes.c_void_p), ("target_recall", ctypes.c_double),
                ("filter_cols", ctypes.c_char_p)]


class EmbedModel(ctypes.Structure):
    _fields_ = [("model", ctypes.c_char_p), ("doc_prefix", ctypes.c_char_p),
                ("query_prefix", ctypes.c_char_p), ("dim", ctypes.c_uint32),
                ("batch", ctypes.c_uint32)]


class EmbedEndpoint(ctypes.Structure):
    _fields_ = [("url", ctypes.c_char_p), ("api_key", ctypes.c_char_p),
                ("key_file", ctypes.c_char_p), ("ca_file", ctypes.c_char_p),
                ("client_cert", ctypes.c_char_p), ("client_key", ctypes.c_char_p),
                ("timeout_ms", ctypes.c_uint32), ("attempts", ctypes.c_uint32)]


class BuildReport(ctypes.Structure):
    _fields_ = [("rows", ctypes.c_uint64), ("rows_skipped", ctypes.c_uint64),
                ("lists_requested", ctypes.c_uint32), ("lists_effective", ctypes.c_uint32),
                ("dim", ctypes.c_uint32), ("seconds_total", ctypes.c_double),
                ("seconds_embed", ctypes.c_double), ("seconds_kmeans", ctypes.c_double),
                ("seconds_write", ctypes.c_double), ("train_rows", ctypes.c_uint64),
                ("kmeans_passes", ctypes.c_uint32), ("threads", ctypes.c_uint32),
                ("seconds_assign", ctypes.c_double), ("seconds_sq8", ctypes.c_double)]


class DeltaOpts(ctypes.Structure):
    _fields_ = [("base_dir", ctypes.c_char_p), ("add_csv", ctypes.c_char_p),
                ("text_col", ctypes.c_char_p), ("id_col", ctypes.c_char_p),
                ("delete_ids", ctypes.POINTER(ctypes.c_uint64)), ("n_delete", ctypes.c_size_t),
                ("out_dir", ctypes.c_char_p), ("lists", ctypes.c_uint32),
                ("seed", ctypes.c_uint64), ("meta_codec", ctypes.c_int),
                ("progress", PROGRESS), ("progress_ud", ctypes.c_void_p),
                ("force", ctypes.c_bool)]


class Pubkey(ctypes.Structure):
    _fields_ = [("raw", ctypes.c_uint8 * AP_PUBKEY_BYTES), ("keyid", ctypes.c_char * AP_KEYID_HEX)]


class VerifyOpts(ctypes.Structure):
    _fields_ = [("deep", ctypes.c_bool), ("pubkeys", ctypes.POINTER(Pubkey)),
                ("npubkeys", ctypes.c_size_t), ("sig_path", ctypes.c_char_p),
                ("allow_expired", ctypes.c_bool), ("progress", PROGRESS),
                ("progress_ud", ctypes.c_void_p)]


class ChangeOpts(ctypes.Structure):
    _fields_ = [("pubkeys", ctypes.POINTER(Pubkey)), ("npubkeys", ctypes.c_size_t),
                ("force", ctypes.c_bool)]


class Hit(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("score", ctypes.c_float), ("layer", ctypes.c_uint32)]


# C name -> ctypes mirror, for tests/test_abi.py.
class SearchParams(ctypes.Structure):
    _fields_ = [("k", ctypes.c_uint32), ("probe", ctypes.c_uint32), ("scan", ctypes.c_int),
                ("rerank", ctypes.c_uint32)]


class Where(ctypes.Structure):
    _fields_ = [("col", ctypes.c_char_p), ("value", ctypes.c_char_p)]


MIRRORS = {"ap_err": Err, "ap_build_opts": BuildOpts, "ap_build_report": BuildReport,
           "ap_delta_opts": DeltaOpts, "ap_pubkey": Pubkey, "ap_verify_opts": VerifyOpts,
           "ap_change_opts": ChangeOpts, "ap_hit": Hit, "ap_embed_model": EmbedModel,
           "ap_embed_endpoint": EmbedEndpoint, "ap_search_params": SearchParams,
           "ap_where": Where}


def _candidates():
    env = os.environ.get("ANNPACK_LIB")
    if env:
        yield env
    here = pathlib.Path(__file__).resolve().parent
    try:
        # Written by `meson install` (python/meson.build): where the library was installed,
        # relative to this package, so a --destdir or relocated tree still finds its own.
        from . import _install
        yield str(here / _install.LIBDIR_FROM_PACKAGE / _install.SONAME)
        yield _install.LIBDIR + "/" + _install.SONAME
    except ImportError:
        pass
    for root in (here.parent.parent, here.parent):
        for build in ("build", "build-asan"):
            yield str(root / build / "core" / "libannpack.so")
    found = ctypes.util.find_library("annpack")
    if found:
        yield found


def _load():
    tried = []
    for path in _candidates():
        if path and (os.path.exists(path) or "/" not in path):
            try:
                return ctypes.CDLL(path)
            except OSError as e:
                tried.append(f"{path}: {e}")
        else:
            tried.append(path)
    raise ImportError("libannpack not found (set ANNPACK_LIB); tried: " + "; ".join(tried))


lib = _load()

P = ctypes.c_char_p
V = ctypes.c_void_p
E = ctypes.POINTER(Err)
_sigs = {
    "ap_pack_build": ([ctypes.POINTER(BuildOpts), ctypes.POINTER(BuildReport), E], ctypes.c_int),
    "ap_packset_build_base": ([ctypes.POINTER(BuildOpts), ctypes.POINTER(BuildReport), E],
                              ctypes.c_int),
    "ap_delta_build": ([ctypes.POINTER(DeltaOpts), E], ctypes.c_int),
    "ap_packset_append_delta": ([P, P, ctypes.c_uint64, ctypes.POINTER(ChangeOpts), E],
                                ctypes.c_int),
    "ap_packset_promote_delta": ([P, P, ctypes.POINTER(ChangeOpts),
                                  ctypes.POINTER(ctypes.c_uint64), E], ctypes.c_int),
    "ap_packset_revert": ([P, ctypes.c_uint64, ctypes.POINTER(ChangeOpts), E], ctypes.c_int),
    "ap_packset_rebase": ([P, P, ctypes.c_uint32, ctypes.c_uint64, ctypes.POINTER(ChangeOpts),
                           PROGRESS, V, E], ctypes.c_int),
    "ap_packset_create": ([P, ctypes.POINTER(P), ctypes.c_size_t, P, ctypes.POINTER(ChangeOpts),
                           E], ctypes.c_int),
    "ap_view_open": ([P, ctypes.POINTER(V), E], ctypes.c_int),
    "ap_view_close": ([V], None),
    "ap_embed_set_endpoint": ([ctypes.c_void_p, E], ctypes.c_int),
    "ap_view_embed": ([V, P, ctypes.c_size_t, ctypes.POINTER(ctypes.c_float), E], ctypes.c_int),
    "ap_view_search": ([V, ctypes.POINTER(ctypes.c_float), ctypes.c_uint32, ctypes.c_uint32,
                        ctypes.POINTER(Hit), ctypes.POINTER(ctypes.c_uint32), E], ctypes.c_int),
    "ap_view_get_row": ([V, ctypes.c_uint64, ctypes.POINTER(V), ctypes.POINTER(ctypes.c_size_t),
                         ctypes.POINTER(ctypes.c_uint32), E], ctypes.c_int),
    "ap_view_dim": ([V], ctypes.c_uint32),
    "ap_view_n_lists": ([V], ctypes.c_uint32),
    "ap_view_live_count": ([V], ctypes.c_uint64),
    "ap_view_version": ([V], ctypes.c_uint64),
    "ap_view_status_json": ([V], V),
    "ap_verify_dir": ([P, ctypes.POINTER(VerifyOpts), ctypes.POINTER(V), E], ctypes.c_int),
    "ap_seckey_load": ([P, ctypes.POINTER(V), E], ctypes.c_int),
    "ap_seckey_free": ([V], None),
    "ap_dir_sign": ([P, V, P, ctypes.c_char_p, E], ctypes.c_int),
    "ap_pubkeys_load": ([P, ctypes.POINTER(Pubkey), ctypes.POINTER(ctypes.c_size_t), E],
                        ctypes.c_int),
    "ap_version": ([], ctypes.c_char_p),
    "ap_free": ([V], None),
    "ap_l2_normalize": ([ctypes.POINTER(ctypes.c_float), ctypes.c_uint32], ctypes.c_double),
    "ap_query_text_check": ([P, ctypes.c_size_t, E], ctypes.c_int),
    "ap_max_k": ([], ctypes.c_uint32),
    "ap_default_k": ([], ctypes.c_uint32),
    "ap_default_probe": ([], ctypes.c_uint32),
    "ap_view_default_probe": ([V], ctypes.c_uint32),
    "ap_view_search_where": ([V, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(SearchParams),
                              ctypes.POINTER(Where), ctypes.c_size_t, ctypes.POINTER(Hit),
                              ctypes.POINTER(ctypes.c_uint32), V, E], ctypes.c_int),
}
for _name, (_args, _res) in _sigs.items():
    _f = getattr(lib, _name)
    _f.argtypes = _args
    _f.restype = _res

# search.h's AP_MAX_K, AP_DEFAULT_K and AP_DEFAULT_PROBE, as the library has them.
MAX_K = lib.ap_max_k()
DEFAULT_K = lib.ap_default_k()
DEFAULT_PROBE = lib.ap_default_probe()


def enc(s):
    """A path or string argument as bytes (None stays None)."""
    if s is None:
        return None
    return os.fsencode(s) if isinstance(s, (str, os.PathLike)) else bytes(s)


def check(status, err, report=None):
    if status == AP_OK:
        return
    msg = err.msg.decode("utf-8", "replace")
    if status == AP_ERR_NOTFOUND:
        raise AnnpackFileNotFoundError(msg, status)
    if status == AP_ERR_VERIFY:
        raise AnnpackVerifyError(msg, status, report)
    if status in (AP_ERR_ARG, AP_ERR_FORMAT, AP_ERR_LIMIT, AP_ERR_UNSUPPORTED, AP_ERR_EXISTS):
        raise AnnpackValueError(msg, status)
    raise AnnpackError(msg, status)


def take_string(ptr):
    """Copies a string the library returned (malloc'd) and frees it with ap_free."""
    if not ptr:
        return None
    try:
        return ctypes.string_at(ptr).decode("utf-8")
    finally:
        lib.ap_free(ptr)


def take_json(ptr):
    s = take_string(ptr)
    return json.loads(s) if s is not None else None


def positive(name, value, lo=0, hi=2**53 - 1):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise AnnpackValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}",
                                AP_ERR_ARG)
    return value


HTTP_EMBEDDERS = ("openai", "tei", "ollama")


def set_endpoint(embed_url=None, embed_key_file=None, api_key=None):
    """The process's embedding endpoint (ap_embed_set_endpoint): None for each falls back
    to ANNPACK_EMBED_URL / ANNPACK_EMBED_API_KEY."""
    ep = EmbedEndpoint(url=enc(embed_url), key_file=enc(embed_key_file), api_key=enc(api_key))
    err = Err()
    check(lib.ap_embed_set_endpoint(ctypes.byref(ep), ctypes.byref(err)), err)


def embed_options(embedder, model, doc_prefix, query_prefix, embed_dim, embed_batch, offline):
    """(embedder name bytes or None, ap_embed_model or None) for BuildOpts, after the checks
    `annpack build` makes."""
    if embedder in (None, "hash"):
        if any(x is not None for x in (model, doc_prefix, query_prefix, embed_dim, embed_batch)):
            raise AnnpackValueError("model, doc_prefix, query_prefix, embed_dim and embed_batch "
                                    "need embedder='openai', 'tei' or 'ollama'", AP_ERR_ARG)
        return enc(embedder), None
    if embedder not in HTTP_EMBEDDERS:
        raise AnnpackValueError(f"embedder must be 'hash', 'openai', 'tei' or 'ollama', not "
                                f"{embedder!r}", AP_ERR_ARG)
    if offline:
        raise AnnpackValueError(f"embedder {embedder!r} asks a service: pass offline=False",
                                AP_ERR_ARG)
    if embedder != "tei" and not model:
        raise AnnpackValueError(f"embedder {embedder!r} needs model=", AP_ERR_ARG)
    m = EmbedModel(model=enc(model), doc_prefix=enc(doc_prefix), query_prefix=enc(query_prefix),
                   dim=positive("embed_dim", embed_dim, 1, 2**32 - 1) if embed_dim else 0,
                   batch=positive("embed_batch", embed_batch, 1, 4096) if embed_batch else 0)
    return enc(embedder), m
