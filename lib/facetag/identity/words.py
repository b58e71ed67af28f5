"""A person's words on faces, and what they add up to: who a face is, who it is not, hidden, with whom.

Words are rows of the store's ``labels`` table (facetag.archive.tables), said by ``facetag name`` or
on the review server's page, kept forever and read oldest first; the latest word wins. Each row is a
dict with ``name``, ``verdict`` and, in stores written since the review server (2026-12-06),
``action`` (the id of the action that said it) and ``same_as``:

- ``is`` NAME: the face is NAME; ``not`` NAME: it is not NAME (the matcher's next candidate may be);
- ``hide`` / ``show``: a stranger the reviewer does not want to see: left out of review and clustering;
- ``same``: the face is the same person as the face ``same_as`` (two unnamed clusters merged);
- ``undo``: the words of the action ``action`` on this face are taken back (the review page's undo).

Rows of older stores have no ``action`` and no ``same_as`` (None): they read as before.
"""

from dataclasses import dataclass

IS, IS_NOT, HIDE, SHOW, SAME, UNDO = "is", "not", "hide", "show", "same", "undo"
VERDICTS = (IS, IS_NOT, HIDE, SHOW, SAME, UNDO)


@dataclass(frozen=True)
class FaceWords:
    """What a face's words add up to."""

    is_name: str | None = None  # the person it is, when someone said so
    not_names: frozenset = frozenset()  # people it is not
    hidden: bool = False
    same_as: str | None = None  # a face it is the same person as (merged clusters)


def resolve_words(rows):
    """A face's label rows (dicts, oldest first) -> :class:`FaceWords`; see the module docstring."""
    rows = list(rows)
    undone = {r.get("action") for r in rows if r["verdict"] == UNDO}
    is_name, not_names, hidden, same_as = None, set(), False, None
    for row in rows:
        verdict, name = row["verdict"], row["name"]
        if verdict == UNDO or (row.get("action") is not None and row.get("action") in undone):
            continue
        if verdict == IS:
            is_name = name
            not_names.discard(name)
        elif verdict == IS_NOT:
            not_names.add(name)
            if is_name == name:
                is_name = None
        elif verdict in (HIDE, SHOW):
            hidden = verdict == HIDE
        elif verdict == SAME:
            same_as = row.get("same_as")
    return FaceWords(is_name, frozenset(not_names), hidden, same_as)


def words_by_face(rows):
    """Label rows (dicts with ``face_id`` and ``labelled_at``, any order) -> ``{face_id: FaceWords}``."""
    said = {}
    for row in sorted(rows, key=lambda r: r["labelled_at"]):
        said.setdefault(row["face_id"], []).append(row)
    return {face_id: resolve_words(face_rows) for face_id, face_rows in said.items()}


def merged_clusters(cluster_of, same_as, size_of):
    """Clusters joined by ``same`` words -> ``(cluster_map, face_map, sizes)``.

    ``same_as``: ``{face_id: the face it is the same person as}``; ``cluster_of``: ``{face_id: cluster or
    None}`` for at least the faces ``same_as`` names; ``size_of``: ``{cluster: size}`` of those clusters.
    Each group of clusters linked by a word becomes the smallest cluster id among them (``cluster_map``:
    old id -> new id, for the ids that change), and a face in no cluster joins the cluster of the face
    it was said to be (``face_map``: face -> cluster); ``sizes``: the new size of every cluster that grew.
    Union-find over the words said, so the cost does not grow with the archive.
    """
    parent = {}

    def root(c):
        while parent.get(c, c) != c:
            c = parent[c]
        return c

    loose = {}
    for face, other in same_as.items():
        a, b = cluster_of.get(face), cluster_of.get(other)
        if a is None or b is None:
            if (a is None) != (b is None):
                loose[face if a is None else other] = a if b is None else b
            continue
        a, b = root(a), root(b)
        if a != b:
            parent[max(a, b)] = min(a, b)
    cluster_map = {c: root(c) for c in parent}
    face_map = {face: root(c) for face, c in loose.items()}
    sizes = {}
    for c in {c for c in cluster_of.values() if c is not None} | set(face_map.values()):
        sizes[root(c)] = sizes.get(root(c), 0) + size_of.get(c, 0)
    for c in face_map.values():
        sizes[c] += 1
    return cluster_map, face_map, {c: n for c, n in sizes.items() if n != size_of.get(c)}
