// The graph-index anchor of the harness: hnswlib (Debian's libhnswlib-dev headers) compiled
// by tools/bench/harness.py with -O3 -march=native, so its distance kernels are the CPU's own
// (AVX-512 where the machine has it), on the same fvecs/ivecs files as annpack and FAISS.
//
// usage: hnsw_bench BASE.fvecs QUERIES.fvecs GT.ivecs INDEX_FILE --m 16 --efc 200
//            --threads 2 --efs 16,32,64,128 --runs 3 [-k 10] [--check 50]
// Builds the index (inner product, unit vectors) on --threads threads and saves it to
// INDEX_FILE, or loads INDEX_FILE when it exists (the harness names it by M/efC and a
// fingerprint of the data); then searches every query one at a time on one thread for each
// ef, --runs times, and prints one JSON object: build seconds, index bytes, peak RSS and per
// ef the median QPS, p50/p99 latency and recall@k.
// Two checks come with it, so a low recall is hnswlib's and not the harness's: "gt_check",
// exact top-k by hnswlib's own distance (brute force) for --check queries against GT.ivecs
// (a metric, label or file mismatch shows as agreement well below 1), and "self_check",
// --check base rows searched at the largest ef, each of which must find itself (a stale
// index or unreachable nodes show as a low fraction).
#include <hnswlib/hnswlib.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <queue>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace
{

struct Vecs {
    size_t n = 0, dim = 0;
    std::vector<float> data; // also holds ivecs as raw int32 bits
};

Vecs read_vecs(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error(path + ": cannot open");
    f.seekg(0, std::ios::end);
    size_t bytes = (size_t)f.tellg();
    f.seekg(0);
    int32_t d = 0;
    f.read(reinterpret_cast<char *>(&d), 4);
    if (!f || d <= 0) throw std::runtime_error(path + ": bad first record");
    size_t rec = 4 + 4 * (size_t)d;
    if (bytes % rec) throw std::runtime_error(path + ": size is not a multiple of the record");
    Vecs v;
    v.n = bytes / rec;
    v.dim = (size_t)d;
    v.data.resize(v.n * v.dim);
    f.seekg(0);
    std::vector<char> buf(rec);
    for (size_t i = 0; i < v.n; i++) {
        f.read(buf.data(), (std::streamsize)rec);
        std::memcpy(&v.data[i * v.dim], buf.data() + 4, 4 * v.dim);
    }
    return v;
}

double now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::vector<size_t> parse_list(const char *s)
{
    std::vector<size_t> out;
    for (const char *p = s; *p;) {
        out.push_back(std::strtoul(p, const_cast<char **>(&p), 10));
        if (*p == ',') p++;
    }
    return out;
}

// Share of GT.ivecs' top-k that an exact scan with the index's own distance finds, over
// `count` queries spread over the set: 1 but for near-ties (float32 here, float64 in the
// generator) unless the metric, the labels or the files disagree.
double gt_agreement(hnswlib::SpaceInterface<float> &space, const Vecs &base, const Vecs &q,
                    const Vecs &gt, size_t k, size_t count)
{
    hnswlib::DISTFUNC<float> dist = space.get_dist_func();
    void *param = space.get_dist_func_param();
    size_t hits = 0;
    for (size_t c = 0; c < count; c++) {
        size_t i = c * q.n / count;
        std::priority_queue<std::pair<float, size_t>> top; // the worst of the best k on top
        for (size_t j = 0; j < base.n; j++) {
            float d = dist(&q.data[i * q.dim], &base.data[j * base.dim], param);
            if (top.size() < k) {
                top.emplace(d, j);
            } else if (d < top.top().first) {
                top.pop();
                top.emplace(d, j);
            }
        }
        std::set<int32_t> truth;
        const int32_t *g = reinterpret_cast<const int32_t *>(&gt.data[i * gt.dim]);
        for (size_t j = 0; j < k; j++)
            truth.insert(g[j]);
        for (; !top.empty(); top.pop())
            hits += truth.count((int32_t)top.top().second);
    }
    return count ? (double)hits / (double)(k * count) : 1.0;
}

// Share of `count` base rows, spread over the set, for which a search for the row itself at
// `ef` returns a point at least as close as the row (itself, or a duplicate): ~0 for an index
// of other data, ~1 for a current one (0.98 at ef 1024 on the 1M harness data, whose
// near-ties leave a few rows hard to reach for a 16-link graph).
double self_found(hnswlib::HierarchicalNSW<float> &alg, hnswlib::SpaceInterface<float> &space,
                  const Vecs &base, size_t count, size_t ef)
{
    hnswlib::DISTFUNC<float> dist = space.get_dist_func();
    void *param = space.get_dist_func_param();
    alg.setEf(ef);
    size_t found = 0;
    for (size_t c = 0; c < count; c++) {
        size_t i = c * base.n / count;
        const float *x = &base.data[i * base.dim];
        auto res = alg.searchKnn(x, 1);
        found +=
            !res.empty() && (res.top().second == i || res.top().first <= dist(x, x, param) + 1e-5f);
    }
    return count ? (double)found / (double)count : 1.0;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 5) {
        std::fprintf(stderr,
                     "usage: hnsw_bench BASE.fvecs QUERIES.fvecs GT.ivecs INDEX_FILE [--m 16] "
                     "[--efc 200] [--threads 2] [--efs 16,32,64,128] [--runs 3] [-k 10] "
                     "[--check 50]\n");
        return 2;
    }
    size_t M = 16, efc = 200, threads = 2, runs = 3, k = 10, check = 50;
    std::vector<size_t> efs = {16, 32, 64, 128};
    for (int i = 5; i + 1 < argc; i += 2) {
        std::string o = argv[i];
        if (o == "--m")
            M = std::strtoul(argv[i + 1], nullptr, 10);
        else if (o == "--efc")
            efc = std::strtoul(argv[i + 1], nullptr, 10);
        else if (o == "--threads")
            threads = std::strtoul(argv[i + 1], nullptr, 10);
        else if (o == "--runs")
            runs = std::strtoul(argv[i + 1], nullptr, 10);
        else if (o == "-k")
            k = std::strtoul(argv[i + 1], nullptr, 10);
        else if (o == "--check")
            check = std::strtoul(argv[i + 1], nullptr, 10);
        else if (o == "--efs")
            efs = parse_list(argv[i + 1]);
        else {
            std::fprintf(stderr, "hnsw_bench: unknown option %s\n", o.c_str());
            return 2;
        }
    }
    try {
        Vecs base = read_vecs(argv[1]), q = read_vecs(argv[2]), gt = read_vecs(argv[3]);
        if (q.dim != base.dim || gt.n != q.n || gt.dim < k)
            throw std::runtime_error("queries/ground truth do not match the base");
        if (efs.empty()) throw std::runtime_error("--efs: no ef given");
        check = std::min({check, q.n, base.n});
        hnswlib::InnerProductSpace space(base.dim);
        std::string index_path = argv[4];
        double build_s = -1;
        hnswlib::HierarchicalNSW<float> *alg;
        struct stat st;
        if (stat(index_path.c_str(), &st) == 0) {
            alg = new hnswlib::HierarchicalNSW<float>(&space, index_path);
        } else {
            double t0 = now_s();
            alg = new hnswlib::HierarchicalNSW<float>(&space, base.n, M, efc, 100);
            // As hnswlib's Python binding: the first point alone, then the rest in parallel.
            alg->addPoint(&base.data[0], 0);
            std::atomic<size_t> next{1};
            std::vector<std::thread> pool;
            for (size_t t = 0; t < threads; t++)
                pool.emplace_back([&] {
                    for (size_t i; (i = next.fetch_add(1)) < base.n;)
                        alg->addPoint(&base.data[i * base.dim], i);
                });
            for (auto &th : pool)
                th.join();
            build_s = now_s() - t0;
            // Saved beside and renamed: an interrupted run leaves no half index to reuse.
            alg->saveIndex(index_path + ".tmp");
            if (std::rename((index_path + ".tmp").c_str(), index_path.c_str()) != 0)
                throw std::runtime_error(index_path + ": cannot rename the saved index");
        }
        stat(index_path.c_str(), &st);
        std::string out = "{\"hnswlib\": \"0.6.2 (Debian headers, -O3 -march=native)\", ";
        char b[256];
        std::snprintf(b, sizeof b,
                      "\"m\": %zu, \"efc\": %zu, \"build_threads\": %zu, \"build_s\": %.3f, "
                      "\"index_bytes\": %lld, \"queries\": %zu, \"efs\": {",
                      M, efc, threads, build_s, (long long)st.st_size, q.n);
        out += b;
        for (size_t e = 0; e < efs.size(); e++) {
            alg->setEf(efs[e]);
            for (size_t i = 0; i < q.n; i++) // one warm-up pass, as annpack search --warmup 1
                alg->searchKnn(&q.data[i * q.dim], k);
            std::vector<double> qps, p50, p99;
            double recall = 0;
            for (size_t r = 0; r < runs; r++) {
                std::vector<double> lat(q.n);
                size_t hits = 0;
                double t0 = now_s();
                for (size_t i = 0; i < q.n; i++) {
                    double s = now_s();
                    auto res = alg->searchKnn(&q.data[i * q.dim], k);
                    lat[i] = now_s() - s;
                    std::set<int32_t> truth;
                    const int32_t *g = reinterpret_cast<const int32_t *>(&gt.data[i * gt.dim]);
                    for (size_t j = 0; j < k; j++)
                        truth.insert(g[j]);
                    while (!res.empty()) {
                        hits += truth.count((int32_t)res.top().second);
                        res.pop();
                    }
                }
                double wall = now_s() - t0;
                qps.push_back((double)q.n / wall);
                std::sort(lat.begin(), lat.end());
                p50.push_back(lat[q.n / 2] * 1e6);
                p99.push_back(lat[std::min(q.n - 1, (size_t)(0.99 * (double)q.n))] * 1e6);
                recall = (double)hits / (double)(k * q.n);
            }
            auto median = [](std::vector<double> v) {
                std::sort(v.begin(), v.end());
                return v[v.size() / 2];
            };
            std::snprintf(b, sizeof b,
                          "%s\"%zu\": {\"qps\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
                          "\"recall\": %.5f}",
                          e ? ", " : "", efs[e], median(qps), median(p50), median(p99), recall);
            out += b;
        }
        size_t ef_max = *std::max_element(efs.begin(), efs.end());
        std::snprintf(b, sizeof b,
                      "}, \"check\": %zu, \"gt_check\": %.5f, \"self_check\": %.5f, "
                      "\"self_check_ef\": %zu",
                      check, gt_agreement(space, base, q, gt, k, check),
                      self_found(*alg, space, base, check, ef_max), ef_max);
        out += b;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        std::snprintf(b, sizeof b, ", \"peak_rss\": %lld}", (long long)ru.ru_maxrss * 1024);
        out += b;
        std::puts(out.c_str());
        delete alg;
    } catch (const std::exception &ex) {
        std::fprintf(stderr, "hnsw_bench: %s\n", ex.what());
        return 1;
    }
    return 0;
}
