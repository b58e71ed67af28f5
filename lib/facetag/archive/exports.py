"""The store's CSV exports, for people and spreadsheets: ``matches.csv`` and ``clusters.csv``.

They are rewritten from the tables at every commit, just before ``store.json``: a crash in between
leaves a newer CSV beside the older store, which the next run rewrites. The tables are the record.
"""

import csv
import io

from facetag.io.files import write_atomically

MATCHES_CSV = "matches.csv"
MATCHES_CSV_HEADER = ["source", "face", "box", "identity", "distance"]
CLUSTERS_CSV = "clusters.csv"
CLUSTERS_CSV_HEADER = ["source", "face", "box", "cluster", "size"]


def write_matches_csv(path, matches):
    """``matches`` (a pyarrow table with path, face_index, box, identity, distance) as ``path``, by photo."""
    write_csv(path, MATCHES_CSV_HEADER, (
        [r["path"], r["face_index"], _box(r["box"]), r["identity"], f"{r['distance']:.4f}"]
        for r in by_photo(matches)))


def write_clusters_csv(path, clusters, faces):
    """``clusters`` (face_id, cluster_id, cluster_size) of ``faces`` (face_id, path, face_index, box) as
    ``path``, by photo; a face in no cluster has an empty cluster and size 1."""
    columns = clusters.to_pydict()
    cluster_of = dict(zip(columns["face_id"], zip(columns["cluster_id"], columns["cluster_size"])))
    write_csv(path, CLUSTERS_CSV_HEADER, (
        [r["path"], r["face_index"], _box(r["box"]),
         "" if cluster_of[r["face_id"]][0] is None else cluster_of[r["face_id"]][0],
         cluster_of[r["face_id"]][1] or 1]
        for r in by_photo(faces) if r["face_id"] in cluster_of))


def by_photo(table):
    """The rows of ``table`` as dicts, sorted by photo path then face index."""
    return table.sort_by([("path", "ascending"), ("face_index", "ascending")]).to_pylist()


def write_csv(path, header, rows):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_atomically(path, buf.getvalue())


def _box(box):
    return " ".join(map(str, box))
