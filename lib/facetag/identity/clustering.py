"""Unknown faces -> people: clustering face encodings, in steps a Beam pipeline can spread.

Three steps, each usable alone (``facetag.pipeline.cluster`` runs them as a pipeline,
:class:`FaceClustering` in memory):

1. **Neighbours** (the expensive, parallel part): an HNSW graph over all faces (faiss,
   :func:`build_neighbour_index`), and :func:`nearest_neighbours` for a chunk of them: each face's
   k nearest other faces and their distances.
2. **Graph** (one place, :func:`cluster_graph`): faces are nodes, an edge joins two faces of
   different photos within ``threshold`` of each other; clusters are grown along the edges by
   average linkage (``method="average"``, the default: two clusters merge while their faces are
   within ``threshold`` of each other on average, root mean square; two lone faces pair up only
   when they also stand out from their neighbourhood, see :func:`average_linkage`), or are the
   connected components (``"components"``, single linkage) or Chinese whispers' groups
   (``"whispers"``, as dlib). Then no cluster keeps two faces of one photo (the most strongly
   connected stays) and clusters of one face are left unclustered (-1).
   The graph is a scipy sparse matrix (bench/cluster.py measures its time and memory).
3. **Ids that survive re-runs** (:func:`stable_cluster_ids`): a new clustering's clusters take the
   previous run's ids by overlap, so a name given to a cluster stays with its faces.

Which method and threshold: measured on lfw_dev by ``bench/cluster.py`` (bench/RESULTS.md).
"""

import contextlib
import os
import tempfile

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from facetag.vision.models import CLUSTER_THRESHOLDS, DEFAULT_MODEL

UNCLUSTERED = -1
METHODS = ("average", "components", "whispers")

#: Defaults chosen by bench/cluster.py on lfw_dev people the head never saw (bench/RESULTS.md); the threshold is
#: the default model's (each model's: facetag.vision.models.CLUSTER_THRESHOLDS).
DEFAULT_THRESHOLD = CLUSTER_THRESHOLDS[DEFAULT_MODEL]
DEFAULT_METHOD = "average"
DEFAULT_NEIGHBOURS = 10
#: The neighbour index: faiss's HNSW graph (IndexHNSWFlat). A query costs about log n, so all faces' queries
#: grow as n log n; Annoy, before (2026-12-06), needed search effort growing with n^0.6 for the same recall,
#: 3.2 CPU hours at 1M faces (bench/RESULTS.md, issue 29). Links per node and the build's and the search's
#: effort (efConstruction, efSearch): at 100k synthetic faces the neighbours found were as often the same
#: person as exact search's (0.732 against 0.734; Annoy's 0.734) at 0.05 ms a query (Annoy 1.3 ms).
HNSW_LINKS = 32
HNSW_BUILD_EFFORT = 64
DEFAULT_SEARCH_EFFORT = 64
DEFAULT_LONE_RATIO = 0.85
#: Which neighbour's distance is a face's neighbourhood scale (the 5th: past most people's few photos).
LONE_RANK = 5
#: Faces whose quality (facetag.vision.quality, 0-1) is under this are left out of clusters ("too unsure to
#: group"). 0: none is. On lfw_dev every quality gate tried cost more recall than it gained precision (the
#: faces clustering puts with a stranger are not the low-quality ones there; bench/RESULTS.md, issue 23),
#: so the gate is off by default. Archives with many small or blurred faces may gain from 0.5 (not measured:
#: lfw_dev has no such faces).
DEFAULT_MIN_QUALITY = 0.0


def too_unsure(quality, min_quality=DEFAULT_MIN_QUALITY):
    """Whether a face of this quality stays out of clusters; an unknown quality (None: a face stored before
    facetag measured it) never does."""
    return quality is not None and quality < min_quality


# ---- 1. neighbours ----

def build_neighbour_index(encodings, path, links=HNSW_LINKS, build_effort=HNSW_BUILD_EFFORT):
    """The HNSW index of ``encodings`` (item i = row i), written to the local file ``path``.

    Built by one thread: the graph then depends only on the encodings and their order, so every run and
    every runner finds the same neighbours (faiss's insertion by several threads is not repeatable).
    """
    import faiss

    encodings = np.ascontiguousarray(encodings, np.float32)
    index = faiss.IndexHNSWFlat(encodings.shape[1], links)
    index.hnsw.efConstruction = build_effort
    with _faiss_threads(faiss, 1):
        index.add(encodings)
    faiss.write_index(index, path)


def load_neighbour_index(path):
    import faiss

    return faiss.read_index(path)


@contextlib.contextmanager
def _faiss_threads(faiss, n):
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def nearest_neighbours(index, items, k=DEFAULT_NEIGHBOURS, search_effort=DEFAULT_SEARCH_EFFORT):
    """Each item's ``k`` nearest other items and their L2 distances: two (len(items), k) arrays.

    Rows are padded with item -1 and distance inf where fewer than k other items were found. One thread:
    the pipeline runs many queries at once (facetag.pipeline.cluster.QueryNeighbours).
    """
    import faiss

    items = np.asarray(items, np.int64)
    neighbours = np.full((len(items), k), -1, np.int64)
    distances = np.full((len(items), k), np.inf, np.float32)
    if not len(items):
        return neighbours, distances
    index.hnsw.efSearch = max(search_effort, k + 1)
    with _faiss_threads(faiss, 1):
        squared, found = index.search(index.reconstruct_batch(items), k + 1)
    for row, item in enumerate(items):
        keep = (found[row] >= 0) & (found[row] != item)
        others, dists = found[row][keep][:k], squared[row][keep][:k]
        neighbours[row, :len(others)] = others
        distances[row, :len(others)] = np.sqrt(np.maximum(dists, 0))
    return neighbours, distances


# ---- 2. the graph ----

def neighbour_graph(items, neighbours, distances, photo_ids, threshold):
    """Symmetric sparse graph (CSR, distances as values) of the neighbour pairs within ``threshold``.

    ``items`` are the rows' item numbers (0..n-1 in any order); ``photo_ids`` is indexed by item.
    Pairs of one photo are left out.
    """
    n = len(photo_ids)
    photo_ids = np.asarray(photo_ids)
    index_type = np.int32 if n < 2**31 else np.int64  # halves the graph's memory below 2 billion faces
    rows = np.repeat(np.asarray(items, index_type), neighbours.shape[1])
    cols, dists = neighbours.ravel().astype(index_type), distances.ravel()
    keep = (cols >= 0) & (dists <= threshold)
    rows, cols, dists = rows[keep], cols[keep], dists[keep]
    keep = photo_ids[rows] != photo_ids[cols]
    rows, cols, dists = rows[keep], cols[keep], dists[keep]
    # Both directions, each pair once: an edge found from either end counts.
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    del rows, cols
    _, first = np.unique(lo.astype(np.int64) * n + hi, return_index=True)
    lo, hi, dists = lo[first], hi[first], dists[first]
    graph = sparse.coo_matrix((np.concatenate([dists, dists]), (np.concatenate([lo, hi]), np.concatenate([hi, lo]))),
                              shape=(n, n))
    return graph.tocsr()


def chinese_whispers(graph, iterations=20, seed=0):
    """Chinese whispers (Biemann 2006) on an unweighted graph, as dlib runs it: labels per node.

    Each round visits the nodes in a random order in a few blocks; a node takes the label most of its
    neighbours hold (updates within a block see the labels of the blocks before it).
    """
    n = graph.shape[0]
    adjacency = graph.copy()
    adjacency.data = np.ones_like(adjacency.data, np.float32)
    labels = np.arange(n)
    rng = np.random.default_rng(seed)
    has_edges = np.diff(adjacency.indptr) > 0
    for _ in range(iterations):
        changed = 0
        for block in np.array_split(rng.permutation(np.flatnonzero(has_edges)), 8):
            sub = adjacency[block].tocoo()
            votes = sparse.csr_matrix((sub.data, (sub.row, labels[sub.col])), shape=(len(block), n))
            new = np.asarray(votes.argmax(axis=1)).ravel()
            changed += int(np.count_nonzero(new != labels[block]))
            labels[block] = new
        if changed == 0:
            break
    return labels


def neighbourhood_scales(distances, rank=LONE_RANK):
    """Each face's distance to its ``rank``-th nearest other face (inf where it has fewer), from the neighbour lists."""
    if distances.shape[1] < rank:
        return np.full(len(distances), np.inf, np.float32)
    return distances[:, rank - 1]


def average_linkage(graph, encodings, threshold, scales=None, lone_ratio=None, max_rounds=10_000):
    """Average-linkage agglomeration along the graph's edges: a cluster label per node.

    Two clusters linked by at least one edge merge while the mean squared distance between their
    faces is at most ``threshold`` squared. For unit-length encodings that mean is 2 - 2 a.b, where a
    and b are the clusters' mean encodings, so a cluster is just its sum and size. Each round merges
    every pair of clusters that are each other's best partner (for a reducible linkage such as this
    one, the order plain agglomeration would take); rounds repeat until no pair qualifies.
    ``encodings`` is used as the clusters' sums and overwritten.

    Two lone faces (clusters of one each) also need their distance to be at most ``lone_ratio``
    times the geometric mean of their ``scales`` (:func:`neighbourhood_scales`). Most wrong merges
    are two strangers who each have one photo: the more faces an archive holds, the more such near
    pairs it has by chance, but also the closer every face's neighbourhood, so a pair must stand out
    from it (bench/RESULTS.md).
    """
    n = graph.shape[0]
    sums = encodings
    counts = np.ones(n, np.float32)
    # Each round's work is over the pairs still open, never over all n faces: a person with hundreds of
    # photos takes about a merge a round, so rounds are many (before, each also cost O(n): 79 s at 100k
    # synthetic faces with people of up to 600 photos; bench/RESULTS.md, issue 29).
    parent = np.arange(n)  # a merged cluster points to the one it joined
    coo = sparse.triu(graph, k=1).tocoo()
    lo, hi = coo.row.astype(np.int64), coo.col.astype(np.int64)
    least = 1 - threshold * threshold / 2  # smallest a.b that may merge
    similarity = None  # of each pair, kept from round to round for the pairs whose clusters did not change
    merged = np.zeros(0, np.int64)  # the clusters that grew last round
    for _ in range(max_rounds):
        lo, hi = parent[lo], parent[hi]  # the pairs' ends were clusters last round: one step up is enough
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        valid = lo != hi
        keys = lo[valid] * n + hi[valid]
        order = np.argsort(keys, kind="stable")  # each pair once (np.unique's hashing: 3x slower here)
        keys = keys[order]
        first = np.concatenate([[True], keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, bool)
        lo, hi = keys[first] // n, keys[first] % n
        if similarity is None:
            similarity, stale = np.empty(len(lo), np.float32), np.ones(len(lo), bool)
        else:
            similarity = similarity[valid][order][first]
            stale = np.isin(lo, merged) | np.isin(hi, merged)  # a pair of two unchanged clusters keeps its value
        todo = np.flatnonzero(stale)
        for start in range(0, len(todo), 1 << 16):  # a.b in chunks: never a (pairs, dim) array in memory
            rows = todo[start:start + (1 << 16)]
            a, b = lo[rows], hi[rows]
            similarity[rows] = np.einsum("ij,ij->i", sums[a], sums[b]) / (counts[a] * counts[b])
        # A pair less similar than the threshold allows never merges later either (a merge averages the
        # similarities of its parts): it is dropped for good.
        open_pairs = similarity >= least
        lo, hi, similarity = lo[open_pairs], hi[open_pairs], similarity[open_pairs]
        close = np.ones(len(lo), bool)
        if lone_ratio is not None:
            lone = (counts[lo] == 1) & (counts[hi] == 1)  # a lone face's cluster is its own node
            distance = np.sqrt(np.maximum(2 - 2 * similarity[lone], 0))
            close[lone] = distance <= lone_ratio * np.sqrt(scales[lo[lone]] * scales[hi[lone]])
        if not close.any():
            break
        a, b, sim = lo[close], hi[close], similarity[close]
        nodes, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
        ia, ib = inverse[:len(a)], inverse[len(a):]
        best = np.full(len(nodes), -np.inf, np.float32)  # each cluster's best partner's similarity
        np.maximum.at(best, ia, sim)
        np.maximum.at(best, ib, sim)
        mutual = (sim == best[ia]) & (sim == best[ib])
        a, b, ia, ib = a[mutual], b[mutual], ia[mutual], ib[mutual]
        once = np.bincount(np.concatenate([ia, ib]), minlength=len(nodes)) == 1  # exact ties wait a round
        single = once[ia] & once[ib]
        a, b = (a[single], b[single]) if single.any() else (a[:1], b[:1])
        sums[a] += sums[b]
        counts[a] += counts[b]
        parent[b] = a
        merged = a
    while True:  # every face to its final cluster
        up = parent[parent]
        if np.array_equal(up, parent):
            return parent
        parent = up


def cluster_graph(graph, photo_ids, method=DEFAULT_METHOD, min_size=2, seed=0, encodings=None, threshold=None,
                  scales=None, lone_ratio=None):
    """Cluster label of each node: 0 the largest cluster, ..., -1 unclustered (its cluster was smaller than
    ``min_size``, or it lost a same-photo conflict). Method "average" also needs the nodes' ``encodings``
    (float32, overwritten) and its merge ``threshold``, and with ``lone_ratio`` their ``scales``
    (:func:`average_linkage`)."""
    if method == "average":
        labels = average_linkage(graph, encodings, threshold, scales, lone_ratio)
    elif method == "components":
        _, labels = connected_components(graph, directed=False)
    elif method == "whispers":
        labels = chinese_whispers(graph, seed=seed)
    else:
        raise ValueError(f"unknown clustering method {method!r}: use one of {', '.join(METHODS)}")
    labels = _one_face_per_photo(graph, labels, np.asarray(photo_ids))
    return _by_size(labels, min_size)


def _one_face_per_photo(graph, labels, photo_ids):
    """Where a cluster holds several faces of one photo, keep the one with the strongest ties to the cluster.

    Ties: the sum over its edges inside the cluster of (2 - distance) (encodings are unit length, so
    every term is positive). The others leave the cluster (label -1).
    """
    _, photo = np.unique(photo_ids, return_inverse=True)
    order = np.lexsort((photo, labels))
    same = (labels[order][1:] == labels[order][:-1]) & (photo[order][1:] == photo[order][:-1])
    if not same.any():
        return labels
    coo = graph.tocoo()
    inside = labels[coo.row] == labels[coo.col]
    strength = np.bincount(coo.row[inside], weights=2.0 - coo.data[inside], minlength=len(labels))
    # Per (cluster, photo) group, the strongest member first; every later member of a group leaves.
    order = np.lexsort((-strength, photo, labels))
    group_start = np.ones(len(order), bool)
    group_start[1:] = (labels[order][1:] != labels[order][:-1]) | (photo[order][1:] != photo[order][:-1])
    labels = labels.copy()
    labels[order[~group_start]] = UNCLUSTERED
    return labels


def _by_size(labels, min_size):
    """Relabel: clusters of at least ``min_size`` faces numbered from the largest (ties: lowest member), others -1."""
    result = np.full(len(labels), UNCLUSTERED, np.int64)
    member = labels != UNCLUSTERED
    values, first, inverse, counts = np.unique(labels[member], return_index=True, return_inverse=True,
                                               return_counts=True)
    big = counts >= min_size
    rank = np.full(len(values), UNCLUSTERED, np.int64)
    order = np.lexsort((np.flatnonzero(member)[first][big], -counts[big]))
    rank[np.flatnonzero(big)[order]] = np.arange(len(order))
    result[member] = rank[inverse]
    return result


def centre_distances(encodings, labels):
    """Unit-length centre of each cluster (rows by label) and each face's L2 distance to its centre (nan: unclustered)."""
    encodings = np.asarray(encodings, np.float32)
    clusters = int(labels.max()) + 1 if len(labels) else 0
    member = labels != UNCLUSTERED
    centres = np.zeros((clusters, encodings.shape[1]), np.float64)
    np.add.at(centres, labels[member], encodings[member])
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    distances = np.full(len(labels), np.nan, np.float32)
    distances[member] = np.linalg.norm(encodings[member] - centres[labels[member]], axis=1)
    return centres.astype(np.float32), distances


# ---- 3. ids across runs ----

def stable_cluster_ids(new_clusters: dict, previous_clusters: dict[str, int], min_overlap: float = 0.5,
                       next_id: int | None = None) -> dict:
    """Map each new cluster to the previous run's id it overlaps most, else to a fresh id.

    ``new_clusters`` and ``previous_clusters``: ``{face_id: cluster}`` of the clustered faces of this
    run and of the previous one (previous ids are ints). Returns ``{new cluster: id}``; see
    :func:`match_cluster_ids` for the rule.
    """
    overlaps, present = {}, {}
    for face, new in new_clusters.items():
        old = previous_clusters.get(face)
        if old is not None:
            overlaps[new, old] = overlaps.get((new, old), 0) + 1
            present[old] = present.get(old, 0) + 1
    return match_cluster_ids(set(new_clusters.values()), overlaps, present,
                             max(previous_clusters.values(), default=-1) + 1 if next_id is None else next_id,
                             min_overlap)


def match_cluster_ids(new_clusters, overlaps, present, next_id, min_overlap=0.5):
    """``{new cluster: id}`` from overlap counts, for runs too large for :func:`stable_cluster_ids`'s dicts.

    ``overlaps``: ``{(new cluster, previous id): faces in both}``; ``present``: ``{previous id: its
    faces clustered in this run}``. A new cluster takes a previous id when they share at least
    ``min_overlap`` of those faces; pairs are settled from the largest overlap down, each id going
    to at most one new cluster (a split keeps the id on its larger part). The other new clusters
    get fresh ids counting up from ``next_id`` (past every id used before, so an old id, and the
    name given to it, never lands on other faces).
    """
    mapping, taken = {}, set()
    for (new, old), shared in sorted(overlaps.items(), key=lambda item: (-item[1], item[0])):
        if new not in mapping and old not in taken and shared >= min_overlap * present[old]:
            mapping[new] = old
            taken.add(old)
    for new in sorted(set(new_clusters) - set(mapping)):
        mapping[new] = next_id
        next_id += 1
    return mapping


# ---- all in memory ----

class FaceClustering:
    """Clusters of face encodings, one person each, with scikit-learn's estimator conventions.

    ``fit(encodings, photo_ids)`` (unit-length rows; ``photo_ids`` one per row, None: every face its own
    photo) sets ``labels_`` (cluster per face, 0 the largest, -1 unclustered), ``sizes_`` (its
    cluster's size, 0 when unclustered), ``distances_`` (to its cluster's centre, nan when
    unclustered), ``cluster_centers_`` and ``n_clusters_``. ``lone_ratio`` (average linkage only; None:
    off): see :func:`average_linkage`.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, method: str = DEFAULT_METHOD,
                 n_neighbors: int = DEFAULT_NEIGHBOURS, search_effort: int = DEFAULT_SEARCH_EFFORT,
                 min_size: int = 2, seed: int = 0, edge_threshold: float | None = None,
                 lone_ratio: float | None = DEFAULT_LONE_RATIO):
        self.threshold = threshold
        self.edge_threshold = edge_threshold
        self.lone_ratio = lone_ratio
        self.method = method
        self.n_neighbors = n_neighbors
        self.search_effort = search_effort
        self.min_size = min_size
        self.seed = seed

    def fit(self, encodings: np.ndarray, photo_ids=None) -> "FaceClustering":
        encodings = np.asarray(encodings, np.float32)
        photo_ids = np.arange(len(encodings)) if photo_ids is None else np.asarray(photo_ids)
        if len(photo_ids) != len(encodings):
            raise ValueError(f"{len(encodings)} encodings but {len(photo_ids)} photo ids")
        _, photo_ids = np.unique(photo_ids, return_inverse=True)  # any ids (paths too) -> small ints
        items = np.arange(len(encodings))
        if len(encodings) == 0:
            neighbours, distances = np.zeros((0, self.n_neighbors), np.int64), np.zeros((0, self.n_neighbors), np.float32)
        else:
            neighbours, distances = self._neighbours(encodings, items)
        graph = neighbour_graph(items, neighbours, distances, photo_ids, self.edge_threshold or self.threshold)
        self.labels_ = cluster_graph(graph, photo_ids, self.method, self.min_size, self.seed, encodings.copy(),
                                     self.threshold, neighbourhood_scales(distances), self.lone_ratio)
        self.cluster_centers_, self.distances_ = centre_distances(encodings, self.labels_)
        self.n_clusters_ = len(self.cluster_centers_)
        clustered = self.labels_ >= 0
        self.sizes_ = np.zeros(len(self.labels_), np.int64)
        counts = np.bincount(self.labels_[clustered], minlength=self.n_clusters_)
        self.sizes_[clustered] = counts[self.labels_[clustered]]
        return self

    def _neighbours(self, encodings, items):
        with tempfile.TemporaryDirectory(prefix="facetag-cluster-") as tmp:
            path = os.path.join(tmp, "neighbours.hnsw")
            build_neighbour_index(encodings, path)
            neighbours, distances = nearest_neighbours(load_neighbour_index(path), items, self.n_neighbors,
                                                       self.search_effort)
        return neighbours, distances

    def fit_predict(self, encodings: np.ndarray, photo_ids=None) -> np.ndarray:
        return self.fit(encodings, photo_ids).labels_
