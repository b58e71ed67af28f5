"""Every file an archive holds is accounted for: the malformed-input corpus (tests/corpus.py) through the encode job."""

import glob
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from facetag.limits import Limits
from facetag.pipeline.encode import DetectFaces
from facetag.faults import DIR_ENV, ENV, STALL_ENV
from tests.corpus import CORPUS_MAX_FILE_MB, display, write_corpus
from tests.jobrun import REPO, run_job
from tests.test_beam_jobs import MODEL, read_outcomes

JOB_OPTIONS = ["--max_file_mb", str(CORPUS_MAX_FILE_MB), *MODEL]
#: One in-process worker's peak (README, Memory: 2.5 GiB with both models loaded), plus room for one decoded photo.
MAX_RSS_MIB = 3 * 1024


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, samples):
    """The corpus, and the encode job's clean run over it: (expected per path, folder, the job's stdout)."""
    folder = tmp_path_factory.mktemp("corpus")
    expected = write_corpus(str(folder / "files"), os.path.join(samples, "photos", "obama2.jpg"))
    started = time.monotonic()
    rc, stdout, stderr, peak_mib = run_job("beam_jobs.encode", ["--input", str(folder / "files"), "--output",
                                                                str(folder / "clean"), *JOB_OPTIONS])
    print(f"\ncorpus: {len(expected)} paths tagged in {time.monotonic() - started:.1f} s, peak RSS {peak_mib:.0f} MiB")
    assert rc == 0, stderr
    assert stderr.strip() == "", stderr
    assert peak_mib < MAX_RSS_MIB
    return expected, str(folder), stdout


def test_every_path_in_the_corpus_is_accounted_for_once(corpus):
    expected, folder, stdout = corpus
    faces, no_face, failed = read_outcomes(os.path.join(folder, "clean"))

    seen = [r["source"] for r in no_face + failed] + sorted({r["source"] for r in faces})
    assert len(seen) == len(set(seen)), "a path in more than one outcome or twice in one"
    assert len({(r["source"], r["face_index"]) for r in faces}) == len(faces)
    got = {r["source"]: ("faces", "") for r in faces}
    got.update({r["source"]: ("no_face", r["reason"]) for r in no_face})
    got.update({r["source"]: ("failed", r["reason"]) for r in failed})
    want = {display(path): e for path, e in expected.items() if e.outcome}
    assert set(got) == set(want), (sorted(set(want) - set(got)), sorted(set(got) - set(want)))
    wrong = {path: got[path] for path, e in want.items() if got[path][0] != e.outcome or e.reason not in got[path][1]}
    assert not wrong, wrong
    for path, (_, reason) in got.items():
        assert "Error" not in reason and "Traceback" not in reason, (path, reason)  # no internal error text
    assert f"{len(want)} images read" in stdout

    # Every EXIF orientation shows the same upright photo: the face is where orientation 1 has it.
    boxes = {os.path.basename(r["source"]): r["box"] for r in faces if r["face_index"] == 0}
    for k in range(2, 9):  # (JPEG's artefacts differ with the stored orientation: boxes move by a few pixels)
        assert _iou(boxes[f"orientation_{k}.jpg"], boxes["orientation_1.jpg"]) > 0.8, k


def _comparable(faces):
    return [{k: v for k, v in r.items() if k != "encoding"} for r in faces]


def test_a_runner_that_retries_bundles_gives_the_clean_runs_output_despite_faults(corpus, tmp_path):
    expected, folder, _ = corpus
    # Beam's bundle-based direct runner retries a failed bundle (up to 4 times); the in-process FnApiRunner does not.
    rc, _, stderr, _ = run_job(
        "beam_jobs.encode", ["--input", os.path.join(folder, "files"), "--output", str(tmp_path / "faulted"),
                             "--runner", "BundleBasedDirectRunner", *JOB_OPTIONS],
        env={ENV: "detect=0.3,encode=0.2", DIR_ENV: str(tmp_path)})
    assert rc == 0, stderr
    injected = os.listdir(tmp_path)
    assert any(m.startswith("detect-") for m in injected) and any(m.startswith("encode-") for m in injected)

    clean, faulted = read_outcomes(os.path.join(folder, "clean")), read_outcomes(str(tmp_path / "faulted"))
    clean, faulted = [[sorted(c[0], key=lambda r: r["face_id"]), *c[1:]] for c in (clean, faulted)]
    assert len({r["face_id"] for r in faulted[0]}) == len(faulted[0])  # no face twice
    assert _comparable(faulted[0]) == _comparable(clean[0])
    np.testing.assert_allclose([r["encoding"] for r in faulted[0]], [r["encoding"] for r in clean[0]], atol=1e-4)
    for got, want in zip(faulted[1:], clean[1:]):  # no_face, failed: the same records, none twice
        assert sorted(got, key=str) == sorted(want, key=str)


def test_a_runner_that_does_not_retry_fails_loudly_and_writes_no_results(corpus, tmp_path):
    _, folder, _ = corpus
    rc, _, stderr, _ = run_job("beam_jobs.encode", ["--input", os.path.join(folder, "files", "face.jpg"), "--output",
                                                    str(tmp_path / "out")],
                               env={ENV: "detect=1", DIR_ENV: str(tmp_path)})
    assert rc != 0
    assert "InjectedFault: injected detect fault" in stderr
    assert not glob.glob(str(tmp_path / "out" / "*.*"))  # Beam's beam-temp-* folders only, no result file


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
    out = [o.value for o in detect.process([("slow.png", _png((8, 8)), None), ("tiny.png", _png((8, 8)), None)])]
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
    script = ("import sys; from facetag.listing import list_paths; from facetag.images import load_image\n"
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
