"""Loading libannpack and the ctypes declarations of the C API used by the package."""
import ctypes
import ctypes.util
import json
import os
import pathlib

AP_OK, AP_ERR_ARG, AP_ERR_IO, AP_ERR_NOMEM, AP_ERR_FORMAT, AP_ERR_LIMIT, AP_ERR_NOTFOUND, \
    AP_ERR_EXISTS, AP_ERR_VERIFY, AP_ERR_UNSUPPORTED, AP_ERR_INTERNAL = range(11)


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
    _fields_ = [("status", ctypes.c_int), ("msg", ctypes.c_char * 1024)]


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
                ("kmeans_iters", ctypes.c_uint32), ("sq8", ctypes.c_bool)]


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
    _fields_ = [("raw", ctypes.c_uint8 * 32), ("keyid", ctypes.c_char * 17)]


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


class Embedder(ctypes.Structure):
    _fields_ = [("ops", ctypes.c_void_p), ("dim", ctypes.c_uint32), ("seed", ctypes.c_uint64),
                ("impl", ctypes.c_void_p)]


def _candidates():
    env = os.environ.get("ANNPACK_LIB")
    if env:
        yield env
    here = pathlib.Path(__file__).resolve().parent
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
libc = ctypes.CDLL(None)
libc.free.argtypes = [ctypes.c_void_p]

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
    "ap_view_embedder": ([V], ctypes.POINTER(Embedder)),
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
}
for _name, (_args, _res) in _sigs.items():
    _f = getattr(lib, _name)
    _f.argtypes = _args
    _f.restype = _res


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
    """Copies and frees a malloc'd C string returned by the library."""
    if not ptr:
        return None
    try:
        return ctypes.string_at(ptr).decode("utf-8")
    finally:
        libc.free(ptr)


def take_json(ptr):
    s = take_string(ptr)
    return json.loads(s) if s is not None else None


def positive(name, value, lo=0, hi=2**53 - 1):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise AnnpackValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}",
                                AP_ERR_ARG)
    return value
