"""The archive joins of an incremental run (facetag.pipeline.archive), in memory in Beam's in-process runner: the
listing against the stored rows (CompareWithStore), and a photo whose content the store knows taking its stored
faces without detection (UpdateArchive's join on content). Real files in tmp_path are listed and hashed; the
store's rows are given as a store read would give them."""

import hashlib
import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline  # not "Test...": pytest would collect it
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from facetag.identity.gallery_index import build_index, index_id
from facetag.io.limits import DEFAULT_LIMITS
from facetag.io.listing import classify
from facetag.pipeline.archive import PHOTO_ROWS, STORED_PHOTO_COLUMNS, CompareWithStore, UpdateArchive
from facetag.pipeline.match import MatchFaces
from facetag.pipeline.options import counters
from facetag.pipeline.records import face_id
from facetag.vision.models import DEFAULT_MODEL

RUN = "20270101T000000Z-000001"


def stored_photo(path, outcome, **fields):
    """A row of the store's photos table as the run reads it (STORED_PHOTO_COLUMNS)."""
    row = {"path": path, "size": 1, "mtime": 1.0, "sha256": None, "outcome": outcome, "reason": None, "faces": 0,
           "width": None, "height": None, **fields}
    assert set(row) == set(STORED_PHOTO_COLUMNS)  # the test's own rows: a new column must be added here
    return row


def listed_photo(path, **fields):
    """A photos row a run writes for a file it read, with the file's size and modification time."""
    st = os.stat(path)
    return {"path": path, "size": st.st_size, "mtime": st.st_mtime, "sha256": None, "outcome": None, "reason": None,
            "faces": 0, "width": None, "height": None, "run_id": RUN, **fields}


@pytest.fixture
def folders(tmp_path):
    """``photos/``: same.jpg, edited.jpg, new.jpg and two broken links; ``elsewhere/``: a folder no run lists."""
    photos, elsewhere = tmp_path / "photos", tmp_path / "elsewhere"
    photos.mkdir()
    elsewhere.mkdir()
    for name in ("same.jpg", "edited.jpg", "new.jpg"):
        (photos / name).write_bytes(f"the bytes of {name}".encode())
    os.symlink(tmp_path / "missing-1.jpg", photos / "broken.jpg")
    os.symlink(tmp_path / "missing-2.jpg", photos / "still_broken.jpg")
    return str(photos), str(elsewhere)


def test_compare_with_store_sorts_every_path_into_one_outcome(folders):
    """same.jpg unchanged (size and mtime as stored); edited.jpg changed (another size) and new.jpg new: both to
    read; broken.jpg failed with the listing's reason, still_broken.jpg failed before with the same reason:
    unchanged; gone.jpg stored but not listed: removed; gone_before.jpg removed already: nothing; other.jpg is in a
    folder this run does not list: neither removed nor read."""
    photos, elsewhere = folders
    path = {name: os.path.join(photos, name) for name in ("same.jpg", "edited.jpg", "new.jpg", "broken.jpg",
                                                          "still_broken.jpg", "gone.jpg", "gone_before.jpg")}
    other = os.path.join(elsewhere, "other.jpg")
    same, edited = os.stat(path["same.jpg"]), os.stat(path["edited.jpg"])
    still_broken = classify(path["still_broken.jpg"]).problem
    gone = stored_photo(path["gone.jpg"], "faces", sha256="ab" * 32, faces=1, width=640, height=480)
    stored = [
        stored_photo(path["same.jpg"], "faces", size=same.st_size, mtime=same.st_mtime, faces=1),
        stored_photo(path["edited.jpg"], "faces", size=edited.st_size + 1, mtime=edited.st_mtime, faces=1),
        stored_photo(path["still_broken.jpg"], "failed", reason=still_broken, size=None, mtime=None),
        gone,
        stored_photo(path["gone_before.jpg"], "removed"),
        stored_photo(other, "faces", faces=2),
    ]
    broken = classify(path["broken.jpg"]).problem
    assert "broken symbolic link" in broken and "broken symbolic link" in still_broken

    pipeline = BeamTestPipeline(runner=FnApiRunner())
    with pipeline as p:
        compared = p | "Stored" >> beam.Create(stored) | CompareWithStore([photos], RUN)
        assert_that(compared.to_read, equal_to([
            {"path": path[name], "size": os.stat(path[name]).st_size, "mtime": os.stat(path[name]).st_mtime}
            for name in ("edited.jpg", "new.jpg")]), label="Check to read")
        assert_that(compared[PHOTO_ROWS], equal_to([
            {"path": path["broken.jpg"], "size": None, "mtime": None, "sha256": None, "outcome": "failed",
             "reason": broken, "faces": 0, "width": None, "height": None, "run_id": RUN},
            {**gone, "outcome": "removed", "reason": None, "run_id": RUN},
        ]), label="Check photo rows")
    assert {k: v for k, v in counters(pipeline.result).items() if v} == {
        "photos_listed": 5, "photos_unchanged": 2, "photos_new": 1, "photos_changed": 1, "photos_removed": 1,
        "images_failed": 1}


def stored_face(path, sha256, index, encoding):
    """A row of the store's faces table."""
    return {"face_id": face_id(path, index), "path": path, "photo_sha256": sha256, "face_index": index,
            "box": [10 + index, 20, 60 + index, 80], "landmarks": [float(index)] * 10, "score": 0.99,
            "encoding": encoding}


def test_a_copied_photo_takes_its_stored_faces_without_detection(tmp_path):
    """The store knows archive/old_name.png (two faces) and elsewhere/blank.png (no face). The run finds
    old_name.png renamed (moved) to renamed.png, and a copy of blank.png: both take what the store knows of
    their content, under their own paths and face ids; the faces are matched against the gallery; nothing is
    detected. The files are 8 x 8 PNGs, in which detection would have found nothing at all."""
    archive, elsewhere = tmp_path / "archive", tmp_path / "elsewhere"
    archive.mkdir()
    elsewhere.mkdir()
    Image.new("RGB", (8, 8), (200, 120, 90)).save(archive / "renamed.png")
    Image.new("RGB", (8, 8), (90, 140, 220)).save(archive / "copy_of_blank.png")
    renamed, copy = str(archive / "renamed.png"), str(archive / "copy_of_blank.png")
    old_name, blank = str(archive / "old_name.png"), str(elsewhere / "blank.png")
    content = {path: hashlib.sha256(open(path, "rb").read()).hexdigest() for path in (renamed, copy)}

    rng = np.random.default_rng(0)
    alice, stranger = (v / np.linalg.norm(v) for v in rng.normal(size=(2, 128)))
    gallery = str(tmp_path / "gallery")
    meta = build_index(np.stack([alice, -alice]), face_ids=["g1", "g2"], identities=["alice", "bob"],
                       sources=["alice.jpg", "bob.jpg"], model_id="synthetic-128", out_dir=gallery)
    faces = [stored_face(old_name, content[renamed], 0, alice.astype(np.float32).tolist()),
             stored_face(old_name, content[renamed], 1, stranger.astype(np.float32).tolist())]
    old_row = stored_photo(old_name, "faces", sha256=content[renamed], faces=2, width=640, height=480)
    photos = [old_row, stored_photo(blank, "no_face", sha256=content[copy], reason="no face found (a landscape)",
                                    width=300, height=200)]

    pipeline = BeamTestPipeline(runner=FnApiRunner())
    with pipeline as p:
        stored = (p | "Stored photos" >> beam.Create(photos), p | "Stored faces" >> beam.Create(faces),
                  p | "No labels" >> beam.Create([]))
        rows = stored | UpdateArchive([str(archive)], RUN, {"model_name": DEFAULT_MODEL, "limits": DEFAULT_LIMITS},
                                      MatchFaces(gallery, index_id(meta), threshold=0.5))
        assert_that(rows["photos"], equal_to([
            {**old_row, "outcome": "removed", "reason": None, "run_id": RUN},  # moved away: gone from its path
            listed_photo(renamed, sha256=content[renamed], outcome="faces", faces=2, width=640, height=480),
            listed_photo(copy, sha256=content[copy], outcome="no_face", reason="no face found (a landscape)",
                         width=300, height=200),
        ]), label="Check photos")
        assert_that(rows["faces"], equal_to([{**face, "path": renamed, "face_id": face_id(renamed, face["face_index"])}
                                             for face in faces]), label="Check faces")
        assert_that(rows["matches"] | beam.Map(lambda m: (m["face_id"], m["path"], m["identity"])), equal_to([
            (face_id(renamed, 0), renamed, "alice"), (face_id(renamed, 1), renamed, "unknown")]), label="Check matches")
    # No faces_found or images_with_faces: nothing went through detection (the one photo without a face is reused).
    assert {k: v for k, v in counters(pipeline.result).items() if v} == {
        "photos_listed": 2, "photos_new": 2, "photos_removed": 1, "photos_reused": 2, "images_without_face": 1,
        "faces_identified": 1, "faces_unknown": 1}
