"""The same encode job gives the same results in-process, on 2 worker processes, and via the portable job API.

The portable case starts Beam's local job service and an SDK worker pool as
separate processes and submits through PortableRunner: the path a Flink or
Spark cluster takes.
"""

import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from beam_jobs import encode
from tests.beam_fixtures import make_archive
from tests.test_beam_jobs import MODEL, read_outcomes

KEEP = ("obama2.jpg", "two_people.jpg", "sky.png", "empty.jpg")


@pytest.fixture(scope="module")
def small_archive(samples, tmp_path_factory):
    full = str(tmp_path_factory.mktemp("full"))
    make_archive(samples, full)
    folder = str(tmp_path_factory.mktemp("small"))
    for name in KEEP:
        shutil.copy(os.path.join(full, name), folder)
    return folder


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _wait_for_port(port, proc, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("localhost", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listens on port {port} after {seconds} s")


@pytest.fixture(scope="module")
def portable_services():
    """Beam's local job service and an external SDK worker pool, each its own process."""
    job_port, worker_port = _free_port(), _free_port()
    # The pool starts each SDK worker as `python -c ...`: that python must be this environment's.
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    procs = [
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                          f"--service_port={worker_port}"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                          f"--port={job_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        _wait_for_port(worker_port, procs[0])
        _wait_for_port(job_port, procs[1])
        yield ["--runner=PortableRunner", f"--job_endpoint=localhost:{job_port}",
               "--environment_type=EXTERNAL", f"--environment_config=localhost:{worker_port}"]
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)


def _run(folder, out, runner_args):
    encode.run(["--input", folder, "--output", out, *MODEL, *runner_args])
    faces, no_face, failed = read_outcomes(out)
    by_face = {(os.path.basename(f["source"]), f["face_index"]): f for f in faces}
    return by_face, sorted(os.path.basename(r["source"]) for r in no_face), sorted(
        os.path.basename(r["source"]) for r in failed)


def test_same_results_on_every_runner(small_archive, tmp_path, portable_services):
    runs = {
        "in-process": [],
        "2 worker processes": ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        "portable job API": portable_services,
    }
    results = {name: _run(small_archive, str(tmp_path / str(i)), args) for i, (name, args) in enumerate(runs.items())}
    reference_faces, reference_no_face, reference_failed = results["in-process"]
    assert sorted(reference_faces) == [("obama2.jpg", 0), ("two_people.jpg", 0), ("two_people.jpg", 1)]
    assert reference_no_face == ["sky.png"] and reference_failed == ["empty.jpg"]
    for name, (faces, no_face, failed) in results.items():
        assert sorted(faces) == sorted(reference_faces), name
        assert (no_face, failed) == (reference_no_face, reference_failed), name
        for key, face in faces.items():
            assert face["box"] == reference_faces[key]["box"], name
            np.testing.assert_allclose(face["encoding"], reference_faces[key]["encoding"], atol=1e-4, err_msg=name)


def test_remote_workers_get_the_object_store_address_but_never_a_secret_as_an_option(monkeypatch):
    from facetag.errors import FaceTagError
    from facetag.pipeline.options import pipeline_options

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://store.example:9000")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    portable = pipeline_options(None, ["--runner=PortableRunner", "--job_endpoint=localhost:1"]).get_all_options()
    assert (portable["s3_endpoint_url"], portable["s3_region_name"]) == ("http://store.example:9000", "eu-west-1")
    given = pipeline_options(None, ["--runner=PortableRunner", "--s3_endpoint_url=http://other:1"]).get_all_options()
    assert given["s3_endpoint_url"] == "http://other:1"
    assert pipeline_options(None, []).get_all_options()["s3_endpoint_url"] is None  # in-process: the environment
    with pytest.raises(FaceTagError, match="--s3_secret_access_key: Beam's workers write their pipeline options"):
        pipeline_options(None, ["--runner=PortableRunner", "--s3_secret_access_key=hunter2"])
    pipeline_options(None, ["--s3_secret_access_key=hunter2"])  # in-process: nothing is logged


def test_a_failed_job_is_told_in_one_line_with_its_step_and_cause():
    from facetag.pipeline.running import describe

    portable = RuntimeError(
        "Pipeline BeamApp-x failed in state FAILED: java.lang.RuntimeException: Error received from SDK harness for "
        "instruction 12: Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n    raise\n"
        "botocore.exceptions.NoCredentialsError: Unable to locate credentials [while running 'Read stored photos']\n"
        "\tat org.apache.beam.Foo.bar(Foo.java:1)")
    assert describe(portable) == ("Read stored photos",
                                  "botocore.exceptions.NoCredentialsError: Unable to locate credentials")
    assert describe(ValueError("bad value [while running 'Update the archive/Detect']")) == (
        "Update the archive/Detect", "ValueError: bad value")
