"""The Beam jobs, run for real: every photo in exactly one outcome, enroll + tag, model checks, runners."""

import glob
import json
import os

import pyarrow.parquet as pq
import pytest

from beam_jobs import encode, enroll, tag
from facetag.archive.store import ArchiveStore
from facetag.errors import FaceTagError, ModelMismatchError
from facetag.pipeline.records import MODEL_ID_KEY
from tests.beam_fixtures import make_archive, make_tfrecord

MODEL = ["--model", "facenet-512"]  # the smaller model keeps these tests quick; both share the code path


def read_outcomes(out):
    faces = pq.read_table(glob.glob(os.path.join(out, "faces-*.parquet"))).to_pylist()
    lines = {}
    for name in ("no_face", "failed"):
        with open(os.path.join(out, f"{name}.jsonl")) as f:
            lines[name] = [json.loads(line) for line in f if line.strip()]
    return faces, lines["no_face"], lines["failed"]


@pytest.fixture(scope="module")
def archive(samples, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("archive"))
    return folder, make_archive(samples, folder)


@pytest.fixture(scope="module")
def encoded(archive, tmp_path_factory):
    folder, _ = archive
    out = str(tmp_path_factory.mktemp("encoded"))
    result = encode.run(["--input", folder, "--output", out, *MODEL])
    return out, result


def test_every_photo_ends_in_exactly_one_outcome(archive, encoded):
    folder, expected = archive
    out, _ = encoded
    faces, no_face, failed = read_outcomes(out)
    sources_with_faces = {f["source"] for f in faces}
    outcome = {}
    for name in expected:
        path = os.path.join(folder, name)
        kinds = [k for k, hit in (("faces", path in sources_with_faces),
                                  ("no_face", path in {r["source"] for r in no_face}),
                                  ("failed", path in {r["source"] for r in failed})) if hit]
        assert len(kinds) == 1, f"{name} ended in {kinds}"
        outcome[name] = kinds[0]
    assert outcome == {name: e.split(":")[0] for name, e in expected.items()}
    assert len(sources_with_faces) + len(no_face) + len(failed) == len(expected)


def test_several_faces_give_a_row_each(archive, encoded):
    folder, _ = archive
    faces, _, _ = read_outcomes(encoded[0])
    rows = [f for f in faces if f["source"] == os.path.join(folder, "two_people.jpg")]
    assert sorted(f["face_index"] for f in rows) == [0, 1]
    assert len({f["face_id"] for f in faces}) == len(faces)


def test_failures_say_why(archive, encoded):
    folder, _ = archive
    _, _, failed = read_outcomes(encoded[0])
    reasons = {os.path.basename(r["source"]): r["reason"] for r in failed}
    assert "empty" in reasons["empty.jpg"]
    assert "truncated" in reasons["truncated.jpg"]
    assert "not an image" in reasons["notes.txt"]


def test_parquet_carries_the_model_and_fixed_size_encodings(encoded):
    from facetag.vision.models import describe_model

    path = glob.glob(os.path.join(encoded[0], "faces-*.parquet"))[0]
    schema = pq.read_schema(path)
    assert schema.metadata[MODEL_ID_KEY].decode() == describe_model("facenet-512")[0]
    assert schema.field("encoding").type.list_size == 512


def test_counters_add_up(archive, encoded):
    from facetag.pipeline.options import counters

    _, expected = archive
    c = counters(encoded[1])
    assert c["images_read"] == len(expected)
    assert c["images_with_faces"] + c["images_without_face"] + c["images_failed"] == len(expected)
    assert c["faces_found"] == sum(int(e.split(":")[1]) if ":" in e else e == "faces" for e in expected.values())


def test_tfrecord_shards(samples, tmp_path):
    shard = make_tfrecord(samples, str(tmp_path / "photos.tfrecord"))
    out = str(tmp_path / "out")
    encode.run(["--input", shard, "--output", out, *MODEL])
    faces, no_face, failed = read_outcomes(out)
    assert sorted(f["source"] for f in faces) == ["shard/biden", "shard/obama2"]
    assert len(failed) == 1 and "tf.train.Example" in failed[0]["reason"] and not no_face


@pytest.fixture(scope="module")
def index_dir(samples, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("index"))
    enroll.run(["--gallery", os.path.join(samples, "gallery"), "--out", out, *MODEL])
    return out


def test_enroll_writes_an_index_with_its_metadata(index_dir):
    with open(os.path.join(index_dir, "index.json")) as f:
        meta = json.load(f)
    assert meta["items"] == 3 and meta["identities"] == 2 and meta["metric"] == "euclidean"
    assert meta["model_id"].startswith("facenet-512:")
    assert set(meta["checksums"]) == {"faces.annoy", "items.parquet"}


def test_tag_names_obama_and_calls_the_astronaut_unknown(archive, index_dir, tmp_path):
    folder, _ = archive
    out = str(tmp_path / "tagged")
    tag.run(["--input", os.path.join(folder, "obama2.jpg"), "--input", os.path.join(folder, "astronaut.png"),
             "--index", index_dir, "--store", out, *MODEL])
    with open(os.path.join(out, "matches.csv")) as f:
        header, *rows = f.read().splitlines()
    assert header == "source,face,box,identity,distance"
    identity = {os.path.basename(r.split(",")[0]): r.split(",")[3] for r in rows}
    assert identity == {"obama2.jpg": "obama", "astronaut.png": "unknown"}
    matches = ArchiveStore(out).read("matches").to_pylist()
    assert all(m["candidates"][0]["distance"] == pytest.approx(m["distance"]) for m in matches)


def test_a_model_mismatch_stops_the_job_before_any_work(index_dir, archive, tmp_path):
    folder, _ = archive
    out = str(tmp_path / "never")
    with pytest.raises(ModelMismatchError, match="pass --model facenet-512 .the model that made them., or re-enrol"):
        tag.run(["--input", folder, "--index", index_dir, "--store", out, "--model", "facetag-128"])
    assert not os.path.exists(out)
    with pytest.raises(ModelMismatchError, match="pass --model facenet-512 "):  # the float32 encoder's ids differ
        tag.run(["--input", folder, "--index", index_dir, "--store", out, "--model", "facenet-512-fp32"])


def test_index_refuses_parquet_of_mixed_models(encoded, tmp_path):
    import pyarrow as pa

    from beam_jobs import index

    src = glob.glob(os.path.join(encoded[0], "faces-*.parquet"))[0]
    table = pq.read_table(src)
    os.makedirs(tmp_path / "mixed")
    pq.write_table(table, str(tmp_path / "mixed" / "a.parquet"))
    other = table.replace_schema_metadata({**table.schema.metadata, MODEL_ID_KEY: b"facetag-128:x:y:z"})
    pq.write_table(pa.table(other), str(tmp_path / "mixed" / "b.parquet"))
    with pytest.raises(ModelMismatchError, match="different models"):
        index.run(["--faces", str(tmp_path / "mixed" / "*.parquet"), "--out", str(tmp_path / "idx")])


def test_not_an_index(tmp_path, archive):
    with pytest.raises(FaceTagError, match="not a facetag index"):
        tag.run(["--input", archive[0], "--index", str(tmp_path), "--store", str(tmp_path / "o"), *MODEL])


def test_an_input_that_matches_nothing_is_refused_before_the_job(tmp_path):
    with pytest.raises(FaceTagError, match="no photo matches .*nowhere"):
        encode.run(["--input", str(tmp_path / "nowhere" / "*.jpg"), "--output", str(tmp_path / "o"), *MODEL])
    assert not os.path.exists(tmp_path / "o")


def test_local_worker_processes_share_the_cores():
    from apache_beam.options.pipeline_options import PipelineOptions

    from facetag.pipeline.options import model_threads

    two = PipelineOptions(["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    assert model_threads(PipelineOptions([])) == 0  # one process: every core
    assert model_threads(two) == max(1, os.cpu_count() // 2)
    assert model_threads(two, requested=3) == 3


def test_config_files_become_pipeline_options(tmp_path):
    from facetag.pipeline.options import pipeline_options

    config = tmp_path / "c.yaml"
    config.write_text("runner: FnApiRunner\ndirect_num_workers: 2\ndirect_running_mode: multi_processing\n")
    options = pipeline_options(str(config), ["--direct_num_workers=1"]).get_all_options()
    assert options["runner"] == "FnApiRunner" and options["direct_num_workers"] == 1
    assert pipeline_options(None, []).get_all_options()["runner"] == "FnApiRunner"
    with pytest.raises(FaceTagError, match="cannot read config"):
        pipeline_options(str(tmp_path / "missing.yaml"), [])


def test_encode_refuses_a_folder_holding_an_earlier_run(archive, encoded):
    with pytest.raises(FaceTagError, match="already holds the results of an earlier run"):
        encode.run(["--input", archive[0], "--output", encoded[0], *MODEL])


def test_facetag_256_encodes_in_the_job_as_the_library_does(samples, tmp_path):
    """The joined model needs each face's aligned chip as well as its crop: the job carries both to the encoder."""
    import numpy as np

    from facetag import find_faces
    from facetag.vision.models import describe_model

    photo = sorted(glob.glob(os.path.join(samples, "**", "*.jp*g"), recursive=True))[0]
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "portrait.jpg").write_bytes(open(photo, "rb").read())
    out = str(tmp_path / "out")
    encode.run(["--input", str(folder), "--output", out, "--model", "facetag-256"])
    faces, _, _ = read_outcomes(out)
    schema = pq.read_schema(glob.glob(os.path.join(out, "faces-*.parquet"))[0])
    assert schema.metadata[MODEL_ID_KEY].decode() == describe_model("facetag-256")[0]
    expected = find_faces(str(folder / "portrait.jpg"), model="facetag-256")
    assert len(faces) == len(expected) > 0
    for row, face in zip(sorted(faces, key=lambda f: f["face_index"]), expected):
        assert len(row["encoding"]) == 256
        np.testing.assert_allclose(row["encoding"], face.encoding, atol=1e-5)
