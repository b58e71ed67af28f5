"""An incremental run over an archive store, as Beam transforms.

The work of a run is decided inside the pipeline by joins, so that it scales
to archives of millions of photos (no set of paths is built on the submitting
machine):

1. *Compare with the store*: the listed paths and the store's ``photos`` rows,
   joined on the path. Same size and modification time as stored: unchanged,
   skipped. Not listed any more (and inside the run's inputs): removed. Else
   new or changed, to read.
2. *Hash*: each photo to read is read once and hashed.
3. *Reuse by content*: the hashes joined with the store's ``photos`` and
   ``faces`` rows on the content hash. A copy, move or rename of a photo the
   store knows takes that photo's faces (or its "no face") without detection.
4. *Detect and encode* the rest (the photo is read again: the bytes are not
   carried through the join, which would shuffle every photo across workers).
5. *Match* the new faces against the gallery index; when the index changed
   since the store's last run, every stored face of a photo still present too.

The outputs are the rows to write: photos (new, changed, failed, removed),
faces (of new and changed photos) and matches. facetag.archive.store commits them.
"""

import fnmatch
import hashlib
import os

import apache_beam as beam
from apache_beam.metrics import Metrics

from facetag.archive.tables import FACES, FAILED, NO_FACE, REMOVED
from facetag.errors import ImageError
from facetag.io.files import is_remote
from facetag.io.images import read_file
from facetag.io.listing import list_paths
from facetag.pipeline.encode import PHOTOS, EncodePhotos
from facetag.pipeline.progress import flush, folder, note, report_to
from facetag.pipeline.records import PhotoBytes, face_id

#: ``photos`` columns the comparison and reuse steps read (not the run id).
STORED_PHOTO_COLUMNS = ["path", "size", "mtime", "sha256", "outcome", "reason", "faces", "width", "height"]


def _counter(name):
    return Metrics.counter("facetag", name)


class InputScope:
    """Which stored paths a run's inputs cover: only those can be found removed.

    A store may be fed from several folders by separate runs; a run over one
    of them must not mark the others' photos removed.
    """

    def __init__(self, patterns):
        self.folders, self.globs, self.files = [], [], set()
        for p in patterns:
            if any(c in p for c in "*?["):
                # fnmatch's "*" crosses "/", so "root/**/*.jpg" covers "root/a/b.jpg" but not "root/b.jpg",
                # which the listing's "**" includes: "**/" may also match nothing.
                self.globs += [p, p.replace("**/", "")]
            elif p.endswith("/") or (not is_remote(p) and os.path.isdir(p)):
                self.folders.append(p.rstrip("/") + "/")
            else:
                self.files.add(p)
                if is_remote(p):  # a remote folder named without its "/" (listing.list_paths)
                    self.folders.append(p + "/")

    def covers(self, path):
        return (path in self.files or any(path.startswith(f) for f in self.folders)
                or any(fnmatch.fnmatchcase(path, g) for g in self.globs))


def photo_row(path, run_id, outcome, *, reason=None, size=None, mtime=None, sha256=None, faces=0, width=None,
              height=None):
    """A row of the store's ``photos`` table (facetag.archive.tables.PHOTOS_SCHEMA)."""
    return {"path": path, "size": size, "mtime": mtime, "sha256": sha256, "outcome": outcome, "reason": reason,
            "faces": faces, "width": width, "height": height, "run_id": run_id}


#: The output of CompareWithStore besides the photos to read.
PHOTO_ROWS = "photo_rows"


class _Compare(beam.DoFn):
    """``(path, {"listed": [...], "stored": [...]})`` -> what this run does with the path."""

    def __init__(self, run_id, scope):
        self.run_id = run_id
        self.scope = scope
        self.counts = {name: _counter(name) for name in (
            "photos_listed", "photos_unchanged", "photos_new", "photos_changed", "photos_removed", "images_failed")}
        self.progress = folder()  # the progress line's folder travels with the DoFn (facetag.pipeline.progress)

    def setup(self):
        report_to(self.progress)

    def finish_bundle(self):
        flush()

    def process(self, element):
        path, joined = element
        listed = joined["listed"][0] if joined["listed"] else None
        stored = joined["stored"][0] if joined["stored"] else None
        present = stored is not None and stored["outcome"] != REMOVED
        if listed is None:
            if present and self.scope.covers(path):
                self.counts["photos_removed"].inc()
                yield beam.pvalue.TaggedOutput(PHOTO_ROWS, {**stored, "outcome": REMOVED, "reason": None,
                                                            "run_id": self.run_id})
            return
        self.counts["photos_listed"].inc()
        note(listed=1)
        if listed["problem"]:
            note(done=1)
            if present and stored["outcome"] == FAILED and stored["reason"] == listed["problem"]:
                self.counts["photos_unchanged"].inc()
            else:
                self.counts["images_failed"].inc()
                note(failed=1)
                yield beam.pvalue.TaggedOutput(PHOTO_ROWS, photo_row(path, self.run_id, FAILED, reason=listed["problem"]))
            return
        if present and stored["size"] == listed["size"] and stored["mtime"] == listed["mtime"]:
            self.counts["photos_unchanged"].inc()
            note(done=1)
            return
        status = "changed" if present else "new"
        self.counts[f"photos_{status}"].inc()
        yield {"path": path, "size": listed["size"], "mtime": listed["mtime"]}


def _listed(entry):
    return entry.path, {"path": entry.path, "size": entry.size, "mtime": entry.mtime, "problem": entry.problem}


class CompareWithStore(beam.PTransform):
    """Listed paths vs the store's photos -> ``to_read`` (main) and ``photo_rows`` (removed, failed); the
    photos left as they are yield nothing."""

    def __init__(self, patterns, run_id):
        super().__init__()
        self.patterns = list(patterns)
        self.run_id = run_id

    def expand(self, stored_photos):
        pipeline = stored_photos.pipeline
        listed = (pipeline
                  | "List inputs" >> beam.Create(self.patterns)
                  | "List paths" >> beam.FlatMap(list_paths)
                  | "Key listed by path" >> beam.Map(_listed))
        stored = stored_photos | "Key stored by path" >> beam.Map(lambda r: (r["path"], r))
        return (
            {"listed": listed, "stored": stored}
            | "Join on path" >> beam.CoGroupByKey()
            | "Decide" >> beam.ParDo(_Compare(self.run_id, InputScope(self.patterns))).with_outputs(
                PHOTO_ROWS, main="to_read")
        )


class _ReadPhoto(beam.DoFn):
    """Photo -> what ``use(photo, data)`` yields of its bytes, read within the file-size limit (the
    regular-file check included); an unreadable file -> a failed photo row."""

    def __init__(self, run_id, max_file_bytes):
        self.run_id = run_id
        self.max_file_bytes = max_file_bytes
        self.failed = _counter("images_failed")
        self.progress = folder()

    def setup(self):
        report_to(self.progress)

    def finish_bundle(self):
        flush()

    def process(self, photo):
        try:
            data = read_file(photo["path"], self.max_file_bytes)
        except ImageError as e:
            self.failed.inc()
            note(done=1, failed=1)
            yield beam.pvalue.TaggedOutput(PHOTO_ROWS, photo_row(
                photo["path"], self.run_id, FAILED, reason=e.reason, size=photo["size"], mtime=photo["mtime"]))
            return
        yield from self.use(photo, data)


class _Hash(_ReadPhoto):
    """Photo to read -> the same with its content's sha256 (the bytes stay here: they are not shuffled)."""

    def use(self, photo, data):
        yield {**photo, "sha256": hashlib.sha256(data).hexdigest()}


class _Reuse(beam.DoFn):
    """``(sha256, {"hashed", "stored", "faces"})`` -> reused photo rows and faces, or photos to detect."""

    def __init__(self, run_id):
        self.run_id = run_id
        self.reused = _counter("photos_reused")
        self.no_face = _counter("images_without_face")
        self.progress = folder()

    def setup(self):
        report_to(self.progress)

    def finish_bundle(self):
        flush()

    def process(self, element):
        _, joined = element
        if not joined["hashed"]:
            return
        known_faces = {}
        for face in joined["faces"]:
            known_faces.setdefault(face["path"], []).append(face)
        donor_rows = {r["path"]: r for r in joined["stored"]}
        if known_faces:
            donor_path = min(known_faces)
            donor = (donor_rows.get(donor_path), sorted(known_faces[donor_path], key=lambda f: f["face_index"]))
        else:
            no_face = sorted((r for r in joined["stored"] if r["outcome"] == NO_FACE), key=lambda r: r["path"])
            donor = (no_face[0], []) if no_face else None
        for photo in joined["hashed"]:
            if donor is None:
                yield photo
                continue
            self.reused.inc()
            row, faces = donor
            note(done=1)
            if not faces:
                self.no_face.inc()
            yield beam.pvalue.TaggedOutput(PHOTO_ROWS, photo_row(
                photo["path"], self.run_id, FACES if faces else NO_FACE,
                reason=None if faces else (row or {}).get("reason") or "no face found",
                size=photo["size"], mtime=photo["mtime"], sha256=photo["sha256"], faces=len(faces),
                width=(row or {}).get("width"), height=(row or {}).get("height")))
            for face in faces:
                yield beam.pvalue.TaggedOutput(REUSED_FACES, {**face, "path": photo["path"],
                                                              "face_id": face_id(photo["path"], face["face_index"])})


REUSED_FACES = "reused_faces"


class _ReadForDetection(_ReadPhoto):
    """Photo to detect -> :class:`PhotoBytes` for EncodePhotos."""

    def use(self, photo, data):
        yield PhotoBytes(photo["path"], data, info={"size": photo["size"], "mtime": photo["mtime"]})


def _summary_to_row(run_id):
    def to_row(summary):
        return photo_row(summary["source"], run_id, summary["outcome"], reason=summary["reason"],
                         size=summary["size"], mtime=summary["mtime"], sha256=summary["sha256"],
                         faces=summary["faces"], width=summary["width"], height=summary["height"])
    return to_row


def _store_face(record):
    """A face record of EncodePhotos -> a row of the store's ``faces`` table."""
    return {"face_id": record["face_id"], "path": record["source"], "photo_sha256": record["photo_sha256"],
            "face_index": record["face_index"], "box": record["box"], "landmarks": record["landmarks"],
            "score": record["score"], "quality": record["quality"], "encoding": record["encoding"]}


class FacesOfPresentPhotos(beam.PTransform):
    """``(stored photos, stored faces)`` -> the faces of the photos still present (not removed).

    The photos stored as anything but having faces are a side input (few); the faces stream past it."""

    def expand(self, stored):
        photos, faces = stored
        without_faces = (photos
                         | "Photos without faces" >> beam.Filter(lambda r: r["outcome"] != FACES)
                         | "Key photos without faces" >> beam.Map(lambda r: (r["path"], None)))
        return faces | "Faces of present photos" >> beam.Filter(
            lambda f, absent: f["path"] not in absent, beam.pvalue.AsDict(without_faces))


class UpdateArchive(beam.PTransform):
    """The store's current photos and faces -> ``{"photos", "faces", "matches"}`` rows for the store to commit.

    ``match``: a DoFn that turns a face row into a match row, given the ``labels`` side input
    (see facetag.pipeline.match.FaceLabels). ``rematch_all``: also match every stored face of a photo
    still present (the gallery or the labels changed).
    """

    def __init__(self, patterns, run_id, encoder_settings, match, rematch_all=False):
        super().__init__()
        self.patterns = patterns
        self.run_id = run_id
        self.encoder_settings = encoder_settings
        self.match = match
        self.rematch_all = rematch_all

    def expand(self, stored):
        stored_photos, stored_faces, labels = stored
        compared = stored_photos | "Compare with the store" >> CompareWithStore(self.patterns, self.run_id)
        hashed = compared.to_read | "Spread photos to read" >> beam.Reshuffle() | "Hash photos" >> beam.ParDo(
            _Hash(self.run_id, self.encoder_settings["limits"].max_file_bytes)).with_outputs(PHOTO_ROWS, main="hashed")
        # Only the stored photos and faces of the contents read this run take part in the join: the rest of
        # the store (every face's encoding) would otherwise be shuffled, and held, on every run.
        contents = beam.pvalue.AsDict(hashed.hashed | "Contents read" >> beam.Map(lambda p: (p["sha256"], None)))
        by_content = {
            "hashed": hashed.hashed | "Key read by content" >> beam.Map(lambda p: (p["sha256"], p)),
            "stored": (stored_photos
                       | "Stored of that content" >> beam.Filter(lambda r, read: r["sha256"] in read, contents)
                       | "Key stored by content" >> beam.Map(lambda r: (r["sha256"], r))),
            "faces": (stored_faces
                      | "Faces of that content" >> beam.Filter(lambda f, read: f["photo_sha256"] in read, contents)
                      | "Key faces by content" >> beam.Map(lambda f: (f["photo_sha256"], f))),
        }
        reuse = (by_content
                 | "Join on content" >> beam.CoGroupByKey()
                 | "Reuse known content" >> beam.ParDo(_Reuse(self.run_id)).with_outputs(
                     PHOTO_ROWS, REUSED_FACES, main="to_detect"))
        read = reuse.to_detect | "Spread photos to detect" >> beam.Reshuffle() | "Read photos" >> beam.ParDo(
            _ReadForDetection(self.run_id, self.encoder_settings["limits"].max_file_bytes)).with_outputs(
            PHOTO_ROWS, main="photos")
        encoded = read.photos | "Detect and encode" >> EncodePhotos(**self.encoder_settings)
        new_faces = ((encoded["faces"] | "Faces as store rows" >> beam.Map(_store_face),
                      reuse[REUSED_FACES])
                     | "New faces" >> beam.Flatten())
        photo_rows = ((compared[PHOTO_ROWS], hashed[PHOTO_ROWS], reuse[PHOTO_ROWS], read[PHOTO_ROWS],
                       encoded[PHOTOS] | "Photo rows" >> beam.Map(_summary_to_row(self.run_id)))
                      | "All photo rows" >> beam.Flatten())
        to_match = new_faces
        if self.rematch_all:
            # The stored faces of the photos this run leaves as they are: present, and not touched by it (read,
            # failed, removed). The paths touched are a side input, small on a nightly run: the faces stream
            # past it, unshuffled.
            touched = ((compared.to_read | "Paths read" >> beam.Map(lambda p: (p["path"], None)),
                        compared[PHOTO_ROWS] | "Paths failed or removed" >> beam.Map(lambda r: (r["path"], None)))
                       | "Paths touched" >> beam.Flatten())
            kept_faces = ((stored_photos, stored_faces)
                          | "Faces of present photos" >> FacesOfPresentPhotos()
                          | "Faces of kept photos" >> beam.Filter(lambda f, touched: f["path"] not in touched,
                                                                  beam.pvalue.AsDict(touched)))
            to_match = (new_faces, kept_faces) | "Faces to match" >> beam.Flatten()
        matches = to_match | "Match faces" >> beam.ParDo(self.match, labels=beam.pvalue.AsDict(labels))
        return {"photos": photo_rows, "faces": new_faces, "matches": matches}


class ReencodeArchive(beam.PTransform):
    """The store's photos -> ``{"photos", "faces", "matches"}`` rows of every photo that had faces or none,
    detected and encoded again (with the encoder of ``encoder_settings``) and matched; the store's whole
    ``faces`` and ``matches`` tables, for ``facetag reencode``. Failed and removed photos are left as they
    are; a photo that cannot be read now becomes a failed row. Faces keep their ids: the detector is the
    same, and a face's id is its photo's path and its place there (facetag.pipeline.records.face_id).
    """

    def __init__(self, run_id, encoder_settings, match):
        super().__init__()
        self.run_id = run_id
        self.encoder_settings = encoder_settings
        self.match = match

    def expand(self, stored):
        stored_photos, labels = stored
        read = (stored_photos
                | "Photos read before" >> beam.Filter(lambda r: r["outcome"] in (FACES, NO_FACE))
                | "What to read" >> beam.Map(lambda r: {"path": r["path"], "size": r["size"], "mtime": r["mtime"]})
                | "Spread photos to read" >> beam.Reshuffle()
                | "Read photos" >> beam.ParDo(_ReadForDetection(
                    self.run_id, self.encoder_settings["limits"].max_file_bytes)).with_outputs(PHOTO_ROWS, main="photos"))
        encoded = read.photos | "Detect and encode" >> EncodePhotos(**self.encoder_settings)
        faces = encoded["faces"] | "Faces as store rows" >> beam.Map(_store_face)
        photo_rows = ((read[PHOTO_ROWS], encoded[PHOTOS] | "Photo rows" >> beam.Map(_summary_to_row(self.run_id)))
                      | "All photo rows" >> beam.Flatten())
        matches = faces | "Match faces" >> beam.ParDo(self.match, labels=beam.pvalue.AsDict(labels))
        return {"photos": photo_rows, "faces": faces, "matches": matches}
