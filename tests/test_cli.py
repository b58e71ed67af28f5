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


def test_enroll_then_tag_prints_the_results_table(samples, tmp_path):
    index, results = str(tmp_path / "index"), str(tmp_path / "tagged")
    out = facetag("enroll", os.path.join(samples, "gallery"), "--out", index)
    assert out.returncode == 0, out.stderr
    assert "3 images read: 3 with faces" in out.stdout
    out = facetag("tag", os.path.join(samples, "photos"), "--index", index, "--out", results)
    assert out.returncode == 0, out.stderr
    table = out.stdout.splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("source"))
    rows = {os.path.basename(line.split()[0]): line.split()[-2] for line in table[header + 1:] if line.strip()}
    assert rows == {"obama2.jpg": "obama", "astronaut.png": "unknown"}


def test_tag_with_an_unknown_beam_option_is_a_usage_error(tmp_path):
    assert facetag("faces", "x.jpg", "--runner=FnApiRunner").returncode == 2
