"""An on-disk gallery index: Annoy for approximate nearest neighbours, plus who each item is.

An index folder holds ``faces.annoy`` (Annoy, metric "euclidean", which on
L2-normalised encodings is exactly facetag's distance), ``items.parquet``
(item number -> face id, identity, source photo) and ``index.json`` (model id,
encoding size, metric, trees, item count, file checksums). Folders may be
local or any Beam FileSystems path; remote ones are copied to a local cache
once per process, since Annoy memory-maps a local file (which also lets every
process on a machine share one copy of the index in memory).
"""

import json
import os
import tempfile
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from facetag.errors import FaceTagError
from facetag.identity.matching import best_match, rank_identities
from facetag.io.checksums import file_sha256
from facetag.io.files import copy_file, is_remote, join, read_bytes
from facetag.vision.models import METRIC, check_same_model, model_advice

ANNOY_FILE = "faces.annoy"
ITEMS_FILE = "items.parquet"
META_FILE = "index.json"

#: Index settings by gallery size, from bench/index.py (bench/RESULTS.md): the
#: fewest trees and nodes searched per query that still find the exact nearest
#: face for at least 99% of queries, at a lower cost than exact search.
#: (items up to, trees, search_k). Annoy's own default search_k (trees x
#: results) found the nearest face for only 97% of queries on real lfw_dev
#: encodings.
INDEX_SETTINGS = ((200_000, 32, 10_000), (None, 64, 64_000))


def default_settings(items):
    """``(trees, search_k)`` for a gallery of ``items`` faces."""
    for limit, trees, search_k in INDEX_SETTINGS:
        if limit is None or items <= limit:
            return trees, search_k


#: Galleries above this many faces are built with Annoy's on_disk_build,
#: so the build does not hold the whole index in memory.
ON_DISK_BUILD_ITEMS = 200_000


def build_index(encodings, *, face_ids, identities, sources, model_id, out_dir, trees=None, seed=0):
    """Build the index folder ``out_dir`` (local) from gallery encodings; returns its metadata.

    ``trees`` defaults by gallery size (INDEX_SETTINGS); the matching
    ``search_k`` is stored in the metadata for the match stage to use.
    """
    from annoy import AnnoyIndex

    encodings = np.asarray(encodings, np.float32)
    if len(encodings) == 0:
        raise FaceTagError("the gallery has no labelled face to index")
    os.makedirs(out_dir, exist_ok=True)
    default_trees, search_k = default_settings(len(encodings))
    trees = trees or default_trees
    dim = encodings.shape[1]
    index = AnnoyIndex(dim, METRIC)
    index.set_seed(seed)
    annoy_path = os.path.join(out_dir, ANNOY_FILE)
    on_disk = len(encodings) > ON_DISK_BUILD_ITEMS
    if on_disk:
        index.on_disk_build(annoy_path)
    for i, row in enumerate(encodings):
        index.add_item(i, row)
    index.build(trees, n_jobs=-1)
    if not on_disk:
        index.save(annoy_path)
    index.unload()
    items = pa.table({
        "item": pa.array(np.arange(len(encodings)), pa.int64()),
        "face_id": pa.array(face_ids, pa.string()),
        "identity": pa.array(identities, pa.string()),
        "source": pa.array(sources, pa.string()),
    })
    pq.write_table(items, os.path.join(out_dir, ITEMS_FILE))
    meta = {
        "model_id": model_id,
        "encoding_size": dim,
        "metric": METRIC,
        "trees": trees,
        "search_k": search_k,
        "items": len(encodings),
        "identities": len(set(identities)),
        "on_disk_build": on_disk,
        "checksums": {name: file_sha256(os.path.join(out_dir, name)) for name in (ANNOY_FILE, ITEMS_FILE)},
    }
    with open(os.path.join(out_dir, META_FILE), "w") as f:
        json.dump(meta, f, indent=2)
    return meta


def publish_index(local_dir, index_dir):
    """Copy an index built in ``local_dir`` to ``index_dir`` (any FileSystems path), its metadata last.

    A local index's files are replaced by renames: a process that has the old index memory-mapped
    keeps reading the old file, instead of crashing on a file rewritten under it.
    """
    if not is_remote(index_dir):
        os.makedirs(index_dir, exist_ok=True)
    for name in (ANNOY_FILE, ITEMS_FILE, META_FILE):
        copy_file(os.path.join(local_dir, name), join(index_dir, name))


def gallery_items(index_dir):
    """``(encodings, face_ids, identities, sources)`` of every item of an index, read back from it.

    Annoy keeps each item's vector exactly (float32), so an index can be rebuilt with more faces
    without the photos or encodings it was built from.
    """
    index = GalleryIndex(index_dir)
    local = _local_copy(index_dir, index.meta)
    items = pq.read_table(os.path.join(local, ITEMS_FILE)).sort_by("item").to_pydict()
    encodings = np.array([index.annoy.get_item_vector(i) for i in items["item"]], np.float32)
    index.annoy.unload()
    return encodings, items["face_id"], items["identity"], items["source"]


def index_id(meta):
    """A short id of an index's content: two indexes with the same files have the same id."""
    import hashlib

    return hashlib.sha256(json.dumps(meta["checksums"], sort_keys=True).encode()).hexdigest()[:16]


def read_index_metadata(index_dir):
    """The index's ``index.json``; FaceTagError naming the folder when it is no index."""
    path = join(index_dir, META_FILE)
    try:
        return json.loads(read_bytes(path))
    except Exception as e:  # noqa: BLE001 - any failure to read means "not an index"
        raise FaceTagError(f"{index_dir} is not a facetag index (cannot read {path}: {e}); "
                           "build one with 'facetag enroll'") from e


def check_index_model(index_meta, model_id, user):
    """Raise ModelMismatchError when the index holds encodings of another model than ``user``'s ``model_id``."""
    check_same_model(index_meta["model_id"], model_id, holder="the index", user=user,
                     remedy=f"{model_advice(index_meta['model_id'])}, or re-enrol the gallery with this run's model")


class GalleryIndex:
    """An opened index folder; ``identify`` answers queries. Use :func:`open_index` to share one per process."""

    def __init__(self, index_dir, search_k=None):
        from annoy import AnnoyIndex

        self.meta = read_index_metadata(index_dir)
        local = _local_copy(index_dir, self.meta)
        self.search_k = search_k or self.meta["search_k"]
        self.annoy = AnnoyIndex(self.meta["encoding_size"], self.meta["metric"])
        self.annoy.load(os.path.join(local, ANNOY_FILE))  # memory-mapped
        self.identities = np.asarray(pq.read_table(os.path.join(local, ITEMS_FILE), columns=["identity"])
                                     .column("identity").to_pylist(), dtype=object)

    def identify(self, encoding, threshold, k=5):
        """A :class:`facetag.identity.matching.Match` for one encoding: nearest identity or unknown, top-k identities."""
        items, dists = self.annoy.get_nns_by_vector(np.asarray(encoding, np.float32), 8 * k,
                                                    search_k=self.search_k, include_distances=True)
        return best_match(rank_identities(self.identities[items], dists, k), threshold)


def _local_copy(index_dir, meta):
    if not is_remote(index_dir):
        return index_dir
    local = os.path.join(tempfile.gettempdir(), "facetag-index-" + meta["checksums"][ANNOY_FILE][:16])
    if not os.path.exists(os.path.join(local, META_FILE)):
        tmp = tempfile.mkdtemp(dir=tempfile.gettempdir())
        for name in (ANNOY_FILE, ITEMS_FILE, META_FILE):
            copy_file(join(index_dir, name), os.path.join(tmp, name))
        try:
            os.rename(tmp, local)
        except OSError:
            pass  # another process finished its copy first
    return local


_shared = {}
_lock = threading.Lock()


def open_index(index_dir, search_k=None):
    """The index, opened once per process and shared by its threads; ``search_k`` None: the index's own."""
    meta = read_index_metadata(index_dir)
    with _lock:
        key = (index_dir, search_k, index_id(meta))  # an index rebuilt in place is a new index
        if key not in _shared:
            _shared[key] = GalleryIndex(index_dir, search_k)
        return _shared[key]
