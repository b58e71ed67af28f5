"""A person's word on faces: name a cluster, or say of one face who it is (or is not).

Every word is kept in the store's ``labels`` table and overrides the matcher for that face in every
later run. Faces named as someone join the gallery index, from their stored encodings (no photo is
read again): the next ``facetag tag`` notices the grown gallery and re-matches the archive, so new
photos of that person are tagged with the name too.
"""

import datetime
import tempfile
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from facetag.archive.store import ArchiveStore, new_run_id
from facetag.archive.tables import IS, LABELS_SCHEMA
from facetag.errors import FaceTagError
from facetag.identity.gallery_index import build_index, gallery_items, publish_index, read_index_metadata
from facetag.identity.matching import resolve_labels
from facetag.vision.models import check_same_model


@dataclass(frozen=True)
class Word:
    """What a person said: the faces of ``cluster`` (or the one ``face``) are ``name`` (or are not)."""

    name: str
    cluster: int | None = None
    face: str | None = None
    verdict: str = IS


def name_faces(store_path, words, index_dir=None):
    """Record ``words`` in the store and grow the gallery index with the faces named.

    ``index_dir``: the gallery to grow; default the one the store's last ``facetag tag`` used.
    Returns a summary dict. Raises FaceTagError for an unknown cluster or face (nothing is recorded).
    """
    store = ArchiveStore(store_path)
    with store.lock():
        store.recover()
        rows = _label_rows(store, words)
        manifest = store.append_rows(new_run_id(), "labels", pa.Table.from_pylist(rows, LABELS_SCHEMA))
        summary = {"labels": len(rows), "faces_named": sum(r["verdict"] == IS for r in rows),
                   "names": sorted({r["name"] for r in rows if r["verdict"] == IS}), "index": None}
        if summary["faces_named"]:
            index_dir = index_dir or manifest.get("index_dir")
            if not index_dir:
                raise FaceTagError(f"the store {store_path} does not know its gallery index (no facetag tag run "
                                   "recorded one); give it with --index")
            summary["index"] = index_dir
            summary["gallery_faces"] = enrol_named_faces(store, index_dir)
    return summary


def _label_rows(store, words):
    # Microseconds: the latest word wins, and two words said within one second must keep their order.
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")
    clusters = None
    known_faces = None
    rows = []
    for word in words:
        if not word.name or not word.name.strip():
            raise FaceTagError("a name cannot be empty")
        if word.cluster is not None:
            if clusters is None:
                clusters = store.read("clusters", ["face_id", "cluster_id"]).to_pydict()
            face_ids = [f for f, c in zip(clusters["face_id"], clusters["cluster_id"]) if c == word.cluster]
            if not face_ids:
                raise FaceTagError(f"the store {store.path} has no cluster {word.cluster}; run 'facetag cluster "
                                   f"{store.path}' and pick a cluster from clusters.csv")
            via = f"cluster {word.cluster}"
        else:
            if known_faces is None:
                known_faces = set(store.read("faces", ["face_id"]).column("face_id").to_pylist())
            if word.face not in known_faces:
                raise FaceTagError(f"the store {store.path} has no face {word.face}; face ids are in the store's "
                                   "faces and matches tables (column face_id) and on the review page's copy buttons")
            face_ids, via = [word.face], "face"
        rows += [{"face_id": f, "name": word.name.strip(), "verdict": word.verdict, "via": via, "labelled_at": now}
                 for f in face_ids]
    return rows


def named_faces(store):
    """``({face_id: name} of the faces whose latest word names them, {face_id of every face spoken of})``."""
    labels = store.read("labels").sort_by("labelled_at").to_pylist()
    said = {}
    for row in labels:
        said.setdefault(row["face_id"], []).append((row["name"], row["verdict"]))
    named = {face_id: resolve_labels(words)[0] for face_id, words in said.items()}
    return {face_id: name for face_id, name in named.items() if name}, set(said)


def enrol_named_faces(store, index_dir):
    """Rebuild the gallery at ``index_dir`` with the store's named faces added; returns its size.

    The index's own items are kept, except faces of this store that people have spoken about since
    (they come back with their latest name, or not at all).
    """
    meta = read_index_metadata(index_dir)
    check_same_model(meta["model_id"], store.model_id, holder=f"the gallery {index_dir}", user=f"the store {store.path}",
                     remedy="name faces into a gallery of the store's model")
    named, spoken_of = named_faces(store)
    encodings, face_ids, identities, sources = gallery_items(index_dir)
    keep = [i for i, f in enumerate(face_ids) if f not in spoken_of]
    faces = store.read("faces", ["face_id", "path", "encoding"],
                       filter=ds.field("face_id").isin(sorted(named))).to_pydict()
    all_encodings = np.concatenate([encodings[keep], np.array(faces["encoding"], np.float32).reshape(
        -1, encodings.shape[1])])
    with tempfile.TemporaryDirectory() as tmp:
        build_index(all_encodings, face_ids=[face_ids[i] for i in keep] + faces["face_id"],
                    identities=[identities[i] for i in keep] + [named[f] for f in faces["face_id"]],
                    sources=[sources[i] for i in keep] + faces["path"], model_id=meta["model_id"], out_dir=tmp)
        publish_index(tmp, index_dir)
    return len(all_encodings)


def read_names_csv(path):
    """``cluster,name`` rows (a header row is optional) -> Words."""
    import csv

    words = []
    with open(path, newline="") as f:
        for number, row in enumerate(csv.reader(f), 1):
            if not row or (number == 1 and row[0].strip().lower() == "cluster"):
                continue
            if len(row) < 2 or not row[0].strip().lstrip("-").isdigit():
                raise FaceTagError(f"{path} line {number}: expected 'cluster,name', got {','.join(row)!r}")
            words.append(Word(row[1], cluster=int(row[0])))
    return words
