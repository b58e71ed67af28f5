"""Keeping an archive store healthy as it grows night after night: compaction, checkpoints, vacuum.

Every run adds a small Parquet file and a log entry to each table it changes, and merges leave the files
they replaced behind. Left alone, a store of a year of nightly runs holds about a thousand small files per
table, all read by every run (on ``s3://`` a request each), a log that takes ever longer to replay, and
every replaced copy of ``matches``. :func:`maintain` runs after each successful run (and as ``facetag
maintain``), with the store's lock held:

1. *Compact* each table with more than ``max_small_files`` files under ``SMALL_FILE_BYTES``
   (delta-rs ``optimize.compact``: the same rows in fewer files, a new table version).
2. *Vacuum*: delete the files that no version kept needs: files a later version removed more than
   ``retain_hours`` ago (default 7 days, Delta's ``delta.deletedFileRetentionDuration``), and never a file of
   a version ``store.json`` names (delta-rs ``vacuum(keep_versions=...)``); after a run, only once
   ``VACUUM_AFTER_RUN_AT`` files have expired.
3. *Checkpoint* each table whose log grew by ``CHECKPOINT_EVERY`` entries since its last checkpoint, and
   delete log entries older than the table's log retention (delta-rs ``create_checkpoint``,
   ``cleanup_metadata``; Delta's default retention, 30 days).
4. Publish ``store.json`` naming the tables' new versions (compaction and vacuum commit versions whose rows
   are those of the versions it named, so the exports are not rewritten).

Kill-safe at every step: until step 4, ``store.json`` names the versions before maintenance, whose files the
vacuum keeps, so a killed maintenance is undone by the next run's recovery (a RESTORE to them); vacuum
deletes only files no kept version reads; an interrupted checkpoint is never used.
"""

import logging

from facetag._testing.faults import kill_point
from facetag.archive.store import ArchiveStore, new_run_id
from facetag.archive.tables import TABLES

#: Files smaller than this count as small: a nightly run's files are kilobytes to a few megabytes.
SMALL_FILE_BYTES = 32 * 1024 * 1024
#: A table is compacted when it has more small files than this (so a run reads at most about this many).
MAX_SMALL_FILES = 8
#: Log entries between checkpoints (Delta's own default interval is 100; nightly runs would reach it in months).
CHECKPOINT_EVERY = 10
#: After a run, a table is vacuumed once this many of its files have expired: delta-rs records each vacuum as two
#: commits (VACUUM START, VACUUM END), which a nightly vacuum of one or two files would add to the log every night
#: (bench/years.py: the log grew 3.5 times as fast as without maintenance). `facetag maintain` vacuums whatever expired.
VACUUM_AFTER_RUN_AT = MAX_SMALL_FILES
#: How long removed files are kept for readers of older versions and for time travel (Delta's default).
RETAIN_HOURS = 7 * 24


def maintain(store, retain_hours=RETAIN_HOURS, dry_run=False, max_small_files=MAX_SMALL_FILES, run_id=None,
             vacuum_at=1):
    """Compact, checkpoint and vacuum the tables of ``store`` (an ArchiveStore whose lock the caller holds);
    a table is vacuumed when at least ``vacuum_at`` of its files have expired.
    Returns what it did (or, with ``dry_run``, what it would do): ``{"tables": {name: {...}}, "files_compacted",
    "files_deleted", "bytes_deleted", "versions_kept"}``."""
    from deltalake import DeltaTable

    run_id = run_id or new_run_id()
    report = {"tables": {}, "files_compacted": 0, "files_deleted": 0, "bytes_deleted": 0, "dry_run": dry_run}
    named = dict(store.manifest()["versions"])
    latest = {}
    for name in TABLES:
        if named.get(name) is None:
            continue
        path = store.join(name)
        table = DeltaTable(path)
        small = _small_files(table)
        entry = report["tables"][name] = {"version": named[name], "files": len(table.file_uris()),
                                          "small_files": small}
        if small > max_small_files and dry_run:
            entry["files_to_compact"] = small
            report["files_to_compact"] = report.get("files_to_compact", 0) + small
        elif small > max_small_files:
            metrics = _retried(lambda: table.optimize.compact(commit_properties=_props(run_id)))
            entry["files_compacted"] = metrics.get("numFilesRemoved", 0)
            entry["files_after"] = len(DeltaTable(path).file_uris())
            report["files_compacted"] += entry["files_compacted"]
            kill_point("maintain-compacted")

        def vacuum(dry):
            return _retried(lambda: DeltaTable(path).vacuum(
                retention_hours=retain_hours, dry_run=dry, enforce_retention_duration=False,
                keep_versions=[named[name]]))

        listed = vacuum(True)
        sizes = _sizes(path) if listed else {}
        # delta-rs lists a removed file until its tombstone expires from the log, also once a vacuum deleted it
        expired = [f for f in listed if _relative(path, f) in sizes]
        if dry_run:
            deleted = expired
        elif expired and len(expired) >= vacuum_at:
            deleted = [f for f in vacuum(False) if _relative(path, f) in sizes]
        else:
            deleted = []
        entry["files_deleted"] = len(deleted)
        entry["bytes_deleted"] = sum(sizes[_relative(path, f)] for f in deleted)
        report["files_deleted"] += entry["files_deleted"]
        report["bytes_deleted"] += entry["bytes_deleted"]
        if not dry_run:
            _checkpoint(DeltaTable(path), path)
            latest[name] = DeltaTable(path).version()
    # Compaction and vacuum (whose start and end delta-rs records as commits) moved the tables on, rows unchanged.
    moved = {name: v for name, v in latest.items() if v != named[name]}
    if moved:
        store.publish_versions(run_id, moved)
    report["versions_kept"] = dict(store.manifest()["versions"])
    return report


def maintain_store(path, retain_hours=RETAIN_HOURS, dry_run=False):
    """``facetag maintain``: :func:`maintain` under the store's lock, after undoing what a killed run left (not
    in a dry run, which changes nothing)."""
    store = ArchiveStore(path)
    store.model_id  # noqa: B018 - refuses, naming it, a folder that is not a store
    with store.lock():
        store.manifest(reload=True)
        if not dry_run:
            store.recover()
        return maintain(store, retain_hours, dry_run)


def maintain_after_run(store, run_id, retain_hours=RETAIN_HOURS):
    """:func:`maintain` after a run committed; a failure is told in one line and never fails the run."""
    try:
        return maintain(store, retain_hours, run_id=run_id, vacuum_at=VACUUM_AFTER_RUN_AT)
    except Exception as e:  # noqa: BLE001 - the run's results are committed; maintenance can wait a night
        logging.getLogger("facetag").warning(
            "facetag: store maintenance of %s failed (%s: %s); the run's results are committed, and the next run "
            "or 'facetag maintain %s' tries again", store.path, type(e).__name__, e, store.path)
        return None


def _small_files(table):
    actions = table.get_add_actions(flatten=True)
    sizes = actions.column("size_bytes").to_pylist() if actions.num_rows else []
    return sum(1 for size in sizes if size < SMALL_FILE_BYTES)


def _checkpoint(table, path):
    """A checkpoint when the log grew CHECKPOINT_EVERY entries past the last one; expired log entries deleted."""
    version = table.version()
    last = _last_checkpoint(path)
    if version - (last if last is not None else -1) >= CHECKPOINT_EVERY:
        table.create_checkpoint()
        table.cleanup_metadata()


def _last_checkpoint(path):
    """The version of the last checkpoint of the table at ``path`` (``_delta_log/_last_checkpoint``), None when
    it has none."""
    import json

    from facetag.io.files import read_bytes

    try:
        return json.loads(read_bytes(f"{path}/_delta_log/_last_checkpoint"))["version"]
    except (FileNotFoundError, OSError, ValueError, KeyError):
        return None


def _sizes(table_path):
    """``{path relative to the table: bytes}`` of every file below the table's folder, from one listing."""
    from facetag.io.files import file_sizes

    return {_relative(table_path, path): size for path, size in file_sizes(table_path).items()}


def _relative(table_path, path):
    return path.split("://", 1)[-1].removeprefix(table_path.split("://", 1)[-1].rstrip("/") + "/")


def _retried(operation):
    """``operation()``, once more after a conflict with a concurrent writer (the lock keeps facetag's own
    runs out; another Delta writer may not)."""
    from deltalake.exceptions import CommitFailedError

    try:
        return operation()
    except CommitFailedError:
        return operation()


def _props(run_id):
    from deltalake import CommitProperties

    return CommitProperties(custom_metadata={"facetag.run_id": run_id, "facetag.operation": "maintenance"})
