"""annpack — Python API over libannpack (ctypes; no compiled extension).

    from annpack.api import build_pack, open_pack
    from annpack.packset import build_packset_base, build_delta, update_packset_manifest
    from annpack.verify import verify_pack, sign_manifest, verify_manifest_signature

The library is found from $ANNPACK_LIB, the build tree next to this package
(build/core/libannpack.so), or an installed libannpack. Errors raise AnnpackError
subclasses that are also ValueError / FileNotFoundError where that fits, carrying the C
library's message. Nothing is printed to stdout.
"""
from ._lib import AnnpackError, AnnpackValueError, AnnpackFileNotFoundError, AnnpackVerifyError

__version__ = "0.1.0"
__all__ = ["AnnpackError", "AnnpackValueError", "AnnpackFileNotFoundError",
           "AnnpackVerifyError", "__version__"]
