"""The review server's picture of an archive: each face in one section, with every word on it applied.

A section is a person (``p:NAME``), a cluster of unknown faces (``c:ID``), the unknown faces in no
cluster (``unknown``), those too unsure to group (``unsure``) or the faces a person hid (``hidden``).
What a face shows is what the next ``facetag tag`` will store: the matcher's result with the words of
the ``labels`` table applied (facetag.identity.matching.apply_label), clusters joined by ``same``
words merged (facetag.identity.words).

Each action writes its words through facetag.archive.naming.name_faces (the code of ``facetag name``,
under the store's lock) and then updates the picture in memory: nothing is recomputed from the photos
and only the sections that changed go back to the page. :class:`ReviewBoard` is not thread-safe:
its caller (facetag.web) runs one action at a time.
"""

import secrets
from dataclasses import dataclass, field

from facetag.archive.naming import UnknownFaceError, Word, check_name, name_faces
from facetag.archive.results import read_results
from facetag.archive.store import ArchiveStore
from facetag.errors import FaceTagError
from facetag.identity.matching import UNKNOWN, Match, apply_label
from facetag.identity.words import HIDE, IS_NOT, SAME, SHOW, UNDO, FaceWords, merged_clusters, resolve_words

HIDDEN, UNKNOWN_SECTION, UNSURE = "hidden", "unknown", "unsure"


class NameExistsError(FaceTagError):
    """Naming faces as someone the archive already has: the caller must say it is the same person."""


class NothingToUndoError(FaceTagError):
    """Undo with no action of this server left to take back."""


@dataclass
class BoardFace:
    face_id: str
    photo: int  # index into ReviewBoard.photos
    box: tuple
    match: Match  # the matcher's, as the store holds it
    base_cluster: int | None  # as the clusters table holds it
    unsure: bool  # left out of clusters for its quality
    words: list = field(default_factory=list)  # its label rows, oldest first
    said: FaceWords = FaceWords()
    shown: Match = None  # the match with the words applied
    cluster: int | None = None  # with merges applied
    section: str = ""


@dataclass
class Action:
    id: str
    faces: list  # face ids it wrote words on
    text: str  # what it did, for the page ("named cluster 3 as Ada")


class ReviewBoard:
    """The archive store at ``store_path`` as review sections; see the module docstring."""

    def __init__(self, store_path, threshold=None):
        self.store_path = store_path
        self.threshold_arg = threshold
        self.history = []  # [Action] taken through this board, for undo
        self.load()

    # Reading the store.

    def load(self):
        """Read the store afresh (at start, and when another process committed to it)."""
        store = ArchiveStore(self.store_path)
        results = read_results(store, keep_hidden=True)
        self.model_id = results.model_id
        self.threshold = self.threshold_arg if self.threshold_arg is not None else results.identify_threshold()
        self.version = _version_key(store.manifest())
        candidates = dict(zip(*store.read("matches", ["face_id", "candidates"]).to_pydict().values()))
        labels = store.read("labels").to_pylist()
        self.photos, self.faces, self._photo_faces = [], {}, []
        for photo in results.photos:
            if not photo.faces:
                continue
            self.photos.append([photo.path, photo.width or 0, photo.height or 0])
            self._photo_faces.append([f.face_id for f in photo.faces])
            for f in photo.faces:
                cands = tuple((c["identity"], c["distance"]) for c in candidates.get(f.face_id) or ())
                self.faces[f.face_id] = BoardFace(
                    f.face_id, len(self.photos) - 1, f.box, Match(f.identity, f.distance, cands),
                    int(f.cluster_id) if f.cluster_id else None, results.too_unsure(f))
        for row in sorted(labels, key=lambda r: r["labelled_at"]):
            if row["face_id"] in self.faces:
                self.faces[row["face_id"]].words.append(row)
        self.no_face = [[p.path, p.reason] for p in results.photos if p.outcome == "no_face"]
        self.failed = [[p.path, p.reason] for p in results.photos if p.outcome == "failed"]
        self.has_clusters = results.has_clusters
        self.gallery_names = {c for f in self.faces.values() for c, _ in f.match.candidates}
        for face in self.faces.values():
            self._resolve(face)
        self._place_all()

    def changed_elsewhere(self):
        """Whether another process (``facetag tag``, ``name``, ``cluster``) committed since the last read."""
        return _version_key(ArchiveStore(self.store_path).manifest()) != self.version

    def _resolve(self, face):
        face.said = resolve_words(face.words)
        face.shown = apply_label(face.match, self.threshold, face.said.is_name, face.said.not_names) \
            if face.said.is_name or face.said.not_names else face.match

    def _place_all(self):
        """Each face's cluster (merges applied) and section; returns the keys of the sections that changed."""
        same_as = {f.face_id: f.said.same_as for f in self.faces.values() if f.said.same_as}
        involved = set(same_as) | set(same_as.values())
        cluster_of = {f: self.faces[f].base_cluster for f in involved if f in self.faces}
        sizes = {}
        for face in self.faces.values():
            if face.base_cluster is not None:
                sizes[face.base_cluster] = sizes.get(face.base_cluster, 0) + 1
        cluster_map, face_map, _ = merged_clusters(cluster_of, same_as, sizes)
        changed = set()
        for face in self.faces.values():
            face.cluster = face_map.get(face.face_id, cluster_map.get(face.base_cluster, face.base_cluster))
            section = self._section_of(face)
            if section != face.section:
                changed.update({face.section, section})
                face.section = section
        changed.discard("")
        return changed

    def _section_of(self, face):
        if face.said.hidden:
            return HIDDEN
        if face.shown.identity != UNKNOWN:
            return "p:" + face.shown.identity
        if face.cluster is not None:
            return f"c:{face.cluster}"
        return UNSURE if face.unsure else UNKNOWN_SECTION

    # What the page shows.

    def sections(self, keys=None):
        """``{key: section}`` of every section (or of those in ``keys``; a key with no faces left is absent)."""
        members = {}
        for face in self.faces.values():
            if keys is None or face.section in keys:
                members.setdefault(face.section, []).append(face)
        return {key: self._section(key, faces) for key, faces in members.items()}

    def _section(self, key, faces):
        kind = {"p": "identity", "c": "cluster"}.get(key[:1], key) if ":" in key else key
        faces.sort(key=lambda f: (abs(f.shown.distance - self.threshold), f.face_id))  # most doubtful first
        return {"key": key, "kind": kind, "name": key.split(":", 1)[1] if ":" in key else key,
                "faces": [[f.face_id, f.photo, *f.box, round(f.shown.distance, 4)] for f in faces]}

    def order(self):
        """Section keys in page order: people A-Z, clusters largest first, then unknown, unsure, hidden."""
        sizes = {}
        for face in self.faces.values():
            sizes[face.section] = sizes.get(face.section, 0) + 1

        def rank(key):
            if key.startswith("p:"):
                return 0, key[2:].lower(), 0
            if key.startswith("c:"):
                return 1, "", -sizes[key], int(key[2:])
            return 2 + [UNKNOWN_SECTION, UNSURE, HIDDEN].index(key), "", 0
        return sorted(sizes, key=rank)

    def names(self):
        """Every person's name the archive knows (its faces' and the gallery's), sorted."""
        known = {f.shown.identity for f in self.faces.values()} | self.gallery_names
        known.discard(UNKNOWN)
        return sorted(known, key=str.lower)

    def summary(self):
        faces = self.faces.values()
        sections = {f.section for f in faces}
        return {"photos": len(self.photos) + len(self.no_face) + len(self.failed), "faces": len(self.faces),
                "identified": sum(s.startswith("p:") for s in (f.section for f in faces)),
                "unknown": sum(not f.section.startswith("p:") and f.section != HIDDEN for f in faces),
                "identities": sum(s.startswith("p:") for s in sections),
                "clusters": sum(s.startswith("c:") for s in sections) if self.has_clusters else None,
                "hidden": sum(f.section == HIDDEN for f in faces),
                "no_face": len(self.no_face), "failed": len(self.failed)}

    def page(self):
        """Everything the page needs to draw itself."""
        return {"store": self.store_path, "model_id": self.model_id, "threshold": self.threshold,
                "photos": self.photos, "order": self.order(),
                "sections": self.sections(), "names": self.names(), "summary": self.summary(),
                "no_face": self.no_face, "failed": self.failed, "undo": self._undo_text()}

    def clusters(self):
        """The clusters of unknown faces, as the page shows them: ``[{id, size, faces}]``, largest first."""
        keys = [k for k in self.order() if k.startswith("c:")]
        sections = self.sections(set(keys))
        return [{"id": int(k[2:]), "size": len(sections[k]["faces"]), "faces": [f[0] for f in sections[k]["faces"]]}
                for k in keys]

    def photo_path(self, index):
        return self.photos[index][0]

    def faces_of_photo(self, index):
        return [self.faces[face_id] for face_id in self._photo_faces[index]]

    def face(self, face_id):
        face = self.faces.get(face_id)
        if face is None:
            raise UnknownFaceError(f"no face {face_id} in the store {self.store_path}", face_id)
        return face

    # Actions: each returns the page's update.

    def name(self, name, *, clusters=(), faces=(), merge=False):
        """The faces (and every face of the clusters) are ``name``. Naming a cluster as someone the archive
        already has merges it into them, so that needs ``merge`` (a face moved to a person does not)."""
        name = check_name(name)
        targets = self._targets(clusters, faces)
        if clusters and name in self.names() and not merge:
            raise NameExistsError(f"{name} is already a person in this archive: same person? "
                                  "Send \"merge\": true to add these faces to them")
        return self._act([Word(name, face=f) for f in targets], f"named {_what(clusters, faces)} as {name}")

    def reject(self, *, faces=(), name=None):
        """The faces are not ``name`` (default: the person each is shown as)."""
        words = []
        for face_id in faces:
            not_name = name or self.face(face_id).shown.identity
            if not_name == UNKNOWN:
                raise FaceTagError(f"face {face_id} is not shown as anyone: say whom it is not")
            words.append(Word(not_name, face=face_id, verdict=IS_NOT))
        return self._act(words, f"{_what((), faces)}: not {name or 'who the matcher said'}")

    def confirm(self, *, faces=()):
        """The faces are who they are shown as."""
        words = []
        for face_id in faces:
            shown = self.face(face_id).shown.identity
            if shown == UNKNOWN:
                raise FaceTagError(f"face {face_id} is unknown: name it instead")
            words.append(Word(shown, face=face_id))
        return self._act(words, f"confirmed {_what((), faces)}")

    def hide(self, *, clusters=(), faces=(), people=(), show=False):
        targets = self._targets(clusters, faces, people)
        verb = "showed again" if show else "hid"
        return self._act([Word(face=f, verdict=SHOW if show else HIDE) for f in targets],
                         f"{verb} {_what(clusters, faces, people)}")

    def merge(self, *, clusters=(), people=()):
        """Merge clusters into the first (the same person, still unnamed) or people into the first name."""
        if bool(clusters) == bool(people):
            raise FaceTagError("merge takes \"clusters\": [ID, ID, ...] or \"people\": [NAME, NAME, ...]")
        if len(clusters) + len(people) < 2:
            raise FaceTagError("merge needs two or more")
        if people:
            into = people[0]
            targets = self._targets((), (), people[1:])
            return self._act([Word(into, face=f) for f in targets], f"merged {', '.join(people[1:])} into {into}")
        anchor = self._targets([clusters[0]], ())[0]
        targets = [f for f in self._targets(clusters[1:], ()) if f != anchor]
        return self._act([Word(face=f, verdict=SAME, same_as=anchor) for f in targets],
                         f"merged clusters {', '.join(map(str, clusters[1:]))} into cluster {clusters[0]}")

    def undo(self):
        """Take back the last action taken through this board."""
        if not self.history:
            raise NothingToUndoError("nothing to undo: no action of this page is left")
        last = self.history[-1]
        return self._act([Word(face=f, verdict=UNDO) for f in last.faces], f"undid: {last.text}", undoes=last)

    def _targets(self, clusters=(), faces=(), people=()):
        targets, seen = [], set()
        for cluster in clusters:
            members = [f.face_id for f in self.faces.values() if f.section == f"c:{cluster}"]
            if not members:
                raise UnknownFaceError(f"no cluster {cluster} on this page (named, hidden or merged since?)", cluster)
            targets += members
        for person in people:
            members = [f.face_id for f in self.faces.values() if f.section == f"p:{person}"]
            if not members:
                raise UnknownFaceError(f"no person {person!r} on this page", person)
            targets += members
        for face_id in faces:
            targets.append(self.face(face_id).face_id)
        if not targets:
            raise FaceTagError("say which faces: \"face\", \"faces\", \"cluster\" or \"clusters\"")
        return [f for f in targets if not (f in seen or seen.add(f))]

    def _act(self, words, text, undoes=None):
        action = Action(undoes.id if undoes else "a-" + secrets.token_hex(6), [w.face for w in words], text)
        result = name_faces(self.store_path, words, via="review page", action=action.id)
        for row in result["rows"]:
            face = self.faces[row["face_id"]]
            face.words.append(row)
            self._resolve(face)
        changed = self._place_all()
        self.version = _version_key(result["manifest"])
        if undoes:
            self.history.pop()
        else:
            self.history.append(action)
        sections = self.sections(changed)
        return {"done": text, "labels": result["labels"], "summary": self.summary(), "order": self.order(),
                "sections": sections,
                "removed": sorted(k for k in changed if k not in sections), "names": self.names(),
                "undo": self._undo_text()}

    def _undo_text(self):
        return self.history[-1].text if self.history else None


def _what(clusters=(), faces=(), people=()):
    parts = []
    if clusters:
        parts.append(("cluster " if len(clusters) == 1 else "clusters ") + ", ".join(map(str, clusters)))
    if people:
        parts.append(", ".join(people))
    if faces:
        parts.append(f"{len(faces)} face" + ("s" if len(faces) != 1 else ""))
    return " and ".join(parts)


def _version_key(manifest):
    return None if manifest is None else (manifest.get("run_id"), tuple(sorted(manifest["versions"].items())))
