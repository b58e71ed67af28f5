"""The archive on object storage (issue 22), against a real S3-API server in its own process.

The server is scripts/s3_server.py (moto's S3 server, the one of `make s3-up`), started once for the
module in a folder of its own and stopped after it; the tests skip, with the reason, only where it
cannot start. facetag reaches it through the standard AWS_* variables alone.

What is proved here: the server's conditional writes, delta-rs's commits and Beam's FileSystems on it;
facetag.io.objects' compare-and-swap and the store's lease; every command on s3:// giving the tables a
local store of the same photos gets (enroll, tag, unchanged re-run, copy/move/remove, re-match, cluster,
name); two `facetag tag` processes on one store at once, five times; a run killed mid-commit.
"""

import datetime
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "scripts", "s3_server.py")
BUCKET = "facetag"
LEASE_SECONDS = "4"  # the lease of the subprocesses here: a killed run frees the store within seconds


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """The local S3 server's settings (``AWS_*``), set in this process's environment while the module runs."""
    folder = str(tmp_path_factory.mktemp("s3"))
    try:
        out = subprocess.run([sys.executable, SERVER, "up", "--dir", folder, "--port", "0", "--bucket", BUCKET],
                             capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("the local S3 server did not start within 120 s")
    if out.returncode != 0:
        pytest.skip(f"the local S3 server cannot start here: {(out.stderr or out.stdout).strip()[-400:]}")
    settings = dict(line.removeprefix("export ").split("=", 1) for line in out.stdout.splitlines())
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield settings
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        subprocess.run([sys.executable, SERVER, "down", "--dir", folder], timeout=60)


def _client():
    import boto3

    return boto3.client("s3")


def _status(call):
    from botocore.exceptions import ClientError

    try:
        call()
        return 200
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]


def _base(name):
    """A fresh prefix of the bucket, as an s3:// URI."""
    return f"s3://{BUCKET}/{name}-{uuid.uuid4().hex[:8]}"


def _upload(local_folder, uri):
    c = _client()
    prefix = uri.removeprefix(f"s3://{BUCKET}/")
    for folder, _, names in os.walk(local_folder):
        for name in names:
            path = os.path.join(folder, name)
            c.upload_file(path, BUCKET, f"{prefix}/{os.path.relpath(path, local_folder)}")


def _server_stats(s3):
    with urllib.request.urlopen(f"{s3['AWS_ENDPOINT_URL']}/_facetag_s3/stats", timeout=10) as r:
        return json.load(r)


def test_server_has_conditional_writes_and_listing_metadata(s3):
    c = _client()
    key = f"probe/{uuid.uuid4().hex}"
    assert _status(lambda: c.put_object(Bucket=BUCKET, Key=key, Body=b"a", IfNoneMatch="*")) == 200
    assert _status(lambda: c.put_object(Bucket=BUCKET, Key=key, Body=b"b", IfNoneMatch="*")) == 412
    etag = c.head_object(Bucket=BUCKET, Key=key)["ETag"]
    assert _status(lambda: c.put_object(Bucket=BUCKET, Key=key, Body=b"c", IfMatch='"stale"')) == 412
    assert _status(lambda: c.put_object(Bucket=BUCKET, Key=key, Body=b"d", IfMatch=etag)) == 200
    assert _status(lambda: c.put_object(Bucket=BUCKET, Key=key, Body=b"e", IfMatch=etag)) == 412
    assert c.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"d"
    listed = c.list_objects_v2(Bucket=BUCKET, Prefix=key)["Contents"][0]
    assert listed["Size"] == 1 and listed["ETag"] == c.head_object(Bucket=BUCKET, Key=key)["ETag"]
    assert listed["LastModified"] is not None


def _append(args):
    table, proc, k = args
    import pyarrow as pa
    from deltalake import CommitProperties, write_deltalake

    for i in range(k):
        write_deltalake(table, pa.table({"proc": [proc], "i": [i]}), mode="append",
                        commit_properties=CommitProperties(max_commit_retries=100))


def test_delta_commits_from_two_processes_are_all_kept(s3):
    """delta-rs commits each log entry with a put-if-absent, so concurrent appends all land, once."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    table = _base("delta")
    write_deltalake(table, pa.table({"proc": pa.array([], pa.int64()), "i": pa.array([], pa.int64())}))
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_append, [(table, p, 6) for p in range(2)])
    dt = DeltaTable(table)
    rows = dt.to_pyarrow_table()
    assert sorted(zip(rows["proc"].to_pylist(), rows["i"].to_pylist())) == [(p, i) for p in range(2) for i in range(6)]
    assert dt.version() == 12


def test_concurrent_merges_conflict_with_a_clear_error(s3):
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake
    from deltalake.exceptions import CommitFailedError

    table = _base("merge")
    write_deltalake(table, pa.table({"key": [1, 2], "v": [0, 0]}))
    first, second = DeltaTable(table), DeltaTable(table)  # both read version 0
    for dt, v in ((first, 1), (second, 2)):
        merge = dt.merge(pa.table({"key": [1, 2], "v": [v, v]}), "t.key = s.key", source_alias="s", target_alias="t")
        if v == 1:
            merge.when_matched_update_all().execute()
        else:
            with pytest.raises(CommitFailedError, match="concurrent"):
                merge.when_matched_update_all().execute()
    assert DeltaTable(table).to_pyarrow_table()["v"].to_pylist() == [1, 1]


def test_files_on_s3_from_the_environment_alone(s3):
    from facetag.io.files import delete_tree, filesystems, read_bytes, write_atomically
    from facetag.io.listing import list_paths

    base = _base("files")
    write_atomically(f"{base}/a/one.jpg", b"x" * 100)
    write_atomically(f"{base}/ab/two.jpg", b"y")
    (listed,) = list_paths(f"{base}/a")  # a folder named without its "/": its objects, not ab/'s
    assert (listed.path, listed.size) == (f"{base}/a/one.jpg", 100) and listed.mtime > 0
    assert read_bytes(f"{base}/a/one.jpg") == b"x" * 100
    with pytest.raises(FileNotFoundError):
        read_bytes(f"{base}/a/none.jpg")
    delete_tree(f"{base}/a")
    delete_tree(f"{base}/nothing-here")
    assert [m.path for m in filesystems().match([f"{base}/**"])[0].metadata_list] == [f"{base}/ab/two.jpg"]


@pytest.mark.parametrize("where", ["s3", "local"])
def test_compare_and_swap(s3, tmp_path, where):
    from facetag.io.objects import Cell, Conflict

    url = f"{_base('cas')}/store.json" if where == "s3" else str(tmp_path / "store.json")
    a, b = Cell(url), Cell(url)
    assert a.read() == (None, None)
    version = a.create(b"1")
    with pytest.raises(Conflict):
        b.create(b"2")  # created meanwhile
    data, read_version = b.read()
    assert data == b"1" and read_version == version
    b.replace(b"2", read_version)
    with pytest.raises(Conflict):
        a.replace(b"3", version)  # changed meanwhile
    assert a.read()[0] == b"2"
    if where == "local":
        assert sorted(os.listdir(tmp_path)) == ["store.json"]  # no temporary or guard file left


def test_the_lease_of_a_remote_store(s3):
    from facetag.archive import lock
    from facetag.archive.lock import LeaseLostError, StoreBusyError, StoreLock

    store = _base("lease")
    holder = StoreLock(store)
    with holder:
        with pytest.raises(StoreBusyError, match=r"another facetag run is writing the store s3://.* \(.* pid "
                                                 rf"{os.getpid()}, since .*\); its lease expires at "):
            StoreLock(store).__enter__()
        holder.check()
    with StoreLock(store):  # released: taken again at once
        pass

    # A holder that stops renewing (killed, or stalled) loses the store once its lease has expired.
    stalled = lock._Lease(f"{store}/{lock.LEASE_FILE}", store, ttl=1.2)
    stalled.acquire()
    stalled._stop.set()
    stalled._thread.join()
    expires = datetime.datetime.fromisoformat(json.loads(stalled.cell.read()[0])["expires"])
    time.sleep(max(0.0, (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds())
               + lock.CLOCK_MARGIN_SECONDS + 0.1)
    with StoreLock(store) as taker:
        with pytest.raises(LeaseLostError, match="lost its lease"):
            stalled.renew()
        stalled.release()  # leaves the taker's lease alone
        with pytest.raises(StoreBusyError):
            StoreLock(store).__enter__()
        taker.check()


# The archive on s3:// against a local store of the same photos.

def _normalised(store_path, photos_root):
    """The store's rows with photo paths relative to ``photos_root`` and face ids by (path, face index)."""
    from facetag.archive.store import ArchiveStore

    store = ArchiveStore(store_path)
    rel = lambda path: path.removeprefix(photos_root.rstrip("/") + "/")  # noqa: E731
    photos = sorted((rel(p["path"]), p["size"], p["outcome"], p["faces"], p["sha256"]) for p in
                    store.read("photos").to_pylist())
    faces = sorted(store.read("faces").to_pylist(), key=lambda f: (rel(f["path"]), f["face_index"]))
    face_key = {f["face_id"]: (rel(f["path"]), f["face_index"]) for f in faces}
    matches = sorted((rel(m["path"]), m["face_index"], m["identity"]) for m in store.read("matches").to_pylist())
    groups = {}  # cluster ids are labels given in a run's order: compare who is grouped with whom
    for c in store.read("clusters").to_pylist() if store.version("clusters") is not None else []:
        groups.setdefault(c["cluster_id"] if c["cluster_id"] is not None else c["face_id"], []).append(
            face_key[c["face_id"]])
    clusters = sorted(sorted(group) for group in groups.values())
    return {"photos": photos, "faces": [(rel(f["path"]), f["face_index"], f["box"]) for f in faces],
            "encodings": np.array([f["encoding"] for f in faces]), "matches": matches, "clusters": clusters,
            "labels": sorted((face_key.get(r["face_id"]), r["name"], r["verdict"])
                             for r in store.read("labels").to_pylist()) if store.version("labels") else []}


def _assert_same(s3_store, s3_photos, local_store, local_photos):
    a, b = _normalised(s3_store, s3_photos), _normalised(local_store, local_photos)
    for key in ("photos", "faces", "matches", "clusters", "labels"):
        assert a[key] == b[key], key
    np.testing.assert_allclose(a["encodings"], b["encodings"], atol=1e-4)


def _photo_folder(samples, lfw_dev, folder):
    """Five distinct sample-derived photos and three of each of two lfw_dev people (for clusters)."""
    from tests.test_archive_store import make_photos

    make_photos(samples, folder, 5)
    images = os.path.join(lfw_dev, "images")
    for person in ("Adrien_Brody", "Bill_Frist"):
        for name in sorted(os.listdir(os.path.join(images, person)))[:3]:
            shutil.copy(os.path.join(images, person, name), folder)


def test_every_command_on_s3_gives_the_tables_of_a_local_store(s3, samples, lfw_dev, tmp_path):
    from beam_jobs import cluster, enroll, tag
    from facetag.archive.naming import Word, name_faces
    from facetag.archive.store import ArchiveStore
    from tests.test_beam_jobs import MODEL

    # The photos in a top-level prefix of their own, so that the server's counters show their reads.
    base, local, s3_photos = _base("archive"), tmp_path / "local", _base("photos")
    _photo_folder(samples, lfw_dev, str(local / "photos"))
    shutil.copytree(os.path.join(samples, "gallery"), local / "people")
    _upload(str(local / "people"), f"{base}/people")
    _upload(str(local / "photos"), s3_photos)
    photos = {"s3": s3_photos, "local": str(local / "photos")}
    stores = {"s3": f"{base}/archive", "local": str(local / "archive")}

    def both(job, *args):
        """Run ``job`` on s3:// and on the local folder; the s3:// summary."""
        results = {}
        for where in ("local", "s3"):
            root = base if where == "s3" else str(local)
            results[where] = job.run([a.replace("ROOT/photos", photos[where]).replace("ROOT", root) for a in args])
        return results["s3"]

    both(enroll, "--gallery", "ROOT/people", "--out", "ROOT/gallery", *MODEL)
    first = both(tag, "--input", "ROOT/photos", "--index", "ROOT/gallery", "--store", "ROOT/archive", *MODEL)
    assert (first["photos_listed"], first["new"], first["failed"]) == (11, 11, 0)
    _assert_same(stores["s3"], photos["s3"], stores["local"], photos["local"])

    # Unchanged: decided from the listing alone, no photo object read.
    before = _server_stats(s3)["by_prefix"]
    again = tag.run(["--input", photos["s3"], "--index", f"{base}/gallery", "--store", stores["s3"], *MODEL])
    after = _server_stats(s3)["by_prefix"]
    assert (again["unchanged"], again["new"], again["changed"], again["faces_encoded"]) == (11, 0, 0, 0)
    requests = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    photo_objects = f"/{BUCKET}/{s3_photos.removeprefix(f's3://{BUCKET}/')}/..."
    assert not [k for k in requests if k.endswith(photo_objects)], requests  # no GET or HEAD of a photo
    assert requests.get(f"GET /{BUCKET}", 0) >= 1, requests  # listings (of the photos, the tables' logs)

    # A copy, a move and a removal, on both.
    c, prefix = _client(), s3_photos.removeprefix(f"s3://{BUCKET}/")
    c.copy_object(Bucket=BUCKET, Key=f"{prefix}/copy.jpg", CopySource=f"{BUCKET}/{prefix}/p00.jpg")
    c.copy_object(Bucket=BUCKET, Key=f"{prefix}/sub/moved.jpg", CopySource=f"{BUCKET}/{prefix}/p01.jpg")
    c.delete_object(Bucket=BUCKET, Key=f"{prefix}/p01.jpg")
    c.delete_object(Bucket=BUCKET, Key=f"{prefix}/p02.jpg")
    shutil.copy(local / "photos" / "p00.jpg", local / "photos" / "copy.jpg")
    os.makedirs(local / "photos" / "sub")
    os.rename(local / "photos" / "p01.jpg", local / "photos" / "sub" / "moved.jpg")
    os.remove(local / "photos" / "p02.jpg")
    third = both(tag, "--input", "ROOT/photos", "--index", "ROOT/gallery", "--store", "ROOT/archive", *MODEL)
    assert (third["new"], third["removed"], third["reused_by_content"], third["faces_encoded"]) == (2, 2, 2, 0)
    _assert_same(stores["s3"], photos["s3"], stores["local"], photos["local"])
    matched = {m[0] for m in _normalised(stores["s3"], photos["s3"])["matches"]}
    assert "p01.jpg" not in matched and "p02.jpg" not in matched and {"copy.jpg", "sub/moved.jpg"} <= matched

    # The gallery changes (the astronaut enrolled): every stored face matched again, nothing encoded.
    c.copy_object(Bucket=BUCKET, Key=f"{base.removeprefix(f's3://{BUCKET}/')}/people/eileen/eileen.jpg",
                  CopySource=f"{BUCKET}/{prefix}/p04.jpg")
    os.makedirs(local / "people" / "eileen")
    shutil.copy(local / "photos" / "p04.jpg", local / "people" / "eileen" / "eileen.jpg")
    both(enroll, "--gallery", "ROOT/people", "--out", "ROOT/gallery", *MODEL)
    fourth = both(tag, "--input", "ROOT/photos", "--index", "ROOT/gallery", "--store", "ROOT/archive", *MODEL)
    assert fourth["rematched_all"] and fourth["faces_encoded"] == 0
    _assert_same(stores["s3"], photos["s3"], stores["local"], photos["local"])
    assert ("p04.jpg", 0, "eileen") in _normalised(stores["s3"], photos["s3"])["matches"]

    # Cluster the unknown faces, name a cluster, tag again: the named faces take the name.
    clustered = both(cluster, "--store", "ROOT/archive")
    assert clustered["clusters"] >= 1
    _assert_same(stores["s3"], photos["s3"], stores["local"], photos["local"])
    for where in ("local", "s3"):
        store = ArchiveStore(stores[where])
        path_of = {f["face_id"]: f["path"] for f in store.read("faces", ["face_id", "path"]).to_pylist()}
        members = {}
        for r in store.read("clusters").to_pylist():
            if r["cluster_id"] is not None:
                members.setdefault(r["cluster_id"], []).append(os.path.basename(path_of[r["face_id"]]))
        # The same cluster in both stores (ids are labels): the biggest, ties broken by its photos' names.
        biggest = max(members, key=lambda i: (len(members[i]), sorted(members[i])))
        assert name_faces(stores[where], [Word("someone", cluster=biggest)])["faces_named"] >= 2
    both(tag, "--input", "ROOT/photos", "--index", "ROOT/gallery", "--store", "ROOT/archive", *MODEL)
    _assert_same(stores["s3"], photos["s3"], stores["local"], photos["local"])
    assert any(m[2] == "someone" for m in _normalised(stores["s3"], photos["s3"])["matches"])
    # The review server on the s3:// store: thumbnails cropped from the photos there, a word written there.
    from tests.review_server import Server

    server = Server(stores["s3"])
    try:
        face = next(iter(server.get("/api/page").json()["sections"].values()))["faces"][0][0]
        thumb = server.get(f"/thumbs/{face}.jpg")
        hidden = server.post("/api/hide", {"face": face})
    finally:
        assert server.stop()[0] == 0
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert hidden.status_code == 200, hidden.text
    assert [(r["face_id"], r["verdict"]) for r in ArchiveStore(stores["s3"]).read("labels").to_pylist()
            if r["verdict"] == "hide"] == [(face, "hide")]
    assert _client().list_objects_v2(Bucket=BUCKET, Prefix=f"{base.removeprefix(f's3://{BUCKET}/')}/archive/_staging/")[
        "KeyCount"] == 0


# Concurrent and killed runs, as separate `facetag tag` processes.

def _tag_process(photos, index, store, env_extra=None):
    from tests.test_beam_jobs import MODEL

    return subprocess.Popen(
        [sys.executable, "-m", "facetag.cli", "tag", photos, "--index", index, "--out", store, *MODEL, "--json"],
        env={**os.environ, "FACETAG_LEASE_SECONDS": LEASE_SECONDS, **(env_extra or {})}, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _assert_whole(store_path):
    """Each face exactly once, matches for exactly the present faces, read by ``deltalake`` alone (the
    tables' newest versions, which must be the ones store.json names: no commit of a lost run left)."""
    from deltalake import DeltaTable

    from facetag.archive.store import ArchiveStore

    manifest = ArchiveStore(store_path).manifest()
    tables = {}
    for name in ("photos", "faces", "matches"):
        dt = DeltaTable(f"{store_path}/{name}")
        assert dt.version() == manifest["versions"][name], name
        tables[name] = dt.to_pyarrow_table().to_pylist()
    face_ids = [f["face_id"] for f in tables["faces"]]
    assert len(face_ids) == len(set(face_ids))
    present = {p["path"] for p in tables["photos"] if p["outcome"] == "faces"}
    assert sorted(f["face_id"] for f in tables["faces"] if f["path"] in present) == sorted(
        m["face_id"] for m in tables["matches"])
    assert len({p["path"] for p in tables["photos"]}) == len(tables["photos"])
    return tables


@pytest.fixture(scope="module")
def gallery(s3, samples):
    from beam_jobs import enroll
    from tests.test_beam_jobs import MODEL

    index = f"{_base('gallery')}/index"
    enroll.run(["--gallery", os.path.join(samples, "gallery"), "--out", index, *MODEL])
    return index


def test_two_runs_at_once_never_lose_duplicate_or_mix_results(s3, samples, gallery, tmp_path):
    from tests.test_archive_store import make_photos

    base = _base("concurrent")
    photos, store = f"{base}/photos", f"{base}/archive"
    outcomes = []
    for round_ in range(5):
        folder = tmp_path / f"round{round_}"
        make_photos(samples, str(folder), 2, start=2 * round_)  # new photos each round: both runs have work
        _upload(str(folder), photos)
        runs = [_tag_process(photos, gallery, store) for _ in range(2)]
        for run in runs:
            out, err = run.communicate(timeout=300)
            if run.returncode == 0:
                outcomes.append("done")
                assert not err.strip(), err
            else:
                assert "another facetag run is writing the store" in err and "since" in err and \
                    "expires at" in err, err
                outcomes.append("busy")
        assert "done" in outcomes[-2:]
        tables = _assert_whole(store)
        assert {p["path"].rsplit("/", 1)[1] for p in tables["photos"]} >= {f"p{i:02d}.jpg"
                                                                            for i in range(2 * round_ + 2)}
    print("two runs at once, five times:", outcomes)


def test_a_run_killed_mid_commit_leaves_the_store_readable_then_the_next_run_completes(s3, samples, gallery,
                                                                                        tmp_path):
    from beam_jobs import tag
    from facetag.archive.lock import CLOCK_MARGIN_SECONDS, StoreBusyError
    from facetag.archive.store import ArchiveStore
    from tests.test_archive_store import assert_same_store, make_photos, tables
    from tests.test_beam_jobs import MODEL

    base = _base("killed")
    photos, store, fresh = f"{base}/photos", f"{base}/archive", f"{base}/fresh"
    make_photos(samples, str(tmp_path / "first"), 3)
    _upload(str(tmp_path / "first"), photos)
    tag.run(["--input", photos, "--index", gallery, "--store", store, *MODEL])
    manifest, committed = ArchiveStore(store).manifest(), tables(store)
    make_photos(samples, str(tmp_path / "more"), 3, start=3)
    _upload(str(tmp_path / "more"), photos)

    # Killed after the tables' commits, before store.json moved: the store reads as before.
    run = _tag_process(photos, gallery, store, {"FACETAG_TEST_KILL_AT": "commit-manifest"})
    run.communicate(timeout=300)
    assert run.returncode == -signal.SIGKILL
    assert ArchiveStore(store).manifest() == manifest and tables(store) == committed
    # Its lease still stands, then expires by itself.
    with pytest.raises(StoreBusyError, match="its lease expires at"):
        tag.run(["--input", photos, "--index", gallery, "--store", store, *MODEL])
    time.sleep(float(LEASE_SECONDS) + CLOCK_MARGIN_SECONDS + 1)
    summary = tag.run(["--input", photos, "--index", gallery, "--store", store, *MODEL])
    assert summary["new"] == 3 and summary["unchanged"] == 3
    tag.run(["--input", photos, "--index", gallery, "--store", fresh, *MODEL])
    assert_same_store(store, fresh)
    _assert_whole(store)
