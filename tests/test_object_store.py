"""The archive on object storage (issue 22), against a real S3-API server in its own process.

Phase 1 (this file now): the server of `make s3-up` and what the store builds on: its conditional
writes, delta-rs's commits on it from concurrent processes, Beam's FileSystems on s3://, and the
compare-and-swap and lease prototype (notes/objectlock.py). Phase 2 adds the facetag commands on s3://
(enroll, tag, re-run, copy/move/remove, cluster, name; two concurrent tag runs; a run killed mid-commit).

The server is started once for the module in a folder of its own and stopped after it; the tests
skip, with the reason, only where it cannot start (moto not installed, no free port).
"""

import multiprocessing as mp
import os
import subprocess
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "scripts", "s3_server.py")
BUCKET = "facetag"


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
    boto3 = pytest.importorskip("boto3")
    return boto3.client("s3")


def _status(call):
    from botocore.exceptions import ClientError

    try:
        call()
        return 200
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]


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
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    table = f"s3://{BUCKET}/delta-{uuid.uuid4().hex[:8]}"
    write_deltalake(table, pa.table({"proc": pa.array([], pa.int64()), "i": pa.array([], pa.int64())}))
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_append, [(table, p, 10) for p in range(2)])
    dt = DeltaTable(table)
    rows = dt.to_pyarrow_table()
    assert sorted(zip(rows["proc"].to_pylist(), rows["i"].to_pylist())) == [(p, i) for p in range(2) for i in range(10)]
    assert dt.version() == 20


def test_concurrent_merges_conflict_with_a_clear_error(s3):
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake
    from deltalake.exceptions import CommitFailedError

    table = f"s3://{BUCKET}/merge-{uuid.uuid4().hex[:8]}"
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


def test_beam_filesystems_on_s3_from_the_environment_alone(s3):
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    FileSystems.set_options(PipelineOptions([]))  # S3FileSystem needs options, even empty ones
    base = f"s3://{BUCKET}/beam-{uuid.uuid4().hex[:8]}"
    with FileSystems.create(f"{base}/a/one.jpg") as f:
        f.write(b"x" * 100)
    (found,) = FileSystems.match([f"{base}/**"])[0].metadata_list
    assert (found.path, found.size_in_bytes) == (f"{base}/a/one.jpg", 100) and found.last_updated_in_seconds > 0
    with FileSystems.open(f"{base}/a/one.jpg") as f:
        assert f.read() == b"x" * 100
    assert not FileSystems.exists(f"{base}/a")  # a prefix is no object: delete it as "a/", never after exists()
    FileSystems.delete([f"{base}/a/"])
    assert FileSystems.match([f"{base}/**"])[0].metadata_list == []


@pytest.mark.parametrize("where", ["s3", "local"])
def test_compare_and_swap_and_lease(s3, tmp_path, where):
    sys.path.insert(0, os.path.join(ROOT, "notes"))
    from objectlock import Conflict, Lease, LeaseLost, Manifest, StoreBusy

    base = f"s3://{BUCKET}/lock-{uuid.uuid4().hex[:8]}" if where == "s3" else str(tmp_path)
    a, b = Manifest(f"{base}/store.json"), Manifest(f"{base}/store.json")
    assert a.load() is None and b.load() is None
    a.publish({"n": 1})
    with pytest.raises(Conflict):
        b.publish({"n": 2})  # created meanwhile
    b.load()
    b.publish({"n": 2})
    with pytest.raises(Conflict):
        a.publish({"n": 3})  # changed meanwhile
    holder = Lease(f"{base}/_lease.json", run_id="first", ttl=2, renew_every=1e9, skew=0.2)
    holder.acquire()
    with pytest.raises(StoreBusy, match="another facetag run holds the store since"):
        Lease(f"{base}/_lease.json", ttl=2).acquire(wait=0)
    taker = Lease(f"{base}/_lease.json", run_id="second", ttl=30, skew=0.2)
    assert taker.acquire(wait=10, poll=0.1)["run_id"] == "first"  # after the unrenewed lease expired
    with pytest.raises(LeaseLost):
        holder.check()
    holder.release()
    with pytest.raises(StoreBusy):
        Lease(f"{base}/_lease.json", ttl=2).acquire(wait=0)  # the first run's release left the second's lease
    taker.release()
    Lease(f"{base}/_lease.json", ttl=2).acquire(wait=0)
