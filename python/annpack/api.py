"""Building and searching packs (and packsets, through the same merged view)."""
import ctypes
import json

from . import _lib as L


def build_pack(input_csv, output_dir, text_col="text", id_col=None, lists=None, seed=0,
               offline=None, dim=None, max_rows=None, meta_compression="zstd", force=False,
               embedder=None, embed_url=None, model=None, doc_prefix=None, query_prefix=None,
               embed_dim=None, embed_batch=None, embed_key_file=None):
    """Builds a pack directory from a CSV (see docs/CLI.md, `annpack build`).

    Returns a dict with rows, rows_skipped, lists_requested, lists_effective, dim.
    embedder: "hash" (default, offline) or an embedding service, "openai", "tei" or
    "ollama", with model= and embed_url= (else ANNPACK_EMBED_URL) and the options of
    docs/EMBEDDERS.md; offline=True refuses a service (docs/PYTHON.md)."""
    name, http = L.embed_options(embedder, model, doc_prefix, query_prefix, embed_dim,
                                 embed_batch, offline)
    if http is not None:
        L.set_endpoint(embed_url, embed_key_file)
    if meta_compression not in ("zstd", "none"):
        raise L.AnnpackValueError("meta_compression must be 'zstd' or 'none'", L.AP_ERR_ARG)
    o = L.BuildOpts(input_csv=L.enc(input_csv), text_col=L.enc(text_col), id_col=L.enc(id_col),
                    output_dir=L.enc(output_dir),
                    lists=L.positive("lists", lists, 1, 2**32 - 1) if lists is not None else 0,
                    seed=L.positive("seed", seed), dim=L.positive("dim", dim, 1, 2**32 - 1) if dim else 0,
                    max_rows=L.positive("max_rows", max_rows, 1) if max_rows else 0,
                    meta_codec=L.AP_META_ZSTD if meta_compression == "zstd" else L.AP_META_NONE,
                    force=bool(force), embedder=name,
                    http=ctypes.cast(ctypes.pointer(http), ctypes.c_void_p) if http else None)
    rep, err = L.BuildReport(), L.Err()
    L.check(L.lib.ap_pack_build(ctypes.byref(o), ctypes.byref(rep), ctypes.byref(err)), err)
    return {"rows": rep.rows, "rows_skipped": rep.rows_skipped,
            "lists_requested": rep.lists_requested, "lists_effective": rep.lists_effective,
            "dim": rep.dim}


class Pack:
    """An open pack or packset (its merged view). Use as a context manager."""

    def __init__(self, path, embed_url=None, embed_key_file=None):
        """embed_url / embed_key_file: the embedding service for a pack built with one
        (else ANNPACK_EMBED_URL); it is the process's endpoint from then on."""
        if embed_url is not None or embed_key_file is not None:
            L.set_endpoint(embed_url, embed_key_file)
        self._v = ctypes.c_void_p()
        err = L.Err()
        L.check(L.lib.ap_view_open(L.enc(path), ctypes.byref(self._v), ctypes.byref(err)), err)
        self.path = str(path)

    def _handle(self):
        if not self._v:
            raise L.AnnpackValueError("the pack is closed", L.AP_ERR_ARG)
        return self._v

    @property
    def dim(self):
        return L.lib.ap_view_dim(self._handle())

    @property
    def n_lists(self):
        return L.lib.ap_view_n_lists(self._handle())

    @property
    def n_vectors(self):
        """Live documents."""
        return L.lib.ap_view_live_count(self._handle())

    @property
    def version(self):
        return L.lib.ap_view_version(self._handle())

    def status(self):
        return L.take_json(L.lib.ap_view_status_json(self._handle()))

    def _embed(self, text):
        b = str(text).encode("utf-8")
        q = (ctypes.c_float * self.dim)()
        err = L.Err()
        L.check(L.lib.ap_view_embed(self._handle(), b, len(b), q, ctypes.byref(err)), err)
        return q

    def embed(self, text):
        """The query vector this pack searches `text` with (list of floats)."""
        return list(self._embed(text))

    def search(self, text, top_k=L.DEFAULT_K, probe=None, filters=None):
        """Top-k documents for a text query: [{"id","score","meta","layer"}], best first.
        An empty or whitespace-only text is refused (ValueError), as by `annpack search`
        and the mount. The same search as `annpack search`: the embedder's vector as is.
        filters: {column: value} (all must hold) on the pack's --filter-cols, as
        `annpack search --where`: the exact top k among the matching documents."""
        b = str(text).encode("utf-8")
        err = L.Err()
        L.check(L.lib.ap_query_text_check(b, len(b), ctypes.byref(err)), err)
        return self._search(self._embed(text), top_k, probe, filters)

    def search_vec(self, vector, top_k=L.DEFAULT_K, probe=None, filters=None):
        """Top-k documents for a query vector: its values as float32, normalised to unit
        length by the library (ap_l2_normalize), as `annpack search --queries` and the
        mount's /vquery/ do."""
        v = [float(x) for x in vector]
        if len(v) != self.dim:
            raise L.AnnpackValueError(f"vector has {len(v)} dimensions, the pack has {self.dim}",
                                      L.AP_ERR_ARG)
        q = (ctypes.c_float * self.dim)(*v)
        L.lib.ap_l2_normalize(q, self.dim)
        return self._search(q, top_k, probe, filters)

    def _search(self, q, top_k, probe, filters=None):
        """ap_view_search of the float array q: top_k in 1..AP_MAX_K, probe >= 1 (default
        the pack's calibrated default probe, ap_view_default_probe), both as the library
        defines them."""
        k = L.positive("top_k", top_k, 1, L.MAX_K)
        p = (L.positive("probe", probe, 1, 2**32 - 1) if probe is not None
             else L.lib.ap_view_default_probe(self._handle()))
        hits = (L.Hit * k)()
        n = ctypes.c_uint32()
        err = L.Err()
        if filters:
            if not isinstance(filters, dict):
                raise L.AnnpackValueError("filters must be a dict {column: value}", L.AP_ERR_ARG)
            where = (L.Where * len(filters))(*[
                L.Where(str(c).encode("utf-8"), str(v).encode("utf-8"))
                for c, v in filters.items()])
            params = L.SearchParams(k, p, 0, 0)
            L.check(L.lib.ap_view_search_where(self._handle(), q, ctypes.byref(params), where,
                                               len(filters), hits, ctypes.byref(n), None,
                                               ctypes.byref(err)), err)
        else:
            L.check(L.lib.ap_view_search(self._handle(), q, k, p, hits, ctypes.byref(n),
                                         ctypes.byref(err)), err)
        out = []
        for h in hits[:n.value]:
            out.append({"id": h.id, "score": h.score, "meta": self.get(h.id), "layer": h.layer})
        return out

    def get(self, doc_id):
        """The live metadata row of doc_id as a dict, or None when absent or deleted."""
        row, ln, layer, err = ctypes.c_void_p(), ctypes.c_size_t(), ctypes.c_uint32(), L.Err()
        st = L.lib.ap_view_get_row(self._handle(), int(doc_id), ctypes.byref(row),
                                   ctypes.byref(ln), ctypes.byref(layer), ctypes.byref(err))
        if st == L.AP_ERR_NOTFOUND:
            return None
        L.check(st, err)
        return json.loads(L.take_string(row))

    def close(self):
        if self._v:
            L.lib.ap_view_close(self._v)
            self._v = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def open_pack(path, embed_url=None, embed_key_file=None):
    """Opens a pack or a packset directory for searching (embed_url: the embedding service
    of a pack built with one, else ANNPACK_EMBED_URL)."""
    return Pack(path, embed_url, embed_key_file)
