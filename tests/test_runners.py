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
