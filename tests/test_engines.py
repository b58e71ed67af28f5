"""The Beam jobs on a real local Flink cluster and a real local Spark cluster (issue 21), against in-process.

For each engine: `make cluster-up ENGINE=...` (a JobManager and two TaskManagers, or a master and two workers,
each its own JVM, Beam's job server, the SDK worker pool), then enroll + tag + a re-run + cluster over 60
lfw_dev photos through configs/ENGINE-local.yaml, compared with the same jobs in-process; the engine's REST
endpoint must show the jobs finished and two TaskManagers / workers registered. `make cluster-down` always runs.

Slow: about 2 minutes of cluster start and fetch checks plus 4 jobs of 1-2 minutes each per engine on two
cores (each Beam stage starts its own SDK worker processes).
"""

import json
import os
import shutil
import subprocess
import sys
import urllib.request

import pytest

from tests.test_archive_store import assert_same_store

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
FACETAG = os.path.join(os.path.dirname(PY), "facetag")
UI = {"flink": "http://127.0.0.1:8081", "spark": "http://127.0.0.1:8080"}
GALLERY_PEOPLE, PHOTOS = 10, 60


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def photos(lfw_dev, tmp_path_factory):
    """10 people's first photo as the gallery; their next 3 and 30 strangers' first as the photos (symlinks)."""
    if not shutil.which("java"):
        pytest.skip("needs Java 17 (and Maven for the first fetch) to run the local Flink and Spark clusters")
    images = os.path.join(lfw_dev, "images")
    root = tmp_path_factory.mktemp("engines")
    gallery, folder = root / "gallery", root / "photos"
    folder.mkdir()
    people = sorted(os.listdir(images))
    known = [p for p in people if len(os.listdir(os.path.join(images, p))) >= 4][:GALLERY_PEOPLE]
    for person in known:
        files = sorted(os.listdir(os.path.join(images, person)))
        (gallery / person).mkdir(parents=True)
        os.symlink(os.path.join(images, person, files[0]), gallery / person / files[0])
        for name in files[1:4]:
            os.symlink(os.path.join(images, person, name), folder / name)
    strangers = [p for p in people if p not in known][:PHOTOS - 3 * len(known)]
    for person in strangers:
        name = sorted(os.listdir(os.path.join(images, person)))[0]
        os.symlink(os.path.join(images, person, name), folder / name)
    return str(gallery), str(folder), root


def facetag(*args):
    proc = subprocess.run([FACETAG, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, f"facetag {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout + proc.stderr


def run_all(gallery, folder, out, config=()):
    index, store = str(out / "index"), str(out / "store")
    logs = {"enroll": facetag("enroll", gallery, "--out", index, *config),
            "tag": facetag("tag", folder, "--index", index, "--out", store, *config),
            "re-run": facetag("tag", folder, "--index", index, "--out", store, *config),
            "cluster": facetag("cluster", store, *config)}
    return store, logs


@pytest.fixture(scope="module")
def in_process(photos):
    gallery, folder, root = photos
    return run_all(gallery, folder, root / "in-process")


@pytest.fixture(params=["flink", "spark"])
def cluster(request, photos):
    engine = request.param
    down = ["make", "-s", "cluster-down", f"ENGINE={engine}", f"PY={PY}"]
    request.addfinalizer(lambda: subprocess.run(down, cwd=REPO, timeout=120))
    up = subprocess.run(["make", "-s", "cluster-up", f"ENGINE={engine}", f"PY={PY}"], cwd=REPO,
                        capture_output=True, text=True, timeout=1800)
    assert up.returncode == 0, f"make cluster-up ENGINE={engine}:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
    return engine


def test_jobs_on_a_local_cluster_equal_in_process(cluster, photos, in_process):
    gallery, folder, root = photos
    store, logs = run_all(gallery, folder, root / cluster, ["--config", os.path.join(REPO, "configs",
                                                                                     f"{cluster}-local.yaml")])
    reference, reference_logs = in_process
    assert_same_store(store, reference)
    with open(os.path.join(store, "clusters.csv")) as a, open(os.path.join(reference, "clusters.csv")) as b:
        assert sorted(a.read().splitlines()) == sorted(b.read().splitlines())
    # Beam's counters reached facetag's summary line through the job server.
    assert "10 images read: 10 with faces" in logs["enroll"]
    assert f"{PHOTOS} new" in logs["tag"] and f"{PHOTOS} unchanged, 0 new" in logs["re-run"]
    assert "no counters" not in "".join(logs.values())

    if cluster == "flink":
        assert len(_get(f"{UI['flink']}/taskmanagers")["taskmanagers"]) == 2
        jobs = _get(f"{UI['flink']}/jobs/overview")["jobs"]
        assert len(jobs) == 4 and {j["state"] for j in jobs} == {"FINISHED"}, jobs
    else:
        state = _get(f"{UI['spark']}/json/")
        assert state["aliveworkers"] == 2
        assert len(state["completedapps"]) == 4 and {a["state"] for a in state["completedapps"]} == {"FINISHED"}
