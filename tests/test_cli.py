"""The facetag command line: output, --json, exit codes 0 / 1 / 2."""

import json
import os
import subprocess
import sys


def facetag(*args):
    return subprocess.run([sys.executable, "-m", "facetag.cli", *args], capture_output=True, text=True)


def test_identify_json(samples):
    out = facetag("identify", os.path.join(samples, "photos", "obama2.jpg"),
                  "--gallery", os.path.join(samples, "gallery"), "--json")
    assert out.returncode == 0, out.stderr
    faces = json.loads(out.stdout)["faces"]
    assert [f["identity"] for f in faces] == ["obama"]


def test_verify_claim_and_faces_text(samples):
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
