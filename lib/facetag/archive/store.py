"""The archive store: what facetag knows about an archive, as Delta Lake tables.

A store is a folder (local, or any path delta-rs writes: ``gs://``, ``s3://``)
holding Delta tables (facetag.archive.tables) and one pointer file::

    STORE/photos/    one row per photo ever listed: path, size, mtime, sha256, outcome, reason, ...
    STORE/faces/     one row per face found: encoding, box, landmarks, the photo's path and sha256
    STORE/matches/   the current identity of every face of a photo still present, under one gallery index
    STORE/clusters/, STORE/labels/   facetag cluster's groups; people's words on faces (facetag name)
    STORE/store.json the store's current version: each table's Delta version, the model, the index id
    STORE/matches.csv, clusters.csv  exports for people (facetag.archive.exports)

Each table's history says what every run changed. A run changes several
tables, and Delta commits are atomic per table only, so ``store.json`` is the
store's own commit point: facetag reads every table at the version it names and
writes it last, by compare-and-swap (facetag.io.objects: a rename under a lock
on a local disk, a conditional put on an object store), so that a run publishes
only over the version it started from. A run killed before that leaves the store
at its previous version; the next run first restores any table that got ahead of
``store.json`` (a Delta RESTORE commit), so other readers see the previous
version again too. Only one run may write a store at a time (facetag.archive.lock);
Delta's own commits (put-if-absent of each log entry) keep each table whole even so.
"""

import datetime
import json
import secrets

import pyarrow as pa

from facetag._testing.faults import kill_point
from facetag.archive.exports import CLUSTERS_CSV, MATCHES_CSV, write_clusters_csv, write_matches_csv
from facetag.archive.lock import StoreBusyError, StoreLock
from facetag.archive.tables import PHOTOS_SCHEMA, REMOVED, TABLES, schema_of
from facetag.errors import FaceTagError
from facetag.io.files import delete_tree, is_remote
from facetag.io.objects import Cell, Conflict
from facetag.vision.models import check_same_model, model_advice

MANIFEST = "store.json"
STAGING = "_staging"


def new_run_id() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)


class ArchiveStore:
    """An archive store at ``path``; see the module docstring. Reading never needs the lock."""

    def __init__(self, path: str):
        self.path = path.rstrip("/")
        self._manifest = None
        self._manifest_version = None  # the version of store.json read, which a commit must replace
        self._lock = None

    def join(self, *parts: str) -> str:
        return "/".join([self.path, *parts])

    # Reading.

    def exists(self) -> bool:
        return self.manifest() is not None

    def manifest(self, reload: bool = False) -> dict | None:
        """The store's commit record (``store.json``), or None for a store no run has committed yet."""
        if self._manifest is None or reload:
            data, self._manifest_version = Cell(self.join(MANIFEST)).read()
            self._manifest = None if data is None else json.loads(data)
        return self._manifest

    @property
    def model_id(self) -> str:
        return self._require()["model_id"]

    @property
    def index_id(self) -> str | None:
        return self._require().get("index_id")

    def _require(self):
        manifest = self.manifest()
        if manifest is None:
            raise FaceTagError(f"{self.path} is not a facetag archive store (no {MANIFEST}); "
                               "create one with 'facetag tag PHOTOS --index INDEX --out STORE'")
        return manifest

    def version(self, name: str) -> int | None:
        """The table's version in the store's current version, or None if the store has no such table yet."""
        manifest = self.manifest()
        return None if manifest is None else manifest["versions"].get(name)

    def table(self, name: str):
        """The ``deltalake.DeltaTable`` at the store's current version (None if the table does not exist yet)."""
        from deltalake import DeltaTable

        version = self.version(name)
        return None if version is None else DeltaTable(self.join(name), version=version)

    def read(self, name: str, columns: list[str] | None = None, filter=None) -> pa.Table:
        """The table as a ``pyarrow.Table`` at the store's current version."""
        self._require()
        table = self.table(name)
        schema = schema_of(name, self.model_id)
        if table is None:
            empty = schema.empty_table()
            return empty if columns is None else empty.select(columns)
        data = table.to_pyarrow_dataset()
        wanted = columns or schema.names
        # A column added to facetag's schema after the table was written (faces.quality) reads as nulls.
        result = data.to_table(columns=[c for c in wanted if c in data.schema.names], filter=filter)
        for c in wanted:
            if c not in result.column_names:
                result = result.append_column(schema.field(c), pa.nulls(result.num_rows, schema.field(c).type))
        return result.select(wanted)

    def read_rows(self, name: str, key: str, values: list, columns: list[str]) -> pa.Table:
        """The rows of table ``name`` whose ``key`` column is one of ``values``: only the key column is
        scanned, then just the row groups holding those rows are read (a few encodings of millions)."""
        import pyarrow.compute as pc

        schema = schema_of(name, self.model_id)
        table = self.table(name)
        if table is None or not values:
            return schema.empty_table().select(columns)
        data = table.to_pyarrow_dataset()
        keys = data.to_table(columns=[key]).column(key)
        positions = pc.indices_nonzero(pc.is_in(keys, pa.array(values, schema.field(key).type)))
        return data.take(positions, columns=columns)

    def files(self, name: str) -> list[str]:
        """The Parquet files of the table's current version (for a pipeline to read in parallel)."""
        table = self.table(name)
        return [] if table is None else table.file_uris()

    def check_model(self, model_id: str) -> None:
        """Raise ModelMismatchError when the store holds encodings of another model than ``model_id``."""
        manifest = self.manifest()
        if manifest is not None:
            check_same_model(manifest["model_id"], model_id, holder=f"the store {self.path}", user="this run",
                             remedy=f"{model_advice(manifest['model_id'])}, move the store to this model with "
                                    f"'facetag reencode', or tag into a new --out folder")

    # Writing: one run at a time.

    def lock(self) -> StoreLock:
        """Hold the store's write lock (a context manager); raises StoreBusyError if another run holds it.

        Commits made through this object check that the lock is still held."""
        self._lock = StoreLock(self.path)
        return self._lock

    def staging_dir(self, run_id: str) -> str:
        return self.join(STAGING, run_id)

    def recover(self) -> list[str]:
        """Undo what a killed run left: tables ahead of ``store.json`` are restored, staged files deleted.

        Call with the lock held. Returns the names of the tables restored.
        """
        from deltalake import DeltaTable

        restored = []
        for name in TABLES:
            path = self.join(name)
            if not DeltaTable.is_deltatable(path):
                continue
            committed = self.version(name)
            latest = DeltaTable(path)
            if committed is None:
                # Created by a run that never committed: nothing of it is the store's yet.
                delete_tree(path)
                restored.append(name)
            elif latest.version() > committed:
                latest.restore(committed)
                restored.append(name)
        delete_tree(self.join(STAGING))
        return restored

    def commit(self, *, run_id: str, model_id: str, index_id: str, staged: dict[str, list[str]],
               rematched_all: bool, stats: dict | None = None, labels_version: int | None = None,
               index_dir: str | None = None, reencoded: bool = False) -> dict:
        """Apply a tagging run's staged Parquet files to the tables, then move ``store.json`` to them.

        ``staged``: ``{"photos": [files], "faces": [files], "matches": [files]}``: the photos rows the
        run wrote (new, changed, failed, removed), the faces of its new and changed photos, and the
        matches of those faces, or of every face when ``rematched_all`` (the gallery index changed).
        ``reencoded``: the run encoded every face again with ``model_id`` (facetag reencode): its faces and
        matches replace the tables whole, encodings of another size included.
        ``labels_version``: the version of ``labels`` the matches were made with. Returns the new manifest.
        """
        import pyarrow.dataset as ds

        self._check_lock()
        props = _props(run_id)
        photos = _dataset(staged["photos"], PHOTOS_SCHEMA)
        touched = photos.to_table(columns=["path", "outcome"])
        redone = touched.filter(ds.field("outcome") != REMOVED).select(["path"])  # their faces were found again
        versions = {}
        self._merge_photos(photos, touched.num_rows, props)
        versions["photos"] = self._after("photos")
        faces = _dataset(staged["faces"], schema_of("faces", model_id))
        if reencoded:
            _write(self.join("faces"), faces, "overwrite", props, schema_mode="overwrite")
        else:
            self._replace_rows("faces", faces, redone, props)
        versions["faces"] = self._after("faces")
        matches = _dataset(staged["matches"], schema_of("matches", model_id))
        if (rematched_all or reencoded) and self._exists("matches"):
            _write(self.join("matches"), matches, "overwrite", props)
        else:
            self._replace_rows("matches", matches, touched.select(["path"]), props)
        versions["matches"] = self._after("matches")
        fields = {"model_id": model_id, "index_id": index_id, "labels_matched": labels_version,
                  "last_run": stats or {}}
        if index_dir:
            fields["index_dir"] = index_dir  # the gallery that `facetag name` grows
        return self._publish(run_id, versions, fields)

    def replace_table(self, run_id: str, name: str, files: list[str], fields: dict | None = None) -> dict:
        """Replace table ``name`` (``clusters``) with a run's staged files, and publish it with ``fields``
        (``cluster_min_quality``) added to ``store.json``."""
        return self._write_whole(run_id, name, _dataset(files, schema_of(name, self.model_id)), "overwrite",
                                 fields or {})

    def append_rows(self, run_id: str, name: str, rows: pa.Table) -> dict:
        """Append ``rows`` (a pyarrow Table of the table's schema) to table ``name`` (``labels``), and publish."""
        import pyarrow.dataset as ds

        return self._write_whole(run_id, name, ds.dataset(rows.cast(schema_of(name, self.model_id))), "append")

    def _check_lock(self):
        if self._lock is not None:
            self._lock.check()

    def _exists(self, name):
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.join(name))

    def _after(self, name):
        """The table's newest version, once this run's commit to it is done."""
        from deltalake import DeltaTable

        kill_point(f"commit-{name}")
        return DeltaTable(self.join(name)).version()

    def _merge_photos(self, photos, touched, props):
        """Upsert the run's photos rows by path."""
        from deltalake import DeltaTable

        if not self._exists("photos"):
            _create(self.join("photos"), "photos", photos, props)
        elif touched:
            (DeltaTable(self.join("photos")).merge(photos.to_table(), "t.path = s.path", source_alias="s",
                                                   target_alias="t", commit_properties=props)
             .when_matched_update_all().when_not_matched_insert_all().execute())

    def _replace_rows(self, name, data, paths, props):
        """Delete the rows of table ``name`` for ``paths`` (a one-column pyarrow table), then append ``data``."""
        from deltalake import DeltaTable

        path = self.join(name)
        if not self._exists(name):
            _create(path, name, data, props)
            return
        if paths.num_rows:
            (DeltaTable(path).merge(paths, "t.path = s.path", source_alias="s", target_alias="t",
                                    commit_properties=props)
             .when_matched_delete().execute())
        if data.count_rows():
            _write(path, data, "append", props, schema_mode="merge")  # a table of an older facetag gains new columns

    def _write_whole(self, run_id, name, data, mode, fields=None):
        from deltalake import DeltaTable

        self._check_lock()
        path = self.join(name)
        if self._exists(name) and self.version(name) is not None:
            # An appended table of an older facetag (labels) gains the columns added since.
            _write(path, data, mode, _props(run_id), schema_mode="merge" if mode == "append" else None)
        else:
            _create(path, name, data, _props(run_id))
        return self._publish(run_id, {name: DeltaTable(path).version()}, fields or {})

    def publish_versions(self, run_id: str, versions: dict[str, int]) -> dict:
        """Publish table versions that hold the same rows as those ``store.json`` names (compacted ones:
        facetag.archive.maintenance), without rewriting the exports."""
        self._check_lock()
        return self._publish(run_id, versions, {"maintained_at": _now()}, exports=False)

    def _publish(self, run_id, versions, fields, exports=True):
        """Write the exports, then ``store.json`` naming the new table versions: the store's commit point."""
        manifest = {**(self.manifest() or {"format": 1}), **fields}
        manifest["versions"] = {**manifest.get("versions", {}), **versions}
        manifest["run_id"] = run_id
        manifest["committed_at"] = _now()
        if exports:
            self._write_exports(manifest, versions)
        kill_point("commit-manifest")
        self._check_lock()
        cell, data = Cell(self.join(MANIFEST)), json.dumps(manifest, indent=2).encode()
        try:
            if self._manifest_version is None:
                self._manifest_version = cell.create(data)
            else:
                self._manifest_version = cell.replace(data, self._manifest_version)
        except Conflict:
            raise StoreBusyError(
                f"another facetag run committed to the store {self.path} while this run worked on it, so this "
                "run committed nothing (its table writes are undone by the next run); run it again") from None
        self._manifest = manifest
        delete_tree(self.join(STAGING))  # this run's, and nothing else: the lock is held
        return manifest

    def _write_exports(self, manifest, changed):
        """The CSV exports of the tables that changed."""
        from deltalake import DeltaTable

        def at(name, columns):
            return DeltaTable(self.join(name), version=manifest["versions"][name]).to_pyarrow_table(columns=columns)

        if "matches" in changed:
            write_matches_csv(self.join(MATCHES_CSV), at("matches", ["path", "face_index", "box", "identity",
                                                                      "distance"]))
        if "clusters" in changed:
            write_clusters_csv(self.join(CLUSTERS_CSV), at("clusters", ["face_id", "cluster_id", "cluster_size"]),
                               at("matches", ["face_id", "path", "face_index", "box"]))


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _props(run_id):
    from deltalake import CommitProperties

    return CommitProperties(custom_metadata={"facetag.run_id": run_id})


def _create(path, name, data, props):
    from deltalake import write_deltalake

    write_deltalake(path, data.scanner().to_reader(), name=name, description=f"facetag {name}",
                    mode="overwrite", commit_properties=props)


def _write(path, data, mode, props, schema_mode=None):
    from deltalake import write_deltalake

    write_deltalake(path, data.scanner().to_reader(), mode=mode, commit_properties=props, schema_mode=schema_mode)


def _dataset(files, schema):
    # pyarrow.dataset is imported where a commit needs it: at the top it cost every run 0.12 s before its first photo.
    import pyarrow.dataset as ds

    if not files:
        return ds.dataset(schema.empty_table())
    filesystem = None
    if is_remote(files[0]):  # pyarrow takes a list of URIs only as paths of one file system
        from pyarrow.fs import FileSystem

        filesystem, _ = FileSystem.from_uri(files[0])
        files = [f.split("://", 1)[1] for f in files]
    return ds.dataset(files, schema=schema, format="parquet", filesystem=filesystem)
