"""`facetag reencode`: a store moved to another model from its photos, in one kill-safe run (issue 30)."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from beam_jobs import enroll, reencode, tag
from facetag.archive.naming import Word, name_faces
from facetag.archive.store import ArchiveStore
from facetag.errors import FaceTagError
from facetag.vision.models import describe_model
from tests.test_archive_store import make_photos, tables

OLD, NEW = "facenet-512", "facetag-128"


def _reencode_process(store, index, stage):
    env = {**os.environ, "FACETAG_TEST_KILL_AT": stage, "FACETAG_TEST_KILL_AFTER": "1"}
    return subprocess.run([sys.executable, "-m", "facetag.cli", "reencode", store, "--model", NEW, "--index", index],
                          env=env, capture_output=True, text=True, timeout=300, start_new_session=True)


def test_reencode_moves_a_store_to_another_model_and_keeps_its_words(samples, tmp_path):
    folder, store = str(tmp_path / "archive"), str(tmp_path / "store")
    old_index, new_index, reference = str(tmp_path / "index-old"), str(tmp_path / "index-new"), str(tmp_path / "ref")
    make_photos(samples, folder, 6)
    gallery = os.path.join(samples, "gallery")
    enroll.run(["--gallery", gallery, "--out", old_index, "--model", OLD])
    enroll.run(["--gallery", gallery, "--out", new_index, "--model", NEW])
    tag.run(["--input", folder, "--index", old_index, "--store", store, "--model", OLD])
    _, faces_before, _ = tables(store)
    named = next(f["face_id"] for f in faces_before if f["path"].endswith("p01.jpg"))  # the astronaut
    name_faces(store, [Word("Eileen Collins", face=named)])
    before = (ArchiveStore(store).manifest(), tables(store))

    # Killed after its faces table was replaced, and just before store.json moved: the store is as it was.
    for stage in ("commit-faces", "commit-manifest"):
        killed = _reencode_process(store, new_index, stage)
        assert killed.returncode == -signal.SIGKILL, (stage, killed.stderr)
        assert (ArchiveStore(store).manifest(), tables(store)) == before, stage

    summary = reencode.run(["--store", store, "--model", NEW, "--index", new_index])
    assert (summary["photos"], summary["failed"], summary["faces_encoded"]) == (6, 0, len(faces_before))
    moved = ArchiveStore(store)
    assert moved.model_id == describe_model(NEW)[0]
    _, faces, matches = tables(store)
    assert [(f["face_id"], f["box"]) for f in faces] == [(f["face_id"], f["box"]) for f in faces_before]
    assert {len(f["encoding"]) for f in faces} == {128}
    assert {m["face_id"]: m["identity"] for m in matches}[named] == "Eileen Collins"
    # The same encodings as a store tagged with the new model from the start.
    tag.run(["--input", folder, "--index", new_index, "--store", reference, "--model", NEW])
    np.testing.assert_allclose([f["encoding"] for f in faces], [f["encoding"] for f in tables(reference)[1]],
                               atol=1e-4)
    # The named face joined the gallery; the next nightly run (no --model) keeps the new model and re-matches.
    assert summary["gallery_faces"] == 3 + 1  # the sample gallery's three photos and the named face
    again = tag.run(["--input", folder, "--index", new_index, "--store", store])
    assert (again["unchanged"], again["faces_encoded"], again["rematched_all"]) == (6, 0, True)

    with pytest.raises(FaceTagError, match="already holds encodings of facetag-128"):
        reencode.run(["--store", store, "--model", NEW, "--index", new_index])
