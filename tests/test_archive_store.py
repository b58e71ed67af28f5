"""The archive store: incremental, idempotent, crash-safe runs of `facetag tag` (issue: the archive's memory).

Runs are real: the Beam jobs in process, and `facetag tag` as a subprocess
where a run is killed (SIGKILL of its whole process group) at chosen stages.
"""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image, ImageOps

from beam_jobs import enroll, match, tag
from facetag.archive.lock import StoreBusyError
from facetag.archive.store import ArchiveStore
from facetag.errors import ModelMismatchError
from tests.test_beam_jobs import MODEL

SOURCES = ("photos/obama2.jpg", "photos/astronaut.png", "gallery/obama/obama.jpg", "gallery/obama/obama3.jpg",
           "gallery/biden/biden.jpg")


def make_photos(samples, folder, count, start=0):
    """``count`` distinct photos with faces (the samples scaled and mirrored), named p00.jpg, p01.jpg..."""
    os.makedirs(folder, exist_ok=True)
    names = []
    for i in range(start, start + count):
        image = Image.open(os.path.join(samples, SOURCES[i % len(SOURCES)])).convert("RGB")
        scale = 360 / max(image.size) * (1 - 0.08 * (i // len(SOURCES) % 4))
        image = image.resize((round(image.width * scale), round(image.height * scale)))
        if i // (4 * len(SOURCES)) % 2:
            image = ImageOps.mirror(image)
        names.append(f"p{i:02d}.jpg")
        image.save(os.path.join(folder, names[-1]), quality=90)
    return names


def tables(store_path):
    """The store's rows, comparable between runs: sorted, run ids left out, encodings as arrays."""
    store = ArchiveStore(store_path)
    photos = sorted(({k: v for k, v in r.items() if k != "run_id"} for r in store.read("photos").to_pylist()),
                    key=lambda r: r["path"])
    faces = sorted(store.read("faces").to_pylist(), key=lambda r: r["face_id"])
    matches = sorted(store.read("matches").to_pylist(), key=lambda r: r["face_id"])
    return photos, faces, matches


def assert_same_store(a, b):
    photos_a, faces_a, matches_a = tables(a)
    photos_b, faces_b, matches_b = tables(b)
    assert [(p["path"], p["outcome"], p["faces"], p["sha256"]) for p in photos_a] == [
        (p["path"], p["outcome"], p["faces"], p["sha256"]) for p in photos_b]
    assert [(f["face_id"], f["path"], f["box"]) for f in faces_a] == [(f["face_id"], f["path"], f["box"])
                                                                      for f in faces_b]
    np.testing.assert_allclose([f["encoding"] for f in faces_a], [f["encoding"] for f in faces_b], atol=1e-4)
    assert [(m["face_id"], m["identity"]) for m in matches_a] == [(m["face_id"], m["identity"]) for m in matches_b]
    assert len({f["face_id"] for f in faces_a}) == len(faces_a)


@pytest.fixture(scope="module")
def indexes(samples, tmp_path_factory):
    """Index A: the sample gallery (obama, biden). Index B: the same plus the astronaut, Eileen Collins."""
    work = tmp_path_factory.mktemp("indexes")
    enroll.run(["--gallery", os.path.join(samples, "gallery"), "--out", str(work / "a"), *MODEL])
    gallery_b = work / "b.csv"
    with open(gallery_b, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["uri", "identity"])
        for rel in ("gallery/obama/obama.jpg", "gallery/obama/obama3.jpg", "gallery/biden/biden.jpg"):
            writer.writerow([os.path.join(samples, rel), rel.split("/")[1]])
        writer.writerow([os.path.join(samples, "photos/astronaut.png"), "eileen"])
    enroll.run(["--gallery", str(gallery_b), "--out", str(work / "b"), *MODEL])
    return str(work / "a"), str(work / "b")


def run_tag(folder, index, store, *extra):
    return tag.run(["--input", folder, "--index", index, "--store", store, *MODEL, *extra])


def test_incremental_runs(samples, indexes, tmp_path):
    index_a, index_b = indexes
    folder, store = str(tmp_path / "archive"), str(tmp_path / "store")
    names = make_photos(samples, folder, 10)
    Image.new("RGB", (300, 200), (90, 140, 220)).save(os.path.join(folder, "sky.png"))
    with open(os.path.join(folder, "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 not really a jpeg")

    first = run_tag(folder, index_a, store)
    assert (first["photos_listed"], first["new"], first["failed"], first["no_face"]) == (12, 12, 1, 1)
    assert first["faces_encoded"] == first["faces_matched"] >= 10
    after_first = tables(store)

    second = run_tag(folder, index_a, store)
    assert (second["unchanged"], second["new"], second["changed"], second["faces_encoded"]) == (12, 0, 0, 0)
    assert tables(store) == after_first

    # A copy, a move, a removal, a change and a new photo.
    shutil.copy(os.path.join(folder, names[0]), os.path.join(folder, "copy.jpg"))
    os.makedirs(os.path.join(folder, "sub"))
    os.rename(os.path.join(folder, names[1]), os.path.join(folder, "sub", "moved.jpg"))
    os.remove(os.path.join(folder, names[2]))
    make_photos(samples, str(tmp_path / "more"), 2, start=10)
    shutil.copy(str(tmp_path / "more" / "p10.jpg"), os.path.join(folder, names[3]))  # new content, same name
    shutil.copy(str(tmp_path / "more" / "p11.jpg"), os.path.join(folder, "new.jpg"))
    third = run_tag(folder, index_a, store)
    assert (third["new"], third["changed"], third["removed"], third["reused_by_content"]) == (3, 1, 2, 2)
    assert third["unchanged"] == 9  # the 12 less the moved, the removed and the changed one
    photos, faces, matches = tables(store)
    by_path = {p["path"]: p for p in photos}
    assert by_path[os.path.join(folder, names[1])]["outcome"] == "removed"
    assert by_path[os.path.join(folder, names[2])]["outcome"] == "removed"
    assert by_path[os.path.join(folder, "copy.jpg")]["sha256"] == by_path[os.path.join(folder, names[0])]["sha256"]
    encodings = {(f["path"], f["face_index"]): f["encoding"] for f in faces}
    assert encodings[(os.path.join(folder, "copy.jpg"), 0)] == encodings[(os.path.join(folder, names[0]), 0)]
    matched_paths = {m["path"] for m in matches}
    assert os.path.join(folder, names[1]) not in matched_paths and os.path.join(folder, names[2]) not in matched_paths
    assert {os.path.join(folder, "sub", "moved.jpg"), os.path.join(folder, "new.jpg")} <= matched_paths
    assert len({m["face_id"] for m in matches}) == len(matches)
    present_faces = sum(p["faces"] for p in photos if p["outcome"] == "faces")
    assert len(matches) == present_faces
    with open(os.path.join(store, "matches.csv")) as f:
        assert len(f.read().splitlines()) == 1 + len(matches)

    # The gallery grows: every stored face is matched again, nothing detected or encoded.
    astronauts = {m["face_id"] for m in matches if m["path"].endswith(("moved.jpg", "p06.jpg"))}  # p01, p06
    fourth = run_tag(folder, index_b, store)
    assert fourth["rematched_all"] and fourth["faces_encoded"] == 0 and fourth["faces_matched"] == len(matches)
    identities = {m["face_id"]: m["identity"] for m in tables(store)[2]}
    assert {identities[f] for f in astronauts} == {"eileen"}

    # beam_jobs.match re-matches the store against the old gallery.
    match.run(["--store", store, "--index", index_a])
    identities = {m["face_id"]: m["identity"] for m in tables(store)[2]}
    assert {identities[f] for f in astronauts} == {"unknown"} and len(identities) == len(matches)

    with pytest.raises(ModelMismatchError, match="different models"):
        tag.run(["--input", folder, "--index", index_a, "--store", store, "--model", "facetag-128"])
    # Without --model a run takes the store's model (facenet-512 here), not facetag's default.
    again = tag.run(["--input", folder, "--index", index_a, "--store", store])
    assert (again["unchanged"], again["faces_encoded"]) == (third["unchanged"] + third["new"] + third["changed"], 0)


def test_runs_with_different_runners_do_not_duplicate_results(samples, indexes, tmp_path):
    """The reported bug: two runs into one --out (2 worker processes, then in-process) gave every face twice."""
    folder, store = str(tmp_path / "archive"), str(tmp_path / "store")
    make_photos(samples, folder, 6)
    run_tag(folder, indexes[0], store, "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    os.utime(os.path.join(folder, "p00.jpg"))  # touched: read again, same content
    run_tag(folder, indexes[0], store)
    _, faces, matches = tables(store)
    assert len(matches) == len(faces) == len({m["face_id"] for m in matches}) >= 6
    with open(os.path.join(store, "matches.csv")) as f:
        assert len(f.read().splitlines()) == 1 + len(matches)
    assert not [n for n in os.listdir(store) if n.endswith(".parquet")]  # no loose shards


def _tag_process(folder, index, store, env_extra=None, progress=False):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "facetag.cli", "tag", folder, "--index", index, "--out", store, *MODEL, "--json",
         *(["--progress"] if progress else [])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_until_it_holds(store, proc):
    lock = os.path.join(store, ".lock")
    deadline = time.time() + 120
    while time.time() < deadline and f"pid {proc.pid}," not in open(lock).read():
        time.sleep(0.05)


def test_a_killed_run_loses_nothing_and_duplicates_nothing(samples, indexes, tmp_path):
    folder, store, reference = str(tmp_path / "archive"), str(tmp_path / "store"), str(tmp_path / "reference")
    make_photos(samples, folder, 12)
    run_tag(folder, indexes[0], store)
    committed = tables(store)
    manifest = ArchiveStore(store).manifest()
    make_photos(samples, folder, 12, start=12)

    # Killed from inside at each stage: mid-detection, after the pipeline, between the table commits,
    # before store.json moves. Each time the store reads as before, and the next run starts over.
    for stage, after in (("detect", "4"), ("staged", "1"), ("commit-photos", "1"), ("commit-matches", "1"),
                         ("commit-manifest", "1")):
        proc = _tag_process(folder, indexes[0], store, {"FACETAG_TEST_KILL_AT": stage,
                                                        "FACETAG_TEST_KILL_AFTER": after})
        proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, f"the run was not killed at {stage}"
        assert ArchiveStore(store).manifest() == manifest, stage
        assert tables(store) == committed, stage

    # Killed from outside, as soon as it holds the store (a run of these 12 photos takes only seconds).
    proc = _tag_process(folder, indexes[0], store)
    _wait_until_it_holds(store, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
    assert tables(store) == committed

    # The next run completes the work; a second run started meanwhile is refused, and harms nothing.
    proc = _tag_process(folder, indexes[0], store, progress=True)
    _wait_until_it_holds(store, proc)
    with pytest.raises(StoreBusyError, match="another facetag run is writing"):
        run_tag(folder, indexes[0], store)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert '"new": 12' in out
    unexpected = [line for line in err.replace("\r", "\n").splitlines()
                  if line.strip() and not line.startswith("facetag: ")]
    assert not unexpected, unexpected

    run_tag(folder, indexes[0], reference)
    assert_same_store(store, reference)


def test_progress_line_sums_the_workers_and_estimates_the_time_left(tmp_path):
    import io
    import json

    from facetag.pipeline import progress

    stream = io.StringIO()
    with progress.ProgressReporter(force=True, stream=stream) as reporter:
        with open(os.path.join(reporter.folder, "12345.json"), "w") as f:  # another worker process
            json.dump({"listed": 1000, "done": 100, "faces": 90}, f)
        progress.note(done=100, faces=110, failed=2)
        totals = reporter.totals()
    assert totals == {"listed": 1000, "done": 200, "faces": 200, "failed": 2}
    assert progress.ProgressReporter.line(totals, 20.0) == (
        "facetag: 200/1,000 photos (10.0/s), 200 faces, 2 failed, about 80 s left")
    assert progress.ProgressReporter.line(totals | {"listed": 10000}, 20.0).endswith("about 16 min left")
    assert progress.ProgressReporter.line({"listed": 10, "done": 10}, 5.0) == "facetag: 10/10 photos (2.0/s), 0 faces, 0 failed"
    assert not os.path.exists(reporter.folder) and progress.folder() is None


def test_input_scope_covers_what_the_listing_lists(tmp_path):
    from facetag.pipeline.archive import InputScope

    os.makedirs(tmp_path / "a")
    scope = InputScope([str(tmp_path / "a"), str(tmp_path / "b" / "**" / "*.jpg"), "gs://bucket/photos"])
    assert scope.covers(str(tmp_path / "a" / "x" / "y.jpg"))
    assert scope.covers(str(tmp_path / "b" / "y.jpg")) and scope.covers(str(tmp_path / "b" / "c" / "y.jpg"))
    assert scope.covers("gs://bucket/photos/2024/y.jpg") and not scope.covers("gs://bucket/photos2/y.jpg")
    assert not scope.covers(str(tmp_path / "ab.jpg")) and not scope.covers(str(tmp_path / "b" / "y.png"))
