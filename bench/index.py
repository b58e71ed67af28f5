"""Benchmark of the gallery index: Annoy against exact search, on synthetic galleries of 100k and 1M faces.

What is measured, for each gallery size N:

* Annoy (``AnnoyIndex(128, "euclidean")``, built as ``facetag.identity.gallery_index`` builds it, with
  on_disk_build above ``ON_DISK_BUILD_ITEMS``) for each number of trees in ``TREES`` and each
  search_k in ``SEARCH_K_FACTORS`` times Annoy's default (trees x k): build time (add_item + build +
  save, in a fresh child process), index file size, the build's peak resident memory above the
  child's resident size before it (VmHWM reset through /proc/self/clear_refs; with on_disk_build it
  includes the pages of the memory-mapped index file), latency of single-vector k=10 queries (p50,
  p99, mean), recall@1 (Annoy's first result is the exact nearest item) and recall@10 (share of the
  exact 10 nearest found).
* Exact search in the same run: one matrix product per batch of queries over the whole gallery
  (float32, ||q||^2 + ||g||^2 - 2 q.g, argpartition for the top 10), as mean ms per query. It is also
  the ground truth for recall. numpy's BLAS may use every core; Annoy answers a query on one.
* The gallery size from which the index pays: the fastest Annoy setting with recall@1 >= 0.99 has a
  lower mean latency than exact search's cost per query.

The galleries are synthetic, shaped like real encodings (isotropic noise is the worst case for
trees): identity centres are drawn from the between-identity covariance of real facetag-128
encodings, each identity's samples from their within-identity covariance, and every vector is
L2-normalised. Queries are held-out samples of gallery identities, so they have true near neighbours.
The report compares the synthetic and real PCA spectra and identity distances.

Run from the repository root (the full default run takes many minutes, mostly Annoy builds at 1M)::

    python bench/index.py                                  # N = 100,000 and 1,000,000
    python bench/index.py --sizes 100000 --out bench/index_results.md
    python bench/index.py --quick                          # N = 20,000, one Annoy build: a smoke test
    python bench/index.py --real enc.npy --real-names names.npy   # real encodings from files

By default the real encodings are computed with facetag from ../shared/data/lfw_dev (cached on disk
after the first time). The Markdown report goes to stdout (and to --out); progress to stderr.
"""

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from annoy import AnnoyIndex
from benchutil import machine_facts

from facetag.identity.gallery_index import ANNOY_FILE, build_index

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LFW_DEV = os.path.join(REPO, "..", "shared", "data", "lfw_dev")

DIM = 128
K = 10
TREES = (16, 32, 64)
SEARCH_K_FACTORS = (1, 3, 10, 30, 100)  # x Annoy's default search_k, trees * K; factor 1 is passed as -1
QUICK = {"sizes": [20_000], "trees": (32,), "factors": (1, 10)}
RECALL_TARGET = 0.99
CHUNK_ROWS = 65_536  # rows generated at a time, to keep float temporaries small
EXACT_BATCH_CELLS = 1 << 28  # queries x gallery scores held at once by exact search (1 GiB of float32)
SPECTRUM_ROWS = 20_000
DISTANCE_ROWS = 4_000


@dataclass(frozen=True)
class IdentityModel:
    """A Gaussian model of encodings: identity centres around ``mean``, samples around their centre."""

    mean: np.ndarray  # (DIM,)
    between: np.ndarray  # (DIM, DIM) factor L of the between-identity covariance L L^T
    within: np.ndarray  # (DIM, DIM) factor of the within-identity covariance


# ---- real encodings and the synthetic generator ----

def real_encodings(real_path=None, names_path=None):
    """Real facetag-128 encodings (rows L2-normalised) and the identity of each row."""
    if real_path:
        return np.load(real_path).astype(np.float32), np.load(names_path, allow_pickle=True)
    if not os.path.isdir(LFW_DEV):
        sys.exit(f"no real encodings: {os.path.normpath(LFW_DEV)} is absent; pass --real ENC.npy --real-names NAMES.npy")
    from facetag.learn.evaluation import read_pairs
    from facetag.learn.filecache import FileEncoder
    from facetag.vision.models import load_model

    pairs = read_pairs(os.path.join(LFW_DEV, "pairs.txt"), os.path.join(LFW_DEV, "images"))
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    backbone_512 = FileEncoder(margin=0.25).encode(paths).encodings
    encodings = load_model("facetag-128").project(backbone_512)
    return encodings, np.array([p.split(os.sep)[-2] for p in paths])


def psd_factor(cov):
    """L with L L^T = cov, negative eigenvalues (estimation noise) clipped to zero."""
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))).astype(np.float32)


def fit_identity_model(encodings, names):
    """Between- and within-identity covariances of real encodings, from identities with >= 2 rows."""
    x = np.asarray(encodings, np.float64)
    _, row_identity, counts = np.unique(names, return_inverse=True, return_counts=True)
    sums = np.zeros((len(counts), x.shape[1]))
    np.add.at(sums, row_identity, x)
    means = sums / counts[:, None]
    multi = counts >= 2
    in_multi = multi[row_identity]
    residuals = x[in_multi] - means[row_identity[in_multi]]
    within = residuals.T @ residuals / (in_multi.sum() - multi.sum())  # pooled, unbiased
    # A mean of n rows also carries within/n of sampling noise, which is not between-identity variance.
    between = np.cov(means[multi], rowvar=False) - np.mean(1 / counts[multi]) * within
    return IdentityModel(x.mean(axis=0).astype(np.float32), psd_factor(between), psd_factor(within))


def l2_normalise(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def draw_centres(model, identities, rng):
    """Unnormalised identity centres."""
    return model.mean + rng.standard_normal((identities, DIM), dtype=np.float32) @ model.between.T


def draw_samples(model, centres, rng):
    """One L2-normalised sample around each given centre."""
    return l2_normalise(centres + rng.standard_normal(centres.shape, dtype=np.float32) @ model.within.T)


def draw_gallery(model, centres, rows, per_identity, rng):
    """``rows`` samples, row i of identity i // per_identity, generated in chunks."""
    gallery = np.empty((rows, DIM), np.float32)
    for start in range(0, rows, CHUNK_ROWS):
        chunk = np.arange(start, min(rows, start + CHUNK_ROWS))
        gallery[chunk] = draw_samples(model, centres[chunk // per_identity], rng)
    return gallery


def synthetic_gallery(model, rows, per_identity, rng):
    """A gallery of ``rows`` encodings, their identities and the identity centres."""
    centres = draw_centres(model, -(-rows // per_identity), rng)
    return draw_gallery(model, centres, rows, per_identity, rng), np.arange(rows) // per_identity, centres


def held_out_queries(model, centres, count, rng):
    """New samples of ``count`` gallery identities (distinct where there are enough)."""
    chosen = rng.choice(len(centres), size=count, replace=count > len(centres))
    return draw_samples(model, centres[chosen], rng)


# ---- how alike synthetic and real encodings are ----

def explained_variance_ratios(x, top=10):
    eigenvalues = np.linalg.eigvalsh(np.cov(x, rowvar=False))[::-1]
    return eigenvalues[:top] / eigenvalues.sum()


def identity_distances(x, labels):
    """(mean, sd) of the L2 distance between rows of the same identity, and of different identities."""
    sq = np.einsum("ij,ij->i", x, x)
    distances = np.sqrt(np.clip(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0, None))
    same = labels[:, None] == labels[None, :]
    upper = np.triu(np.ones_like(same), k=1)
    same_d, different_d = distances[same & upper], distances[~same & upper]
    return (same_d.mean(), same_d.std()), (different_d.mean(), different_d.std())


def likeness_table(real, real_names, model, per_identity, seed):
    """Markdown table: PCA spectrum and identity distances, real against synthetic."""
    synthetic, labels, _ = synthetic_gallery(model, SPECTRUM_ROWS, per_identity, np.random.default_rng([seed, 0]))
    lines = ["| data | top-10 PCA explained-variance ratios | same identity L2 | different identities L2 |",
             "|---|---|---|---|"]
    for name, x, ids in (("real", real, real_names), ("synthetic", synthetic, labels)):
        ratios = " ".join(f"{r:.3f}" for r in explained_variance_ratios(x))
        (same_mean, same_sd), (diff_mean, diff_sd) = identity_distances(x[:DISTANCE_ROWS], ids[:DISTANCE_ROWS])
        lines.append(f"| {name} | {ratios} | {same_mean:.3f} ± {same_sd:.3f} | {diff_mean:.3f} ± {diff_sd:.3f} |")
    return lines


# ---- exact search ----

def exact_search(gallery, queries, k, batch):
    """Ids of the k nearest gallery rows of each query, nearest first, and the seconds it took."""
    ids = np.empty((len(queries), k), np.int64)
    start = time.perf_counter()
    for lo in range(0, len(queries), batch):
        # Encodings are unit length, so ||q - g||^2 = 2 - 2 q.g: ranking by -q.g is ranking by distance.
        d = queries[lo:lo + batch] @ gallery.T
        np.negative(d, out=d)
        top = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d, top, axis=1), axis=1)
        ids[lo:lo + batch] = np.take_along_axis(top, order, axis=1)
    return ids, time.perf_counter() - start


# ---- Annoy ----

def resident_mb(field):
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in MiB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def reset_peak_rss():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # Linux: set VmHWM to the current resident size


def build_annoy(gallery_path, index_dir, trees, seed):
    """facetag's own index build (Annoy file, items table, metadata and checksums) of the gallery.

    Run in a fresh process so its peak memory is its own. Galleries above
    ON_DISK_BUILD_ITEMS are built on disk, as in production.
    """
    gallery = np.load(gallery_path)
    names = [str(i) for i in range(len(gallery))]
    reset_peak_rss()
    before = resident_mb("VmRSS")
    start = time.perf_counter()
    build_index(gallery, face_ids=names, identities=names, sources=names, model_id="bench", out_dir=index_dir,
                trees=trees, seed=seed)
    seconds = time.perf_counter() - start
    return seconds, resident_mb("VmHWM") - before


def build_in_child(*args):
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(build_annoy, *args).result()


def query_annoy(index, queries, k, search_k):
    """Ids found for each query and each query's latency in ms."""
    found = np.empty((len(queries), k), np.int64)
    latencies = np.empty(len(queries))
    for i, q in enumerate(queries):  # numpy rows, as facetag's GalleryIndex passes them
        start = time.perf_counter()
        found[i] = index.get_nns_by_vector(q, k, search_k=search_k)
        latencies[i] = (time.perf_counter() - start) * 1000
    return found, latencies


def recall_at_1(found, truth):
    return float(np.mean(found[:, 0] == truth[:, 0]))


def recall_at_k(found, truth):
    return float(np.mean([len(np.intersect1d(f, t)) / len(t) for f, t in zip(found, truth)]))


# ---- one gallery size ----

def benchmark_size(model, size, args, trees_grid, factors):
    """Result rows (dicts) for one gallery size: exact search first, then each Annoy setting."""
    rng = np.random.default_rng([args.seed, size])
    gallery, _, centres = synthetic_gallery(model, size, args.per_identity, rng)
    queries = held_out_queries(model, centres, args.queries, rng)
    del centres

    batch = max(1, min(256, EXACT_BATCH_CELLS // size))
    exact_search(gallery, queries[:batch], K, batch)  # warm-up: BLAS threads, page faults
    truth, exact_s = exact_search(gallery, queries, K, batch)
    exact_ms = exact_s * 1000 / len(queries)
    rows = [{"size": size, "method": f"exact (batch {batch})", "trees": "", "search_k": "",
             "build_s": 0.0, "index_mb": gallery.nbytes / 2**20, "peak_mb": None,
             "p50": None, "p99": None, "mean": exact_ms, "recall1": 1.0, "recall10": 1.0}]

    with tempfile.TemporaryDirectory(prefix="facetag-bench-") as tmp:
        gallery_path = os.path.join(tmp, "gallery.npy")
        np.save(gallery_path, gallery)
        del gallery
        for trees in trees_grid:
            index_dir = os.path.join(tmp, f"index-{trees}")
            index_path = os.path.join(index_dir, ANNOY_FILE)
            print(f"N={size:,}: building {trees} trees", file=sys.stderr, flush=True)
            build_s, peak_mb = build_in_child(gallery_path, index_dir, trees, args.seed)
            index = AnnoyIndex(DIM, "euclidean")
            index.load(index_path)
            query_annoy(index, queries, K, -1)  # warm-up: page the memory-mapped index in
            for factor in factors:
                search_k = -1 if factor == 1 else factor * trees * K
                found, latencies = query_annoy(index, queries, K, search_k)
                rows.append({"size": size, "method": "annoy", "trees": trees,
                             "search_k": f"-1 (={trees * K})" if search_k == -1 else search_k,
                             "build_s": build_s, "index_mb": os.path.getsize(index_path) / 2**20, "peak_mb": peak_mb,
                             "p50": np.percentile(latencies, 50), "p99": np.percentile(latencies, 99),
                             "mean": latencies.mean(), "recall1": recall_at_1(found, truth),
                             "recall10": recall_at_k(found, truth)})
            index.unload()
            shutil.rmtree(index_dir)
    return rows


# ---- report ----

def fmt(value, digits):
    return "—" if value is None else f"{value:.{digits}f}"


def results_table(rows):
    exact_ms = {r["size"]: r["mean"] for r in rows if r["method"] != "annoy"}
    lines = ["| N | method | trees | search_k | build s | index MB | build peak MB | p50 ms | p99 ms | mean ms "
             "| recall@1 | recall@10 | speed-up vs exact |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['size']:,} | {r['method']} | {r['trees']} | {r['search_k']} | {fmt(r['build_s'], 1)} "
                     f"| {fmt(r['index_mb'], 0)} | {fmt(r['peak_mb'], 0)} | {fmt(r['p50'], 3)} | {fmt(r['p99'], 3)} "
                     f"| {fmt(r['mean'], 3)} | {r['recall1']:.3f} | {r['recall10']:.3f} "
                     f"| {exact_ms[r['size']] / r['mean']:.2f}x |")
    return lines


def fastest_accurate(rows, size):
    """The fastest Annoy row of this size with recall@1 >= RECALL_TARGET, or None."""
    accurate = [r for r in rows if r["size"] == size and r["method"] == "annoy" and r["recall1"] >= RECALL_TARGET]
    return min(accurate, key=lambda r: r["mean"], default=None)


def crossover_size(small, large, speedups):
    """Where speed-up (exact / Annoy) reaches 1 between two sizes, interpolated in log-log."""
    a, b = np.log(speedups[small]), np.log(speedups[large])
    t = -a / (b - a)
    return float(np.exp(np.log(small) + t * (np.log(large) - np.log(small))))


def pays_from(speedups):
    """Smallest measured size from which Annoy is faster at every larger measured size too, or None."""
    sizes = sorted(speedups)
    paying = [s for i, s in enumerate(sizes) if all(speedups[t] > 1 for t in sizes[i:])]
    return paying[0] if paying else None


def ratio_lines(rows):
    """Per size, exact search against the fastest Annoy setting at the recall target; then where the index pays."""
    lines, speedups = [], {}
    for size in sorted({r["size"] for r in rows}):
        exact = next(r for r in rows if r["size"] == size and r["method"] != "annoy")
        best = fastest_accurate(rows, size)
        if best is None:
            lines.append(f"- N = {size:,}: exact {exact['mean']:.3f} ms/query; no Annoy setting reached "
                         f"recall@1 ≥ {RECALL_TARGET}")
            speedups[size] = 0.0  # counts as not paying
            continue
        speedups[size] = exact["mean"] / best["mean"]
        lines.append(f"- N = {size:,}: exact {exact['mean']:.3f} ms/query; fastest Annoy with recall@1 ≥ {RECALL_TARGET}: "
                     f"{best['trees']} trees, search_k {best['search_k']}, {best['mean']:.3f} ms mean "
                     f"(recall@1 {best['recall1']:.3f}) → {speedups[size]:.2f}x exact's speed")
    sizes, first = sorted(speedups), pays_from(speedups)
    if first is None:
        verdict = f"The index does not pay up to N = {sizes[-1]:,}"
    elif first == sizes[0]:
        verdict = f"The index pays from N = {first:,} (the smallest size measured) or below"
    else:
        below = sizes[sizes.index(first) - 1]
        estimate = (f", about N = {crossover_size(below, first, speedups):,.0f} by log-log interpolation of the "
                    "speed-up") if speedups[below] > 0 else ""
        verdict = f"The index starts to pay between N = {below:,} and {first:,}{estimate}"
    lines.append(f"\n**{verdict}.** It pays where the fastest Annoy setting with recall@1 ≥ {RECALL_TARGET} has a "
                 "lower mean latency than exact search's cost per query, at that size and every larger one measured.")
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="gallery sizes")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: N = {QUICK['sizes'][0]:,}, {QUICK['trees'][0]} trees, search_k factors {QUICK['factors']}")
    parser.add_argument("--queries", type=int, default=1000, help="query vectors per size")
    parser.add_argument("--per-identity", type=int, default=5, help="gallery samples per synthetic identity")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", help=".npy of real (N, 128) encodings instead of computing them from lfw_dev")
    parser.add_argument("--real-names", help=".npy of the identity of each row of --real")
    parser.add_argument("--out", help="also write the report to this Markdown file")
    args = parser.parse_args(argv)
    if bool(args.real) != bool(args.real_names):
        parser.error("--real and --real-names go together")
    return args


def main(argv=None):
    args = parse_args(argv)
    sizes, trees_grid, factors = (QUICK["sizes"], QUICK["trees"], QUICK["factors"]) if args.quick \
        else (args.sizes, TREES, SEARCH_K_FACTORS)
    header = ["# Gallery index benchmark: Annoy against exact search", ""] + machine_facts()
    real, names = real_encodings(args.real, args.real_names)
    model = fit_identity_model(real, names)
    header += [f"- Data: synthetic {DIM}-d L2-normalised encodings, {args.per_identity} per identity, fitted to "
               f"{len(real):,} real encodings of {len(np.unique(names)):,} identities; {args.queries:,} queries per "
               f"size, each a held-out sample of a gallery identity; k = {K}; seed {args.seed}",
               "", "## Synthetic against real encodings", ""]
    header += likeness_table(real, names, model, args.per_identity, args.seed)

    rows = []
    for size in sizes:
        rows += benchmark_size(model, size, args, trees_grid, factors)
    report = "\n".join(header + ["", "## Results", ""] + results_table(rows) + ["", "## Ratios", ""] + ratio_lines(rows))
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report + "\n")


if __name__ == "__main__":
    main()
