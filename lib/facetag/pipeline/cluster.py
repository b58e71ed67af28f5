"""Faces -> clusters of one person each (facetag.identity.clustering's steps as a Beam pipeline).

The neighbour queries, the expensive part, run in parallel DoFns against one HNSW index (faiss) that each
worker process loads once; the graph step runs once, in one place, on item numbers and neighbour arrays only
(no encodings); each cluster's centre and its faces' distances to it are computed per cluster.
"""

import hashlib
import os
import tempfile
import uuid

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from facetag.identity.clustering import (
    DEFAULT_LONE_RATIO,
    DEFAULT_METHOD,
    DEFAULT_MIN_QUALITY,
    DEFAULT_NEIGHBOURS,
    DEFAULT_SEARCH_EFFORT,
    DEFAULT_THRESHOLD,
    UNCLUSTERED,
    build_neighbour_index,
    centre_distances,
    cluster_graph,
    load_neighbour_index,
    match_cluster_ids,
    nearest_neighbours,
    neighbour_graph,
    neighbourhood_scales,
    too_unsure,
)
from facetag.identity.words import merged_clusters
from facetag.io.files import copy_file, filesystems, is_remote

INDEX_FILE = "neighbours.hnsw"
ONE_PLACE = None  # the key that sends every element to one place


class BuildNeighbourIndex(beam.DoFn):
    """All faces (one iterable) -> the neighbour index file under ``work_dir``; yields its description.

    Items are numbered in face id order, so the same faces always give the same index. Also yields,
    on the ``faces`` output, ``(item, face)`` for every face.
    """

    def __init__(self, work_dir):
        self.work_dir = work_dir

    def process(self, keyed):
        _, faces = keyed
        item_of = {face_id: i for i, face_id in enumerate(sorted(f["face_id"] for f in faces))}
        if not item_of:
            return
        dim = len(next(iter(faces))["encoding"])
        encodings = np.empty((len(item_of), dim), np.float32)
        for face in faces:
            encodings[item_of[face["face_id"]]] = face["encoding"]
        target = FileSystems.join(self.work_dir, f"{uuid.uuid4().hex}-{INDEX_FILE}")
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, INDEX_FILE)
            build_neighbour_index(encodings, local)
            copy_file(local, target)
        del encodings
        yield {"path": target, "dim": dim, "items": len(item_of)}
        for face in faces:
            yield beam.pvalue.TaggedOutput("faces", (item_of[face["face_id"]], face))


class QueryNeighbours(beam.DoFn):
    """A batch of ``(item, face)`` -> one ``(items, photos, encodings, neighbour items, distances)`` of arrays.

    Photos become 64-bit hashes of their paths, the same in every worker. The index is opened once per
    worker process (a remote one copied to local disk first).
    """

    def __init__(self, k, search_effort):
        self.k = k
        self.search_effort = search_effort
        self.index = None

    def process(self, batch, index_info):
        if self.index is None:
            self.index = load_neighbour_index(_local(index_info["path"]))
        items = np.array([item for item, _ in batch], np.int64)
        photos = np.array([_photo_hash(face["path"]) for _, face in batch], np.int64)
        neighbours, distances = nearest_neighbours(self.index, items, self.k, self.search_effort)
        yield items, photos, np.stack([face["encoding"] for _, face in batch]), neighbours, distances


def _photo_hash(path):
    return int.from_bytes(hashlib.blake2b(path.encode(), digest_size=8).digest(), "little", signed=True)


def _local(path):
    """A local copy of the index at ``path`` (the file itself when it is local), made once per machine."""
    if not is_remote(path):
        return path
    local = os.path.join(tempfile.gettempdir(), "facetag-" + os.path.basename(path))
    if not os.path.exists(local):
        copy_file(path, local)
    return local


class ClusterGraph(beam.DoFn):
    """Every batch of neighbours (one iterable) -> the cluster of each item (one array, -1 unclustered).

    Holds the graph, and for average linkage every encoding (as the clusters' sums, 512 bytes a
    face). bench/RESULTS.md: 816 MiB at 1 million faces (average linkage); connected components
    over 10 million faces and 100 million edges peaked 6.8 GB above the neighbour arrays.
    """

    def __init__(self, threshold, method, k, min_size, lone_ratio):
        self.threshold = threshold
        self.method = method
        self.k = k
        self.min_size = min_size
        self.lone_ratio = lone_ratio

    def process(self, keyed, index_info):
        _, batches = keyed
        n = index_info["items"]
        neighbours = np.full((n, self.k), -1, np.int64)
        distances = np.full((n, self.k), np.inf, np.float32)
        photos = np.empty(n, np.int64)
        encodings = np.empty((n, index_info["dim"]), np.float32) if self.method == "average" else None
        for items, batch_photos, batch_encodings, batch_neighbours, batch_distances in batches:
            neighbours[items], distances[items], photos[items] = batch_neighbours, batch_distances, batch_photos
            if encodings is not None:
                encodings[items] = batch_encodings
        graph = neighbour_graph(np.arange(n), neighbours, distances, photos, self.threshold)
        scales = neighbourhood_scales(distances).copy()
        del neighbours, distances
        labels = cluster_graph(graph, photos, self.method, self.min_size, encodings=encodings, threshold=self.threshold,
                               scales=scales, lone_ratio=self.lone_ratio)
        filesystems().delete([index_info["path"]])  # every query is done: the graph needs them all
        yield labels


def _unclustered(face):
    return {"face_id": face["face_id"], "cluster_id": None, "cluster_size": None, "distance": None}


def _cluster_records(keyed):
    """One cluster's faces -> its output records: size and each face's distance to the centre."""
    cluster, faces = keyed
    faces = list(faces)
    _, distances = centre_distances(np.array([f["encoding"] for f in faces], np.float32), np.zeros(len(faces), np.int64))
    for face, distance in zip(faces, distances.tolist()):
        yield {"face_id": face["face_id"], "cluster_id": cluster, "cluster_size": len(faces), "distance": distance}


class StableIds(beam.PTransform):
    """Cluster records -> the same with ``cluster_id`` mapped to the previous run's ids by overlap.

    ``previous``: a PCollection of ``{face_id, cluster_id}`` (the previous run's clustered faces).
    See facetag.identity.clustering.match_cluster_ids; overlaps are counted in parallel, matched in one place.
    """

    def __init__(self, previous, min_overlap=0.5):
        super().__init__()
        self.previous = previous
        self.min_overlap = min_overlap

    def expand(self, records):
        clustered = records | "Keep clustered" >> beam.Filter(lambda r: r["cluster_id"] is not None)
        joined = ({"new": clustered | "Key new by face" >> beam.Map(lambda r: (r["face_id"], r["cluster_id"])),
                   "old": self.previous | "Key old by face" >> beam.Map(lambda r: (r["face_id"], r["cluster_id"]))}
                  | "Join runs by face" >> beam.CoGroupByKey())
        overlaps = (joined
                    | "Pair new and old cluster" >> beam.FlatMap(
                        lambda kv: [((new, old), 1) for new in kv[1]["new"] for old in kv[1]["old"]])
                    | "Count overlaps" >> beam.CombinePerKey(sum)
                    | "Gather overlaps" >> beam.combiners.ToList())
        new_ids = clustered | "New cluster ids" >> beam.Map(lambda r: r["cluster_id"]) | "Distinct" >> beam.Distinct()
        highest = (self.previous | "Old ids" >> beam.Map(lambda r: r["cluster_id"])
                   | "Highest old id" >> beam.combiners.Top.Of(1) | "Unwrap" >> beam.Map(lambda top: top[0] if top else -1))
        mapping = (records.pipeline | "Start the mapping" >> beam.Create([None])
                   | "Match clusters by overlap" >> beam.Map(
                       _match, beam.pvalue.AsList(new_ids), beam.pvalue.AsSingleton(overlaps),
                       beam.pvalue.AsSingleton(highest, default_value=-1), self.min_overlap))
        return records | "Apply stable ids" >> beam.Map(_renamed, beam.pvalue.AsSingleton(mapping))


def _match(_, new_ids, overlaps, highest, min_overlap):
    overlaps = dict(overlaps)
    present = {}
    for (_, old), shared in overlaps.items():
        present[old] = present.get(old, 0) + shared
    return match_cluster_ids(set(new_ids), overlaps, present, highest + 1, min_overlap)


def _renamed(record, mapping):
    if record["cluster_id"] is None:
        return record
    return dict(record, cluster_id=mapping[record["cluster_id"]])


class ClusterFaces(beam.PTransform):
    """``{face_id, path, encoding, quality}`` -> ``{face_id, cluster_id, cluster_size, distance}`` for every face.

    ``cluster_id`` 0 is the largest cluster; faces in no cluster (alone, losing a same-photo
    conflict, or of a quality under ``min_quality``: never clustered, see
    facetag.identity.clustering.too_unsure) have None in all three. With ``previous`` (a
    PCollection of the previous run's ``{face_id, cluster_id}``), cluster ids are mapped to that run's ids by overlap (:class:`StableIds`).
    ``work_dir``: where the neighbour index is written for the workers (any FileSystems path; default
    a local temporary folder, right only for runners on this machine).
    """

    def __init__(self, work_dir=None, threshold=DEFAULT_THRESHOLD, method=DEFAULT_METHOD, k=DEFAULT_NEIGHBOURS,
                 search_effort=DEFAULT_SEARCH_EFFORT, min_size=2, batch_size=256, previous=None,
                 lone_ratio=DEFAULT_LONE_RATIO, min_quality=DEFAULT_MIN_QUALITY):
        super().__init__()
        self.work_dir = work_dir
        self.min_quality = min_quality
        self.threshold = threshold
        self.lone_ratio = lone_ratio
        self.method = method
        self.k = k
        self.search_effort = search_effort
        self.min_size = min_size
        self.batch_size = batch_size
        self.previous = previous

    def expand(self, faces):
        work_dir = self.work_dir or tempfile.mkdtemp(prefix="facetag-cluster-")
        min_quality = self.min_quality
        faces, unsure = faces | "Sure enough to group" >> beam.Partition(
            lambda f, _: int(too_unsure(f.get("quality"), min_quality)), 2)
        faces = faces | "Encodings as arrays" >> beam.Map(lambda f: dict(f, encoding=np.asarray(f["encoding"], np.float32)))
        built = (faces
                 | "All faces to one place" >> beam.Map(lambda f: (ONE_PLACE, f))
                 | "Gather faces" >> beam.GroupByKey()
                 | "Build neighbour index" >> beam.ParDo(BuildNeighbourIndex(work_dir)).with_outputs(
                     "faces", main="index"))
        index_info = beam.pvalue.AsSingleton(built.index)
        numbered = built.faces
        labels = (numbered
                  | "Spread faces" >> beam.Reshuffle()
                  | "Batch faces" >> beam.BatchElements(min_batch_size=self.batch_size, max_batch_size=self.batch_size)
                  | "Query neighbours" >> beam.ParDo(QueryNeighbours(self.k, self.search_effort), index_info)
                  | "Neighbours to one place" >> beam.Map(lambda batch: (ONE_PLACE, batch))
                  | "Gather neighbours" >> beam.GroupByKey()
                  | "Cluster the graph" >> beam.ParDo(ClusterGraph(self.threshold, self.method, self.k, self.min_size,
                                                                   self.lone_ratio),
                                                      index_info))
        clustered, alone = (numbered
                            | "Key faces by cluster" >> beam.Map(lambda numbered_face, labels: (
                                int(labels[numbered_face[0]]), numbered_face[1]), beam.pvalue.AsSingleton(labels))
                            | "Clustered or not" >> beam.Partition(lambda kv, _: int(kv[0] == UNCLUSTERED), 2))
        records = ((clustered
                    | "Group clusters" >> beam.GroupByKey()
                    | "Centres and distances" >> beam.FlatMap(_cluster_records)),
                   alone | "Unclustered" >> beam.Map(lambda kv: _unclustered(kv[1])),
                   unsure | "Too unsure to group" >> beam.Map(_unclustered)) | "All faces" >> beam.Flatten()
        if self.previous is not None:
            records = records | "Stable cluster ids" >> StableIds(self.previous)
        return records


class MergeSaidClusters(beam.PTransform):
    """Cluster records -> the same, with clusters a person said are one person merged.

    ``words``: a PCollection of ``(face_id, FaceWords)`` (facetag.pipeline.match.FaceLabels). Only the
    faces the ``same`` words name go to one place (facetag.identity.words.merged_clusters); a merged
    cluster takes the smallest id and the sum of the sizes, each face keeping its distance to the centre
    of the cluster it was found in.
    """

    def __init__(self, words):
        super().__init__()
        self.words = words

    def expand(self, records):
        same_as = (self.words | "Same-person words" >> beam.Filter(lambda kv: kv[1].same_as is not None)
                   | "Face and its like" >> beam.Map(lambda kv: (kv[0], kv[1].same_as)))
        involved = same_as | "Both faces" >> beam.FlatMap(lambda kv: [(kv[0], None), (kv[1], None)])
        linked = (records
                  | "Faces of merges" >> beam.Filter(lambda r, faces: r["face_id"] in faces, beam.pvalue.AsDict(involved))
                  | "Gather merged faces" >> beam.combiners.ToList())
        merges = linked | "Merge clusters" >> beam.Map(_merges, beam.pvalue.AsDict(same_as))
        return records | "Apply merges" >> beam.Map(_merged, beam.pvalue.AsSingleton(merges))


def _merges(linked, same_as):
    return merged_clusters({r["face_id"]: r["cluster_id"] for r in linked}, same_as,
                           {r["cluster_id"]: r["cluster_size"] for r in linked if r["cluster_id"] is not None})


def _merged(record, merges):
    cluster_map, face_map, sizes = merges
    cluster = face_map.get(record["face_id"], cluster_map.get(record["cluster_id"], record["cluster_id"]))
    if cluster is None:
        return record
    return dict(record, cluster_id=cluster, cluster_size=sizes.get(cluster, record["cluster_size"]))
