"""A person's word on faces: name a cluster, or say of one face who it is (or is not), hide it, merge it.

Every word is kept in the store's ``labels`` table and overrides the matcher for that face in every
later run (the words and what they add up to: facetag.identity.words). ``facetag name`` and the review
server (facetag.web) both write through :func:`name_faces`. Faces named as someone join the gallery
index, from their stored encodings (no photo is read again): the next ``facetag tag`` notices the grown gallery and re-matches the archive, so new
photos of that person are tagged with the name too.
"""

import datetime
import tempfile
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from facetag.archive.store import ArchiveStore, new_run_id
from facetag.archive.tables import LABELS_SCHEMA
from facetag.errors import FaceTagError
from facetag.identity.gallery_index import build_index, gallery_items, publish_index, read_index_metadata
from facetag.identity.words import IS, IS_NOT, SAME, UNDO, words_by_face
from facetag.vision.models import check_same_model

MAX_NAME = 200  # characters


@dataclass(frozen=True)
class Word:
    """What a person said: the faces of ``cluster`` (or the one ``face``) are ``name`` (or are not, ...).

    ``verdict``: one of facetag.identity.words.VERDICTS; ``same_as``: for ``same``, the other face.
    """

    name: str = ""
    cluster: int | None = None
    face: str | None = None
    verdict: str = IS
    same_as: str | None = None


class UnknownFaceError(FaceTagError):
    """A word names a face or cluster the store does not have."""

    def __init__(self, message, missing):
        super().__init__(message)
        self.missing = missing


def check_name(name):
    """``name`` stripped; raises FaceTagError unless it is one line of plain text (no markup, no control
    characters): names end up in XMP, CSV and web pages."""
    name = (name or "").strip()
    if not name:
        raise FaceTagError("a name cannot be empty")
    if len(name) > MAX_NAME:
        raise FaceTagError(f"a name has at most {MAX_NAME} characters; this one has {len(name)}")
    bad = sorted({c for c in name if c in "<>" or ord(c) < 32 or ord(c) == 127})
    if bad:
        raise FaceTagError(f"a name is plain text: {name!r} holds {' '.join(repr(c) for c in bad)}")
    return name


def name_faces(store_path, words, index_dir=None, *, via=None, action=None):
    """Record ``words`` in the store and update the gallery index with the faces named (or no longer named).

    ``index_dir``: the gallery to update; default the one the store's last ``facetag tag`` used.
    ``via``: how the words were given (default: per word, "cluster N" or "face"); ``action``: an id
    kept with every row, which a later ``undo`` word names. Returns a summary dict with the store's new
    ``manifest`` and the ``rows`` written. Raises UnknownFaceError for an unknown cluster or face,
    FaceTagError for a bad name (nothing is recorded), StoreBusyError while another run writes the store.
    """
    store = ArchiveStore(store_path)
    with store.lock():
        store.recover()
        rows = _label_rows(store, words, via, action)
        manifest = store.append_rows(new_run_id(), "labels", pa.Table.from_pylist(rows, LABELS_SCHEMA))
        summary = {"labels": len(rows), "faces_named": sum(r["verdict"] == IS for r in rows),
                   "names": sorted({r["name"] for r in rows if r["verdict"] == IS}), "index": None}
        if _changes_names(store, rows):
            index_dir = index_dir or manifest.get("index_dir")
            if not index_dir:
                raise FaceTagError(f"the store {store_path} does not know its gallery index (no facetag tag run "
                                   "recorded one); give it with --index")
            summary["index"] = index_dir
            summary["gallery_faces"] = enrol_named_faces(store, index_dir)
        summary["manifest"], summary["rows"] = store.manifest(), rows
    return summary


def _changes_names(store, rows):
    """Whether ``rows`` name or un-name a face (an undo of hiding or merging changes no name)."""
    if any(r["verdict"] in (IS, IS_NOT) for r in rows):
        return True
    undone = sorted({r["action"] for r in rows if r["verdict"] == UNDO})
    if not undone:
        return False
    said = store.read("labels", ["action", "verdict"], filter=ds.field("action").isin(pa.array(undone, pa.string())))
    return bool(set(said.column("verdict").to_pylist()) & {IS, IS_NOT})


def _label_rows(store, words, via, action):
    # Microseconds: the latest word wins, and two words said within one second must keep their order.
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")
    clusters = None
    known_faces = None
    rows = []
    for word in words:
        name = check_name(word.name) if word.verdict in (IS, IS_NOT) else (word.name or "")
        if word.cluster is not None:
            if clusters is None:
                clusters = store.read("clusters", ["face_id", "cluster_id"]).to_pydict()
            face_ids = [f for f, c in zip(clusters["face_id"], clusters["cluster_id"]) if c == word.cluster]
            if not face_ids:
                raise UnknownFaceError(f"the store {store.path} has no cluster {word.cluster}; run 'facetag cluster "
                                       f"{store.path}' and pick a cluster from clusters.csv", word.cluster)
            given = f"cluster {word.cluster}"
        else:
            if known_faces is None:
                known_faces = set(store.read("faces", ["face_id"]).column("face_id").to_pylist())
            for face in (word.face, word.same_as if word.verdict == SAME else word.face):
                if face not in known_faces:
                    raise UnknownFaceError(
                        f"the store {store.path} has no face {face}; face ids are in the store's faces and matches "
                        "tables (column face_id) and on the review page", face)
            face_ids, given = [word.face], "face"
        rows += [{"face_id": f, "name": name, "verdict": word.verdict, "via": via or given, "labelled_at": now,
                  "action": action, "same_as": word.same_as} for f in face_ids]
    return rows


def named_faces(store):
    """``({face_id: name} of the faces whose words name them, {face_id of every face spoken of})``."""
    said = words_by_face(store.read("labels").to_pylist())
    return {face_id: w.is_name for face_id, w in said.items() if w.is_name}, set(said)


def enrol_named_faces(store, index_dir):
    """Rebuild the gallery at ``index_dir`` with the store's named faces added; returns its size.

    The index's own items are kept, except faces of this store that people have spoken about since
    (they come back with their latest name, or not at all). Its cost grows with the gallery, not the
    archive: only the faces named since the last rebuild are read from the store.
    """
    meta = read_index_metadata(index_dir)
    check_same_model(meta["model_id"], store.model_id, holder=f"the gallery {index_dir}", user=f"the store {store.path}",
                     remedy="name faces into a gallery of the store's model")
    named, spoken_of = named_faces(store)
    encodings, face_ids, identities, sources = gallery_items(index_dir)
    # Items stay unless people have spoken of the face since; a named face already in the gallery under its
    # name keeps its item, so only the faces named anew are read from the store.
    keep = [i for i, f in enumerate(face_ids) if f not in spoken_of or named.get(f) == identities[i]]
    kept = {face_ids[i] for i in keep}
    faces = store.read_rows("faces", "face_id", sorted(f for f in named if f not in kept),
                            ["face_id", "path", "encoding"]).to_pydict()
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
