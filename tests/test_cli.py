"""The facetag command line: output, --json, exit codes 0 / 1 / 2."""

import json
import os
import subprocess
import sys

import pytest


def facetag(*args):
    return subprocess.run([sys.executable, "-m", "facetag.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def enrolled(samples, tmp_path_factory):
    """``facetag enroll`` of the sample gallery: (the index folder, the finished process)."""
    index = str(tmp_path_factory.mktemp("cli") / "index")
    out = facetag("enroll", os.path.join(samples, "gallery"), "--out", index)
    if out.returncode != 0:
        raise RuntimeError(f"facetag enroll failed: {out.stderr}")
    return index, out


def test_identify_json_names_the_face(samples):
    out = facetag("identify", os.path.join(samples, "photos", "obama2.jpg"),
                  "--gallery", os.path.join(samples, "gallery"), "--json")
    assert out.returncode == 0, out.stderr
    faces = json.loads(out.stdout)["faces"]
    assert [f["identity"] for f in faces] == ["obama"]


def test_verify_claim_says_no_and_faces_counts_the_face(samples):
    photo = os.path.join(samples, "photos", "obama2.jpg")
    out = facetag("verify", photo, "--claim", "biden", "--gallery", os.path.join(samples, "gallery"))
    assert out.returncode == 0, out.stderr
    assert "is biden: no" in out.stdout
    out = facetag("faces", photo)
    assert out.returncode == 0 and "1 face(s)" in out.stdout


def test_unreadable_file_exits_1_naming_it(tmp_path, samples):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    out = facetag("faces", str(bad))
    assert out.returncode == 1
    assert "broken.jpg" in out.stderr and "cannot read image" in out.stderr


def test_usage_errors_exit_2(samples):
    assert facetag().returncode == 2
    assert facetag("verify", os.path.join(samples, "photos", "obama2.jpg")).returncode == 2
    assert facetag("identify", "x.jpg").returncode == 2  # --gallery is required


def test_enroll_says_what_it_read(enrolled):
    _, out = enrolled
    assert "3 images read: 3 with faces" in out.stdout


def test_tag_prints_the_results_table(samples, enrolled, tmp_path):
    index, _ = enrolled
    out = facetag("tag", os.path.join(samples, "photos"), "--index", index, "--out", str(tmp_path / "tagged"))
    assert out.returncode == 0, out.stderr
    table = out.stdout.splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("source"))
    rows = {os.path.basename(line.split()[0]): line.split()[-2] for line in table[header + 1:] if line.strip()}
    assert rows == {"obama2.jpg": "obama", "astronaut.png": "unknown"}


def test_a_command_that_runs_no_beam_job_refuses_an_unknown_option_with_exit_2(samples):
    """Only the Beam jobs' commands pass options they do not know on (to Beam); any other names what it refused."""
    out = facetag("faces", os.path.join(samples, "photos", "obama2.jpg"), "--runner=FnApiRunner")
    assert out.returncode == 2
    assert "unrecognized arguments: --runner=FnApiRunner" in out.stderr


def test_tag_passes_beam_options_on_to_beam(samples, enrolled, tmp_path):
    """``--runner`` and ``--direct_num_workers`` are not tag's: Beam runs the job with them. That Beam, not
    facetag, reads them shows with a runner Beam does not have: the run stops naming it."""
    index, _ = enrolled
    photos = os.path.join(samples, "photos")
    out = facetag("tag", photos, "--index", index, "--out", str(tmp_path / "tagged"), "--json",
                  "--runner=FnApiRunner", "--direct_num_workers=1")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.splitlines()[-1])
    assert (summary["new"], summary["faces_encoded"], summary["faces_identified"]) == (2, 2, 1)
    out = facetag("tag", photos, "--index", index, "--out", str(tmp_path / "other"), "--runner=NoSuchRunner")
    assert out.returncode == 1 and "facetag: error: --runner NoSuchRunner: " in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
