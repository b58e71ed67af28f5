"""Every file an archive holds is accounted for: the malformed-input corpus (tests/corpus.py) through facetag tag,
with and without injected faults."""

import os
import shutil
import subprocess
import sys
import time

import pytest
from PIL import Image

from beam_jobs import enroll
from facetag._testing.faults import DIR_ENV, ENV, STALL_ENV
from facetag.archive.store import ArchiveStore
from facetag.io.limits import Limits
from facetag.pipeline.encode import DetectFaces
from facetag.pipeline.outcomes import FAILED, NO_FACE
from facetag.pipeline.records import PhotoBytes
from tests.corpus import CORPUS_MAX_FILE_MB, display, write_corpus
from tests.jobrun import REPO, run_job
from tests.test_archive_store import assert_same_store, tables
from tests.test_beam_jobs import MODEL

#: facetag tag's options in these tests: the corpus's 6 MB file tests the size limit; the smaller model is quicker.
TAG_OPTIONS = ["--max_file_mb", str(CORPUS_MAX_FILE_MB), *MODEL]
#: One in-process worker's peak (README, Memory: 0.43 GiB with both models loaded), plus the detection threads'
#: pyramids and room for decoded photos; measured 0.85-0.92 GiB on 2026-11-29.
MAX_RSS_MIB = 1536


def facetag_tag(photos, index, store, env=None, *extra):
    """``facetag tag`` as a user runs it: (exit status, stdout, stderr, peak RSS in MiB, CPU seconds)."""
    return run_job("facetag.cli", ["tag", photos, "--index", index, "--out", store, *TAG_OPTIONS, *extra], env=env)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, samples):
    """The corpus, a gallery index, and facetag tag's clean run over the corpus into the store ``clean``:
    (expected per path, folder, the run as {"stdout", "stderr", "peak_mib"}). Raises when the run failed:
    the tests below read its store."""
    folder = tmp_path_factory.mktemp("corpus")
    expected = write_corpus(str(folder / "files"), os.path.join(samples, "photos", "obama2.jpg"))
    enroll.run(["--gallery", os.path.join(samples, "gallery"), "--out", str(folder / "index"), *MODEL])
    started = time.monotonic()
    rc, stdout, stderr, peak_mib, cpu = facetag_tag(str(folder / "files"), str(folder / "index"), str(folder / "clean"))
    if rc != 0:
        raise RuntimeError(f"facetag tag over the corpus exited {rc}:\n{stderr}")
    accounted = sum(1 for e in expected.values() if e.outcome)
    print(f"\ncorpus: {accounted} paths tagged in {time.monotonic() - started:.1f} s ({cpu:.0f} CPU s), "
          f"peak RSS {peak_mib:.0f} MiB")
    return expected, str(folder), {"stdout": stdout, "stderr": stderr, "peak_mib": peak_mib}


def test_the_clean_run_is_quiet_prints_its_table_and_stays_within_its_memory(corpus):
    """Every malformed file ends in the store with its reason, not as a complaint on stderr; one in-process
    worker's peak memory stays under MAX_RSS_MIB however odd the files."""
    _, _, run = corpus
    assert run["stderr"].strip() == "", run["stderr"]
    assert "face(s) tagged in the archive" in run["stdout"]
    assert run["peak_mib"] < MAX_RSS_MIB


def test_every_path_in_the_corpus_is_accounted_for_once(corpus):
    expected, folder, _ = corpus
    store = ArchiveStore(os.path.join(folder, "clean"))
    photos = store.read("photos").to_pylist()
    paths = [r["path"] for r in photos]
    assert len(paths) == len(set(paths)), "a path twice in the photos table"
    got = {r["path"]: (r["outcome"], r["reason"] or "") for r in photos}
    want = {display(path): e for path, e in expected.items() if e.outcome}
    assert set(got) == set(want), (sorted(set(want) - set(got)), sorted(set(got) - set(want)))
    wrong = {path: got[path] for path, e in want.items() if got[path][0] != e.outcome or e.reason not in got[path][1]}
    assert not wrong, wrong
    for path, (_, reason) in got.items():
        assert "Error" not in reason and "Traceback" not in reason, (path, reason)  # no internal error text

    faces = store.read("faces").to_pylist()
    assert {f["path"] for f in faces} == {p for p, (outcome, _) in got.items() if outcome == "faces"}
    assert len({(f["path"], f["face_index"]) for f in faces}) == len(faces)
    # Every EXIF orientation shows the same upright photo: the face is where orientation 1 has it.
    boxes = {os.path.basename(f["path"]): f["box"] for f in faces if f["face_index"] == 0}
    for k in range(2, 9):  # (JPEG's artefacts differ with the stored orientation: boxes move by a few pixels)
        assert _iou(boxes[f"orientation_{k}.jpg"], boxes["orientation_1.jpg"]) > 0.8, k
    sizes = {os.path.basename(r["path"]): (r["width"], r["height"]) for r in photos}
    assert {sizes[f"orientation_{k}.jpg"] for k in range(1, 9)} == {sizes["face.jpg"]}  # displayed size
    assert sizes["tiny_15x12.jpg"] == (15, 12)


def test_a_runner_that_retries_bundles_gives_the_clean_runs_output_despite_faults(corpus, tmp_path):
    _, folder, _ = corpus
    # Beam's bundle-based direct runner retries a failed bundle (up to 4 times); the in-process FnApiRunner does not.
    rc, _, stderr, _, _ = facetag_tag(os.path.join(folder, "files"), os.path.join(folder, "index"),
                                   str(tmp_path / "store"), {ENV: "detect=0.3,encode=0.2", DIR_ENV: str(tmp_path)},
                                   "--runner", "BundleBasedDirectRunner")
    assert rc == 0, stderr
    injected = os.listdir(tmp_path)
    assert any(m.startswith("detect-") for m in injected) and any(m.startswith("encode-") for m in injected)
    photos, faces, matches = tables(str(tmp_path / "store"))
    assert len({p["path"] for p in photos}) == len(photos) and len({f["face_id"] for f in faces}) == len(faces)
    assert len({m["face_id"] for m in matches}) == len(matches)
    assert_same_store(os.path.join(folder, "clean"), str(tmp_path / "store"))
    assert [(p["path"], p["outcome"], p["reason"]) for p in photos] == [
        (p["path"], p["outcome"], p["reason"]) for p in tables(os.path.join(folder, "clean"))[0]]


def test_a_runner_that_does_not_retry_fails_loudly_and_the_store_stays_as_it_was(corpus, tmp_path):
    _, folder, _ = corpus
    store = str(tmp_path / "store")
    shutil.copytree(os.path.join(folder, "clean"), store)
    before, manifest = tables(store), ArchiveStore(store).manifest()
    new = tmp_path / "new"
    new.mkdir()
    # new content (a copy of a stored photo would take its stored faces without detection)
    Image.open(os.path.join(folder, "files", "face.jpg")).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
        new / "another.jpg")
    rc, _, stderr, _, _ = facetag_tag(str(new), os.path.join(folder, "index"), store,
                                   {ENV: "detect=1", DIR_ENV: str(tmp_path)})
    assert rc != 0
    assert "InjectedFault: injected detect fault" in stderr
    assert ArchiveStore(store).manifest() == manifest and tables(store) == before


def _iou(a, b):
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _png(size):
    import io

    buf = io.BytesIO()
    Image.new("RGB", size).save(buf, "PNG")
    return buf.getvalue()


def test_a_photo_over_its_time_budget_fails_and_the_worker_moves_on(monkeypatch):
    monkeypatch.setenv(ENV, "stall=*slow*")
    monkeypatch.setenv(STALL_ENV, "3")
    detect = DetectFaces(limits=Limits(time_budget_s=0.5))
    detect.setup()
    detect.start_bundle()
    started = time.monotonic()
    outputs = [*detect.process([PhotoBytes("slow.png", _png((8, 8))), PhotoBytes("tiny.png", _png((8, 8)))]),
               *detect.finish_bundle()]  # photos still in flight when process returns come out here
    out = [o.value.value if hasattr(o.value, "windows") else o.value for o in outputs if o.tag in (FAILED, NO_FACE)]
    assert time.monotonic() - started < 2.5  # did not wait for the stalled photo
    assert out[0] == {"source": "slow.png", "reason": out[0]["reason"]} and "time budget" in out[0]["reason"]
    assert "smaller than the smallest face" in out[1]["reason"]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_files_and_folders_the_user_may_not_read_are_accounted_for(tmp_path):
    """Root reads everything: the listing and reading run as root without the capabilities that bypass modes."""
    (tmp_path / "locked.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "locked.jpg").chmod(0)
    (tmp_path / "closed").mkdir()
    (tmp_path / "closed" / "a.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "closed").chmod(0)
    script = ("import sys; from facetag.io.listing import list_paths; from facetag.io.images import load_image\n"
              "from facetag.errors import ImageError\n"
              "for p in list_paths(sys.argv[1]):\n"
              "    try: print(p.path, '|', p.problem or load_image(p.path))\n"
              "    except ImageError as e: print(p.path, '|', e.reason)\n")
    lines = subprocess.run(["setpriv", "--bounding-set", "-dac_override,-dac_read_search", sys.executable, "-c",
                            script, str(tmp_path)], capture_output=True, text=True, check=True, cwd=REPO).stdout
    got = dict(line.split(" | ") for line in lines.splitlines())
    assert "permission denied" in got[str(tmp_path / "locked.jpg")]
    assert "permission denied" in got[str(tmp_path / "closed")]
    assert len(got) == 2


def test_an_unexpected_error_is_named_with_a_hint_and_logged_once(caplog):
    from facetag.pipeline.encode import _unexpected

    reasons = [_unexpected(KeyError("internal detail"), f"p{i}.jpg") for i in range(3)]
    assert reasons[0] == reasons[2] and "unexpected KeyError" in reasons[0] and "report it" in reasons[0]
    assert "internal detail" not in reasons[0]
    assert [r.getMessage() for r in caplog.records].count(
        "facetag: unexpected KeyError on p0.jpg (logged once per worker; please report it with the photo)") == 1
    assert len([r for r in caplog.records if "KeyError" in r.getMessage()]) == 1


def test_a_pipe_is_never_opened_even_when_named_directly(tmp_path):
    from facetag.errors import ImageError
    from facetag.io.images import read_file

    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(ImageError, match="named pipe"):
        read_file(str(tmp_path / "pipe.jpg"))
