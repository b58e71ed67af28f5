"""Face quality (facetag.vision.quality), the clustering gate that uses it, and stores written before it existed."""

import glob
import json
import os
import shutil

import apache_beam as beam
import cv2
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from facetag.archive.results import read_results
from facetag.archive.review import page_data
from facetag.archive.store import ArchiveStore
from facetag.identity.clustering import too_unsure
from facetag.pipeline.cluster import ClusterFaces
from facetag.vision import quality
from facetag.vision.models import CLUSTER_THRESHOLDS

FRONTAL = [(40, 50), (80, 50), (60, 70), (45, 90), (75, 90)]
PROFILE = [(40, 50), (60, 50), (78, 70), (45, 90), (65, 90)]  # nose past the right eye: turned away


def textured_crop(seed=0):
    rng = np.random.default_rng(seed)
    return np.repeat(rng.integers(0, 256, (160, 160, 1), dtype=np.uint8), 3, axis=2)


def test_each_factor_lowers_quality():
    sharp = textured_crop()
    good = quality.face_quality((0, 0, 100, 120), 1.0, FRONTAL, sharp)
    assert good == 1.0
    assert quality.face_quality((0, 0, 30, 36), 1.0, FRONTAL, sharp) == pytest.approx(0.5)  # half GOOD_SIZE
    blurred = cv2.GaussianBlur(sharp, (0, 0), 6)
    assert quality.sharpness(blurred) < quality.GOOD_SHARPNESS < quality.sharpness(sharp)
    assert quality.face_quality((0, 0, 100, 120), 1.0, FRONTAL, blurred) < 0.5
    assert quality.yaw_offset(FRONTAL) == pytest.approx(0.0)
    assert quality.yaw_offset(PROFILE) > quality.WORST_YAW
    assert quality.face_quality((0, 0, 100, 120), 1.0, PROFILE, sharp) == 0.0
    assert quality.face_quality((0, 0, 100, 120), 0.95, FRONTAL, sharp) == pytest.approx(0.5)
    assert quality.yaw_offset(np.ravel(FRONTAL)) == quality.yaw_offset(FRONTAL)  # the store's flat landmarks


def test_unknown_quality_is_never_too_unsure():
    assert too_unsure(0.2, 0.5) and not too_unsure(0.5, 0.5) and not too_unsure(None, 0.5)
    assert not too_unsure(0.0)  # the default gate lets every face through


def synthetic_faces(quality_of):
    """Three people, four photos each, encodings close around each person's own direction (at facetag-128's scale:
    photos of one person about 0.5 apart)."""
    rng = np.random.default_rng(1)
    centres = np.eye(128, dtype=np.float32)[:3]
    faces = []
    for person, centre in enumerate(centres):
        for photo in range(4):
            encoding = centre + rng.normal(0, 0.03, 128).astype(np.float32)
            face_id = f"p{person}-{photo}"
            faces.append({"face_id": face_id, "path": f"{face_id}.jpg", "quality": quality_of.get(face_id, 1.0),
                          "encoding": (encoding / np.linalg.norm(encoding)).tolist()})
    return faces


def clustered(faces, tmp_path, min_quality):
    with beam.Pipeline(runner=FnApiRunner()) as p:
        (p | beam.Create(faces) | ClusterFaces(work_dir=str(tmp_path), threshold=CLUSTER_THRESHOLDS["facetag-128"],
                                               min_quality=min_quality)
         | beam.Map(json.dumps) | beam.io.WriteToText(str(tmp_path / "out")))
    records = [json.loads(line) for path in glob.glob(str(tmp_path / "out*")) for line in open(path)]
    return {r["face_id"]: r["cluster_id"] for r in records}


def test_faces_under_the_quality_gate_stay_out_of_clusters(tmp_path):
    faces = synthetic_faces({"p0-0": 0.2, "p1-1": None})
    everyone = clustered(faces, tmp_path / "off", 0.0)
    assert all(c is not None for c in everyone.values()) and len(set(everyone.values())) == 3
    gated = clustered(faces, tmp_path / "on", 0.5)
    assert gated["p0-0"] is None
    assert all(c is not None for f, c in gated.items() if f != "p0-0")  # unknown quality (p1-1) is grouped
    assert len(set(gated.values()) - {None}) == 3


def age_store(store_path):
    """Make the store look like one written before faces had a quality column (2026-12-04): its faces table
    rewritten without the column, store.json pointing at that version."""
    from deltalake import DeltaTable, write_deltalake

    path = os.path.join(store_path, "faces")
    old = DeltaTable(path).to_pyarrow_table().drop_columns(["quality"])
    write_deltalake(path, old, mode="overwrite", schema_mode="overwrite")
    manifest_path = os.path.join(store_path, "store.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    manifest["versions"]["faces"] = DeltaTable(path).version()
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)


def test_a_store_without_the_quality_column_keeps_working(samples, tmp_path, capsys):
    from facetag.cli import main

    folder, index, store_path = (str(tmp_path / name) for name in ("photos", "index", "store"))
    os.makedirs(folder)
    shutil.copy(os.path.join(samples, "photos", "obama2.jpg"), folder)
    assert main(["enroll", os.path.join(samples, "gallery"), "--out", index]) == 0
    assert main(["tag", folder, "--index", index, "--out", store_path]) == 0
    fresh = ArchiveStore(store_path).read("faces", ["face_id", "quality"]).column("quality").to_pylist()
    assert len(fresh) == 1 and 0.0 <= fresh[0] <= 1.0
    age_store(store_path)
    store = ArchiveStore(store_path)
    assert "quality" not in store.table("faces").to_pyarrow_dataset().schema.names
    assert store.read("faces", ["face_id", "quality"]).column("quality").to_pylist() == [None]
    assert store.read("faces").schema.field("quality").type == pa.float32()

    # New photos go into the old table: it gains the column, its old rows read as unknown quality.
    shutil.copy(os.path.join(samples, "photos", "astronaut.png"), folder)
    assert main(["tag", folder, "--index", index, "--out", store_path]) == 0
    rows = ArchiveStore(store_path).read("faces", ["path", "quality"]).to_pylist()
    by_photo = {os.path.basename(r["path"]): r["quality"] for r in rows}
    assert by_photo["obama2.jpg"] is None and 0.0 <= by_photo["astronaut.png"] <= 1.0

    # Clustering reads old and new rows; a gate above every quality leaves out only the measured face.
    capsys.readouterr()
    assert main(["cluster", store_path, "--min-quality", "1.01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["faces_too_unsure"] == 1
    results = read_results(ArchiveStore(store_path))
    assert results.min_quality == 1.01
    unsure = [f for f in results.faces if results.too_unsure(f)]
    assert [os.path.basename(f.path) for f in unsure] == ["astronaut.png"]
    sections = page_data(results, str(tmp_path / "review"), store_path, 0.95)["sections"]
    assert [(s["kind"], len(s["faces"])) for s in sections if s["kind"] == "unsure"] == [("unsure", 1)]
