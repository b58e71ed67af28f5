"""The production shape (issue 27): the Beam jobs on real local Flink and Spark clusters whose workers share no
disk with this machine, over photos, gallery and store on a real S3 server, run after run, against in-process.

For each engine `make cluster-up ENGINE=... ISOLATED=1` starts a JobManager and two TaskManagers (or a master
and two workers, each its own JVM), Beam's job server and the SDK worker pool; the TaskManagers / Spark workers
and the pool run in mount namespaces of their own (scripts/cluster.py: their own /tmp, this machine's /tmp and
the checkout's out/ hidden), without the object store's address in their environment: it reaches them only
through the job's options. Everything the jobs read and write is on the S3 server of `make s3-up`
(tests/test_object_store.py's fixture), and every result is compared with the same commands run in-process
over a local copy of the same files.

- Flink: the whole archive loop: enroll; tag (with the progress line); the unchanged re-run; a re-run after
  new photos arrive; `facetag name` then the re-run that re-matches; cluster; `beam_jobs.match --store`;
  `beam_jobs.encode`; review and xmp from the store. Then a run interrupted by SIGINT (its Flink job
  cancelled, the store unchanged, the next run complete).
- Spark: tag, the unchanged re-run, cluster; a job whose workers cannot reach the object store fails in one
  line naming the step, the cause and the log file.
- Neither cluster's logs hold the S3 secret (the workers' credentials come from their own environment).

Slow: about 6 minutes on two cores with the jars fetched (a fresh machine fetches them first: about 1.5
minutes for Flink, 2.5 for Spark). 20 photos: each job's fixed cost on a cluster is 10-40 s however few.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from facetag.archive.store import ArchiveStore
from tests.test_archive_store import tables
from tests.test_object_store import BUCKET, _assert_same, _base, _client, _normalised, _upload, s3  # noqa: F401

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
FACETAG = os.path.join(os.path.dirname(PY), "facetag")
UI = {"flink": "http://127.0.0.1:8081", "spark": "http://127.0.0.1:8080"}
SPARK_APP_UI = "http://127.0.0.1:4040"  # the job server's Spark application (scripts/cluster.py)
GALLERY_PEOPLE, PHOTOS, NEW_PHOTOS = 5, 20, 4
#: The secret the clusters' workers get in their environment; no log may show it.
SECRET = f"facetag-secret-{uuid.uuid4().hex}"


def _get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def files(lfw_dev, tmp_path_factory):
    """Local folders: ``gallery`` (5 people's first photo), ``photos`` (their next 2, and 10 strangers' first)
    and ``new`` (the known people's 4th photos where they have one, and strangers', 4 in all)."""
    if not shutil.which("java"):
        pytest.skip("needs Java 17 (and Maven for the first fetch) to run the local Flink and Spark clusters")
    images = os.path.join(lfw_dev, "images")
    root = tmp_path_factory.mktemp("engines")
    gallery, photos, new = root / "gallery", root / "photos", root / "new"
    photos.mkdir()
    new.mkdir()
    people = sorted(os.listdir(images))
    known = [p for p in people if len(os.listdir(os.path.join(images, p))) >= 3][:GALLERY_PEOPLE]
    for person in known:
        names = sorted(os.listdir(os.path.join(images, person)))
        (gallery / person).mkdir(parents=True)
        shutil.copy(os.path.join(images, person, names[0]), gallery / person)
        for name in names[1:3]:
            shutil.copy(os.path.join(images, person, name), photos)
        for name in names[3:4]:
            shutil.copy(os.path.join(images, person, name), new)
    strangers = [p for p in people if p not in known]
    for person in strangers[:PHOTOS - 2 * len(known)]:
        shutil.copy(os.path.join(images, person, sorted(os.listdir(os.path.join(images, person)))[0]), photos)
    for person in strangers[PHOTOS:PHOTOS + NEW_PHOTOS - len(os.listdir(new))]:
        shutil.copy(os.path.join(images, person, sorted(os.listdir(os.path.join(images, person)))[0]), new)
    return root


def facetag(*cmd, config=None, ok=True):
    """A facetag command (or ``-m beam_jobs...``) through configs/CONFIG-local.yaml (None: in-process);
    ``(exit status, stdout, stderr)``."""
    argv = [FACETAG, *cmd] if cmd[0] != "-m" else [PY, *cmd]
    argv += ["--config", os.path.join(REPO, "configs", f"{config}-local.yaml")] if config else []
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if ok:
        assert proc.returncode == 0, f"{' '.join(argv)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.returncode, proc.stdout, proc.stderr


PROGRESS_LINE = re.compile(r"facetag: ([\d,]+/[\d,]+ photos|listing photos)")


def summaries(text, root):
    """facetag's summary lines without the folder and the seconds."""
    return [re.sub(r"; [\d.]+ s$", "", line.replace(root, "ROOT")) for line in text.splitlines()
            if line.startswith("facetag: ") and not PROGRESS_LINE.match(line)]


class Archive:
    """The loop's paths under one root (``s3://...`` or a local folder), and its commands."""

    def __init__(self, root, config=None):
        self.root, self.config = root, config
        self.gallery, self.photos, self.index = f"{root}/gallery", f"{root}/photos", f"{root}/index"
        self.store, self.encoded = f"{root}/archive", f"{root}/encoded"

    def run(self, *cmd, **kwargs):
        rc, out, err = facetag(*cmd, config=self.config, **kwargs)
        return rc, out, err, summaries(out + err, self.root)

    def tag(self, *extra):
        return self.run("tag", self.photos, "--index", self.index, "--out", self.store, *extra)

    def same_as(self, other):
        _assert_same(self.store, self.photos, other.store, other.photos)

    def face_of(self, photo):
        """The face id of ``photo``'s first face (face ids hash the path, so they differ between stores)."""
        return next(f["face_id"] for f in ArchiveStore(self.store).read("faces", ["face_id", "path", "face_index"])
                    .to_pylist() if f["path"] == f"{self.photos}/{photo}" and f["face_index"] == 0)


def s3_root(s3, name, files, *folders):
    """A fresh prefix of the S3 server with ``folders`` of ``files`` uploaded under it."""
    root = _base(name)
    for folder in folders:
        _upload(str(files / folder), f"{root}/{folder}")
    return root


def add_new_photos(archive, files):
    if archive.root.startswith("s3://"):
        _upload(str(files / "new"), archive.photos)
    else:
        for name in os.listdir(files / "new"):
            shutil.copy(files / "new" / name, archive.photos)


@pytest.fixture(scope="module")
def credentials(s3):
    """The S3 server's settings with a secret of this module's own (the server takes any)."""
    saved = os.environ["AWS_SECRET_ACCESS_KEY"]
    os.environ["AWS_SECRET_ACCESS_KEY"] = SECRET
    yield
    os.environ["AWS_SECRET_ACCESS_KEY"] = saved


@pytest.fixture(scope="module", params=["flink", "spark"])
def cluster(request, credentials):
    """The engine's local cluster, isolated, started with the S3 credentials (not its address) in its environment."""
    engine = request.param
    down = ["make", "-s", "cluster-down", f"ENGINE={engine}", f"PY={PY}"]
    request.addfinalizer(lambda: subprocess.run(down, cwd=REPO, timeout=120))
    up = subprocess.run(["make", "-s", "cluster-up", f"ENGINE={engine}", "ISOLATED=1", f"PY={PY}"], cwd=REPO,
                        capture_output=True, text=True, timeout=1800)
    if up.returncode and "Maven (mvn) is not installed" in up.stderr:
        pytest.skip(f"the {engine} jars are not fetched yet and fetching them needs Maven (mvn)")
    if up.returncode and "needs mount namespaces" in up.stderr:
        pytest.skip(f"isolated workers need mount namespaces: {up.stderr.strip()[-300:]}")
    assert up.returncode == 0, f"make cluster-up ENGINE={engine}:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
    return engine


def engine_jobs(engine):
    """The states of the jobs the engine ran (Flink: one per Beam job; Spark: the jobs of the job server's one
    application, several per Beam job), and how many TaskManagers / workers are registered."""
    if engine == "flink":
        return [j["state"] for j in _get(f"{UI['flink']}/jobs/overview")["jobs"]], len(
            _get(f"{UI['flink']}/taskmanagers")["taskmanagers"])
    workers = _get(f"{UI['spark']}/json/")["aliveworkers"]
    try:
        apps = _get(f"{SPARK_APP_UI}/api/v1/applications")
    except urllib.error.URLError:  # the application starts with the first job
        apps = []
    return [j["status"] for a in apps for j in _get(f"{SPARK_APP_UI}/api/v1/applications/{a['id']}/jobs")], workers


def read_encoded(root):
    import pyarrow.parquet as pq

    from facetag.io.files import filesystems

    paths = [m.path for m in filesystems().match([f"{root}/faces-*.parquet"])[0].metadata_list]
    faces = []
    for path in paths:
        with filesystems().open(path) as f:
            faces += pq.read_table(f).to_pylist()
    return sorted((f["source"].rsplit("/", 1)[1], f["face_index"], tuple(f["box"]), tuple(f["encoding"]))
                  for f in faces)


def assert_no_secret_in_logs(engine):
    """No file the cluster wrote (its components' logs, its nodes' disks) holds the secret."""
    folder = os.path.join(REPO, "out", "cluster", engine)
    for where, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(where, name), "rb") as f:
                assert SECRET.encode() not in f.read(), os.path.join(where, name)


def test_the_archive_loop_on_isolated_workers_over_s3_equals_in_process(cluster, s3, files, tmp_path):
    local = tmp_path / "local"
    shutil.copytree(files / "gallery", local / "gallery")
    shutil.copytree(files / "photos", local / "photos")
    reference, remote = Archive(str(local)), Archive(s3_root(s3, cluster, files, "gallery", "photos"), cluster)
    before, _ = engine_jobs(cluster)
    jobs = 0

    def both(step):
        """``step(archive)`` in-process and on the cluster; the cluster's ``(rc, out, err, summaries)``."""
        nonlocal jobs
        want, got = step(reference), step(remote)
        assert got[3] == want[3], (got[3], want[3])
        jobs += 1
        return got

    if cluster == "flink":
        both(lambda a: a.run("enroll", a.gallery, "--out", a.index))
    else:  # Spark tags with a gallery enrolled in-process on the S3 server
        for archive in (reference, remote):
            facetag("enroll", archive.gallery, "--out", archive.index)
    _, _, err, lines = both(lambda a: a.tag("--progress"))
    assert f"facetag: {PHOTOS} photos listed: 0 unchanged, {PHOTOS} new" in lines[0]
    assert re.search(r"facetag: [1-9][\d,]*/[\d,]+ photos \(", err), err[-2000:]  # progress from the workers
    remote.same_as(reference)
    _, _, _, lines = both(lambda a: a.tag())
    assert f"facetag: {PHOTOS} photos listed: {PHOTOS} unchanged, 0 new" in lines[0]
    remote.same_as(reference)

    if cluster == "flink":
        add_new_photos(reference, files)
        add_new_photos(remote, files)
        _, _, _, lines = both(lambda a: a.tag())
        assert f"{PHOTOS + NEW_PHOTOS} photos listed: {PHOTOS} unchanged, {NEW_PHOTOS} new" in lines[0]
        remote.same_as(reference)
        stranger = sorted(os.listdir(files / "photos"))[-1]
        for archive in (reference, remote):
            facetag("name", archive.store, "--face", archive.face_of(stranger), "--as", "Someone Named")
        _, _, _, lines = both(lambda a: a.tag())
        assert "every stored face was matched again" in lines[0]
        remote.same_as(reference)
        assert (stranger, 0, "Someone Named") in _normalised(remote.store, remote.photos)["matches"]

    both(lambda a: a.run("cluster", a.store))
    remote.same_as(reference)
    if cluster == "flink":
        both(lambda a: a.run("-m", "beam_jobs.match", "--store", a.store, "--index", a.index))
        remote.same_as(reference)
        both(lambda a: a.run("-m", "beam_jobs.encode", "--input", a.photos, "--output", a.encoded))
        got, want = read_encoded(remote.encoded), read_encoded(reference.encoded)
        assert [g[:3] for g in got] == [w[:3] for w in want]
        assert max(abs(x - y) for g, w in zip(got, want) for x, y in zip(g[3], w[3])) < 1e-4
        for archive, name in ((reference, "local"), (remote, "remote")):
            review = json.loads(facetag("review", archive.store, "--out", str(tmp_path / f"review-{name}"),
                                        "--json")[1])
            xmp = json.loads(facetag("xmp", archive.store, "--out", str(tmp_path / f"xmp-{name}"), "--json")[1])
            archive.pages = ({k: review[k] for k in ("photos", "faces", "identified", "unknown", "clusters")},
                             (xmp["written"], xmp["regions"]))
        assert remote.pages == reference.pages and remote.pages[1][0] > 0

    # The engine ran every job, on two TaskManagers / workers; no log holds the secret, and the workers'
    # logs show that the job's options reached them (Beam's SDK workers log them when they start).
    states, workers = engine_jobs(cluster)
    assert workers == 2
    if cluster == "flink":
        assert states.count("FINISHED") - before.count("FINISHED") == jobs, states
        logs = "".join(open(os.path.join(REPO, "out", "cluster", "flink", f"taskmanager-{i}.log")).read()
                       for i in (1, 2))
        assert "Pipeline_options" in logs and "s3_endpoint_url" in logs
    else:
        assert len(states) > len(before) and set(states) == {"SUCCEEDED"}, states
    assert_no_secret_in_logs(cluster)


def test_an_interrupted_run_cancels_its_job_and_the_next_run_completes(cluster, s3, files, tmp_path):
    """SIGINT of `facetag tag` while Flink runs its job: the Flink job is CANCELED within 30 s, the store stays
    at the version an earlier run committed, and the next run completes the work (equal to in-process)."""
    if cluster != "flink":
        pytest.skip("the interrupt test runs on Flink; Spark's is measured in bench/RESULTS.md (issue 27)")
    shutil.copytree(files / "gallery", tmp_path / "gallery")
    shutil.copytree(files / "photos", tmp_path / "photos")
    reference, remote = Archive(str(tmp_path)), Archive(s3_root(s3, "interrupted", files, "gallery", "photos"),
                                                        "flink")
    for archive in (reference, remote):
        facetag("enroll", archive.gallery, "--out", archive.index)
    reference.tag()
    strangers = f"{remote.photos}/*_0001.jpg"  # the 10 strangers' photos; the known people's are _0002, _0003
    facetag("tag", strangers, "--index", remote.index, "--out", remote.store)  # the previous version, in-process
    committed, manifest = tables(remote.store), ArchiveStore(remote.store).manifest()
    known = {j["jid"] for j in _get(f"{UI['flink']}/jobs/overview")["jobs"]}

    argv = [FACETAG, "tag", remote.photos, "--index", remote.index, "--out", remote.store, "--config",
            os.path.join(REPO, "configs", "flink-local.yaml")]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, running = time.monotonic() + 180, None
    while running is None and time.monotonic() < deadline and proc.poll() is None:
        running = next((j["jid"] for j in _get(f"{UI['flink']}/jobs/overview")["jobs"]
                        if j["jid"] not in known and j["state"] == "RUNNING"), None)
        time.sleep(0.25)
    assert running, f"Flink never ran the job:\n{proc.communicate(timeout=600)[1][-3000:]}"
    interrupted = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert re.fullmatch(r"facetag: interrupted; the job \S+ was cancelled on Flink \(CANCELED\)\n", err), err
    state = next(j["state"] for j in _get(f"{UI['flink']}/jobs/overview")["jobs"] if j["jid"] == running)
    assert state == "CANCELED" and time.monotonic() - interrupted < 30

    assert ArchiveStore(remote.store).manifest() == manifest
    assert tables(remote.store) == committed
    _, _, _, lines = remote.tag()
    assert f"{PHOTOS} photos listed: {PHOTOS - 2 * GALLERY_PEOPLE} unchanged, {2 * GALLERY_PEOPLE} new" in lines[0]
    remote.same_as(reference)


def test_a_worker_that_cannot_reach_the_store_fails_the_job_in_one_line(cluster, s3, files):
    """The workers are given an object store address where nothing listens: the job fails within a minute
    (Beam's own S3 calls would retry for many minutes), stderr is one line naming the step and the cause, and
    the full trace is in the log file it names; the store is unchanged."""
    if cluster != "spark":
        pytest.skip("one engine shows it (Spark, whose job server reports a worker's error as Flink's does)")
    remote = Archive(s3_root(s3, "unreachable", files, "gallery", "photos"), "spark")
    facetag("enroll", remote.gallery, "--out", remote.index)
    started = time.monotonic()
    rc, _, err, _ = remote.run("tag", remote.photos, "--index", remote.index, "--out", remote.store,
                               "--s3_endpoint_url=http://127.0.0.1:9", ok=False)
    assert rc == 1 and time.monotonic() - started < 120
    match = re.fullmatch(r"facetag: error: (.+?): cannot reach s3://facetag \(at http://127.0.0.1:9\) from .+ "
                         r"\(the full trace is in (\S+)\)\n", err)
    assert match, err
    with open(match.group(2)) as log:
        assert "Traceback" in log.read()
    assert not ArchiveStore(remote.store).exists()
