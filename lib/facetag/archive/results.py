"""An archive store's current results as photos with their faces: what the review page and XMP show.

Reads the store's ``photos`` and ``matches`` tables, and its ``clusters`` table
when the store has one (face_id, cluster_id, cluster_size, distance; a null
cluster_id for a face in no cluster), with each face's quality from ``faces``
and the quality under which ``facetag cluster`` left faces out (``store.json``).
"""

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from facetag.errors import FaceTagError
from facetag.identity.clustering import too_unsure
from facetag.identity.matching import UNKNOWN
from facetag.identity.words import words_by_face
from facetag.vision.models import identify_threshold_of

PHOTO_COLUMNS = ["path", "outcome", "reason", "faces", "width", "height"]
MATCH_COLUMNS = ["face_id", "path", "face_index", "box", "identity", "distance"]
CLUSTER_COLUMNS = ["face_id", "cluster_id", "cluster_size"]


@dataclass
class TaggedFace:
    face_id: str
    path: str
    face_index: int
    box: tuple  # (left, top, right, bottom) in the displayed (EXIF-rotated) photo's pixels
    identity: str  # or UNKNOWN
    distance: float  # to the nearest gallery identity
    cluster_id: str = ""  # "" when the face is in no cluster, or the store has no clusters
    quality: float | None = None  # facetag.vision.quality; None: not measured (stored by an older facetag)

    @property
    def known(self):
        return self.identity != UNKNOWN


@dataclass
class TaggedPhoto:
    path: str
    outcome: str  # faces | no_face | failed
    reason: str
    width: int  # displayed size, None when the photo could not be read
    height: int
    faces: list = field(default_factory=list)


@dataclass
class Results:
    photos: list  # [TaggedPhoto], sorted by path; removed photos left out
    model_id: str
    has_clusters: bool
    min_quality: float | None = None  # faces under it were left out of clusters; None: no clustering run said

    @property
    def faces(self):
        return [f for p in self.photos for f in p.faces]

    def too_unsure(self, face):
        """An unknown face that the last clustering left out for its quality."""
        return (not face.known and not face.cluster_id and self.min_quality is not None
                and too_unsure(face.quality, self.min_quality))

    def identify_threshold(self):
        """The default 1:K threshold of the store's model."""
        return identify_threshold_of(self.model_id)


def open_store(path):
    """The archive store at ``path``; raises FaceTagError naming the folder when it holds none."""
    from facetag.archive.store import ArchiveStore

    store = ArchiveStore(path)
    if not store.exists():
        raise FaceTagError(f"{path} is not a facetag archive store; "
                           "create one with 'facetag tag PHOTOS --index INDEX --out STORE'")
    return store


def read_results(store, keep_hidden=False):
    """The store's current photos, faces and (when present) clusters as :class:`Results`.

    Faces a person hid (facetag.identity.words) are left out unless ``keep_hidden``."""
    photos = store.read("photos", columns=PHOTO_COLUMNS)
    matches = store.read("matches", columns=MATCH_COLUMNS)
    if not keep_hidden:
        hidden = [f for f, said in words_by_face(store.read("labels").to_pylist()).items() if said.hidden]
        if hidden:
            matches = matches.filter(pc.invert(pc.is_in(matches.column("face_id"), pa.array(hidden))))
    clusters = _read_optional(store, "clusters", CLUSTER_COLUMNS)
    faces = store.read("faces", columns=["face_id", "quality"])
    quality = dict(zip(faces.column("face_id").to_pylist(), faces.column("quality").to_pylist()))
    return results_from_tables(photos, matches, store.model_id, clusters, quality=quality,
                               min_quality=(store.manifest() or {}).get("cluster_min_quality"))


def _read_optional(store, name, columns):
    if hasattr(store, "version") and store.version(name) is None:
        return None
    try:
        return store.read(name, columns=columns)
    except (FaceTagError, KeyError):  # KeyError: a store that knows no schema for the table
        return None


def results_from_tables(photos, matches, model_id, clusters=None, *, quality=None, min_quality=None):
    """:class:`Results` from pyarrow tables shaped like the store's (see the module docstring); ``quality``:
    ``{face_id: quality}``."""
    quality = quality or {}
    cluster_of = {}
    if clusters is not None:
        for face_id, cluster_id in zip(clusters.column("face_id").to_pylist(),
                                       clusters.column("cluster_id").to_pylist()):
            cluster_of[face_id] = "" if cluster_id is None else str(cluster_id)  # ids are integers; 0 is one
    by_path = {}
    for row in photos.to_pylist():
        if row["outcome"] == "removed":
            continue
        by_path[row["path"]] = TaggedPhoto(row["path"], row["outcome"], row["reason"] or "", row["width"], row["height"])
    for row in matches.to_pylist():
        photo = by_path.get(row["path"])
        if photo is None:
            continue  # a match left from a photo the photos table no longer lists
        photo.faces.append(TaggedFace(row["face_id"], row["path"], row["face_index"], tuple(row["box"]),
                                      row["identity"], float(row["distance"]), cluster_of.get(row["face_id"], ""),
                                      quality.get(row["face_id"])))
    for photo in by_path.values():
        photo.faces.sort(key=lambda f: f.face_index)
    return Results(sorted(by_path.values(), key=lambda p: p.path), model_id, clusters is not None, min_quality)
