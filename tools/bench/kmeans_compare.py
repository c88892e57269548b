#!/usr/bin/env python3
"""Partition quality: exact float32 recall@10 of IVF search on annpack's k-means lists and on
FAISS's (IndexIVFFlat, inner product), same data, same nlist, several seeds of each, so a gap
can be told from seed noise (docs/BENCHMARKS.md, issue 21).

usage: /usr/bin/python3 tools/bench/kmeans_compare.py DATA_DIR LISTS faiss SEED...
       /usr/bin/python3 tools/bench/kmeans_compare.py DATA_DIR LISTS annpack ANNPACK_EXE SEED...
DATA_DIR is a gen_data.py directory. Prints per seed the recall at probe 1, 2, 4, 8, the
smallest and largest list and the mean list size a query scans relative to balanced lists."""
import sys, numpy as np, pathlib, subprocess, shutil, os, tempfile, time
d = pathlib.Path(sys.argv[1])
def fvecs(p):
    x = np.fromfile(p, dtype=np.int32); dim = int(x[0]); return x.reshape(-1, dim+1)[:,1:].view(np.float32)
xb = fvecs(d/"base.fvecs"); xq = fvecs(d/"queries.fvecs"); xq /= np.linalg.norm(xq,axis=1,keepdims=True)
gt = fvecs(d/"gt.ivecs").view(np.int32)
nl = int(sys.argv[2]); probes = [1, 2, 4, 8]
def recall_lists(c, lists):
    order = np.argsort(-(xq @ c.T), axis=1)
    out=[]
    for p in probes:
        h=0
        for i in range(len(xq)):
            cand = np.concatenate([lists[j] for j in order[i,:p]])
            sc = xb[cand]@xq[i]; top = cand[np.argsort(-sc)[:10]]
            h += len(set(top.tolist()) & set(gt[i,:10].tolist()))
        out.append(round(h/(10*len(xq)),4))
    sizes = np.array([len(l) for l in lists])
    return out, int(sizes.min()), int(sizes.max()), round(float((sizes.astype(float)**2).sum()/len(xb)**2*nl),3)
def assign(c):
    a = np.empty(len(xb), dtype=np.int64)
    for s in range(0, len(xb), 65536):
        a[s:s+65536] = np.argmax(xb[s:s+65536] @ c.T, axis=1)
    return a
def lists_of(a):
    o = np.argsort(a, kind="stable"); b = np.bincount(a, minlength=nl)
    return np.split(o, np.cumsum(b)[:-1])
def annpack(tag, extra, ap):
    pack = pathlib.Path(tempfile.mkdtemp(prefix="kmeans_compare_")) / "pack"
    t=time.time()
    subprocess.run([ap, "build", "--vectors", str(d/"base.fvecs"), "--output", str(pack), "--lists", str(nl), "--iters", "10"]+extra, check=True, capture_output=True, env=dict(os.environ, ANNPACK_THREADS="2"))
    t=time.time()-t
    raw = np.memmap(pack/"pack.annpack", dtype=np.uint8, mode="r")
    dim = int(raw[20:24].view("<u4")[0])
    cent = np.frombuffer(raw[72:72+4*nl*dim].tobytes(), dtype="<f4").reshape(nl, dim)
    tp = int(raw[36:44].view("<u8")[0])
    table = np.frombuffer(raw[tp:tp+16*nl].tobytes(), dtype="<u8").reshape(nl,2)
    lists=[]
    for off,_ in table:
        off=int(off); cnt=int(raw[off:off+4].view("<u4")[0])
        lists.append(np.frombuffer(raw[off+4:off+4+8*cnt].tobytes(), dtype="<u8").astype(np.int64))
    shutil.rmtree(pack.parent)
    return cent, lists, t
what = sys.argv[3]
if what == "faiss":
    import faiss
    for seed in [int(s) for s in sys.argv[4:]]:
        rng = np.random.default_rng(seed)
        sample = xb[np.sort(rng.choice(len(xb), min(len(xb), 256*nl), replace=False))]
        faiss.omp_set_num_threads(2)
        q = faiss.IndexFlatIP(xb.shape[1]); idx = faiss.IndexIVFFlat(q, xb.shape[1], nl, faiss.METRIC_INNER_PRODUCT)
        idx.cp.niter = 10; idx.cp.seed = seed
        idx.train(sample)
        c = q.reconstruct_n(0,nl)
        print("faiss seed", seed, recall_lists(c, lists_of(assign(c))), flush=True)
else:
    ap = sys.argv[4]
    for seed in sys.argv[5:]:
        c, l, t = annpack(seed, ["--seed", seed], ap)
        print(what, "seed", seed, recall_lists(c, l), "build s", round(t,1), flush=True)
