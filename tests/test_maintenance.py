"""Store maintenance (issue 29): compaction, checkpoints and vacuum after every run and as `facetag maintain`,
on a local store and on the S3 server, kill-safe."""

import glob
import os
import subprocess
import sys

import pytest
from deltalake import DeltaTable, write_deltalake

from beam_jobs import enroll, tag
from facetag.archive.maintenance import MAX_SMALL_FILES, maintain, maintain_store
from facetag.archive.store import ArchiveStore
from tests.test_archive_store import assert_same_store, make_photos, tables
from tests.test_beam_jobs import MODEL
from tests.test_object_store import _base, _upload, s3  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def index(samples, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("maintenance") / "index")
    enroll.run(["--gallery", os.path.join(samples, "gallery"), "--out", path, *MODEL])
    return path


def active_files(store):
    return {name: len(DeltaTable(store.join(name), version=v).file_uris())
            for name, v in store.manifest()["versions"].items()}


def files_on_disk(store_path):
    return sorted(glob.glob(os.path.join(store_path, "**", "*"), recursive=True))


@pytest.fixture(scope="module")
def nightly(samples, index, tmp_path_factory):
    """A local store after MAX_SMALL_FILES + 3 nightly runs of one new photo each, and a store of the same
    photos tagged at once."""
    root = tmp_path_factory.mktemp("nightly")
    photos, store, fresh = str(root / "photos"), str(root / "store"), str(root / "fresh")
    most = 0
    for night in range(MAX_SMALL_FILES + 3):
        make_photos(samples, photos, 1, start=night)
        tag.run(["--input", photos, "--index", index, "--store", store, *MODEL])
        most = max(most, *active_files(ArchiveStore(store)).values())
    tag.run(["--input", photos, "--index", index, "--store", fresh, *MODEL])
    return store, fresh, most


def test_nightly_runs_keep_each_table_under_the_small_file_threshold(nightly):
    store, fresh, most = nightly
    assert most <= MAX_SMALL_FILES  # without maintenance: one file more per table every night
    assert_same_store(store, fresh)
    history = DeltaTable(f"{store}/faces").history()
    assert any(h.get("operation") == "OPTIMIZE" for h in history)
    assert os.path.exists(f"{store}/faces/_delta_log/_last_checkpoint")


def test_a_dry_run_changes_nothing_and_a_vacuum_keeps_what_store_json_names(nightly, tmp_path):
    store_path, fresh, _ = nightly
    before, manifest = files_on_disk(store_path), ArchiveStore(store_path).manifest()
    report = maintain_store(store_path, retain_hours=0, dry_run=True)
    assert report["files_deleted"] > 0 and report["bytes_deleted"] > 0
    assert files_on_disk(store_path) == before and ArchiveStore(store_path).manifest() == manifest

    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "facetag"), "maintain", store_path,
                          "--retain-hours", "0"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and not out.stderr, out.stderr
    assert f"{report['files_deleted']} files" in out.stdout and "deleted" in out.stdout
    assert len(files_on_disk(store_path)) < len(before)
    assert_same_store(store_path, fresh)  # the versions store.json names are whole

    # A run that dies after a table commit, after the vacuum: the next run restores the named version.
    store = ArchiveStore(store_path)
    committed = tables(store_path)
    write_deltalake(store.join("matches"), DeltaTable(store.join("matches")).to_pyarrow_table().slice(0, 1),
                    mode="append")
    with store.lock():
        assert store.recover() == ["matches"]
    assert tables(store_path) == committed


def test_a_run_killed_during_maintenance_leaves_a_store_the_next_run_completes(samples, index, tmp_path):
    photos, store, fresh = str(tmp_path / "photos"), str(tmp_path / "store"), str(tmp_path / "fresh")
    for night in range(MAX_SMALL_FILES):
        make_photos(samples, photos, 1, start=night)
        tag.run(["--input", photos, "--index", index, "--store", store, *MODEL])
    make_photos(samples, photos, 1, start=MAX_SMALL_FILES)  # this run's maintenance compacts
    run = subprocess.run([sys.executable, "-m", "beam_jobs.tag", "--input", photos, "--index", index, "--store",
                          store, *MODEL], env={**os.environ, "FACETAG_TEST_KILL_AT": "maintain-compacted"},
                         cwd=ROOT, capture_output=True, text=True, start_new_session=True)
    assert run.returncode == -9, run.stderr
    summary = tag.run(["--input", photos, "--index", index, "--store", store, *MODEL])
    assert summary["unchanged"] == MAX_SMALL_FILES + 1 and summary["new"] == 0
    assert max(active_files(ArchiveStore(store)).values()) <= MAX_SMALL_FILES
    tag.run(["--input", photos, "--index", index, "--store", fresh, *MODEL])
    assert_same_store(store, fresh)


def test_maintenance_on_an_s3_store(s3, samples, tmp_path):
    base = _base("maintained")
    index, photos, store_path = f"{base}/index", f"{base}/photos", f"{base}/archive"
    enroll.run(["--gallery", os.path.join(samples, "gallery"), "--out", index, *MODEL])
    for night in range(3):
        make_photos(samples, str(tmp_path / f"n{night}"), 1, start=night)
        _upload(str(tmp_path / f"n{night}"), photos)
        tag.run(["--input", photos, "--index", index, "--store", store_path, *MODEL])
    store = ArchiveStore(store_path)
    committed = tables(store_path)
    with store.lock():
        compacted = maintain(store, retain_hours=0, max_small_files=1)
        # The files compacted away belong to the versions store.json named until now: kept this time.
        assert compacted["files_compacted"] >= 6 and compacted["files_deleted"] == 0
        vacuumed = maintain(store, retain_hours=0, max_small_files=1)
    assert vacuumed["files_deleted"] >= compacted["files_compacted"] and vacuumed["bytes_deleted"] > 0
    assert set(active_files(ArchiveStore(store_path)).values()) == {1}
    assert tables(store_path) == committed
