"""The archive store: what facetag knows about an archive, as Delta Lake tables.

A store is a folder (local, or any path delta-rs writes: ``gs://``, ``s3://``)
holding three Delta tables and one pointer file::

    STORE/photos/    one row per photo ever listed: path, size, mtime, sha256, outcome, reason, ...
    STORE/faces/     one row per face found: encoding, box, landmarks, the photo's path and sha256
    STORE/matches/   the current identity of every face of a photo still present, under one gallery index
    STORE/store.json the store's current version: each table's Delta version, the model, the index id
    STORE/matches.csv  the current matches for people (rewritten at every commit)

Each table is readable without facetag (Spark, DuckDB, Polars, pandas via
``deltalake``), and its history says what every run changed. A run changes
several tables, and Delta commits are atomic per table only, so ``store.json``
is the store's own commit point: facetag reads every table at the version it
names and writes it last, by an atomic rename. A run killed before that rename
leaves the store at its previous version; the next run first restores any table
that got ahead of ``store.json`` (a Delta RESTORE commit), so other readers see
the previous version again too.

Only one run may write a store at a time: a local store is locked with
``flock`` for the whole run (the lock dies with its process, so a killed run
never blocks the next one).
"""

import csv
import datetime
import io
import json
import os
import secrets

import pyarrow as pa

from facetag.errors import FaceTagError, ModelMismatchError
from facetag._testing.faults import kill_point

MANIFEST = "store.json"
STAGING = "_staging"
LOCK_FILE = ".lock"
TABLES = ("photos", "faces", "matches", "clusters", "labels")

#: ``photos.outcome`` values: a photo ends in exactly one.
FACES, NO_FACE, FAILED, REMOVED = "faces", "no_face", "failed", "removed"

#: Schema metadata key on ``faces.encoding`` naming the model that made the encodings.
MODEL_ID_FIELD_KEY = "facetag.model_id"

PHOTOS_SCHEMA = pa.schema([
    ("path", pa.string()),
    ("size", pa.int64()),  # bytes; null when the path could not be read at all
    ("mtime", pa.float64()),  # seconds since the epoch, as the file system reports it
    ("sha256", pa.string()),  # of the file's bytes; faces are reused for any path with the same content
    ("outcome", pa.string()),  # faces | no_face | failed | removed
    ("reason", pa.string()),  # why no_face or failed
    ("faces", pa.int32()),
    ("width", pa.int32()),  # displayed size (EXIF orientation applied)
    ("height", pa.int32()),
    ("run_id", pa.string()),  # the run that last read this photo (or found it gone)
])

CANDIDATE = pa.struct([("identity", pa.string()), ("distance", pa.float32())])

MATCHES_SCHEMA = pa.schema([
    ("face_id", pa.string()),
    ("path", pa.string()),
    ("face_index", pa.int32()),
    ("box", pa.list_(pa.int32())),  # left, top, right, bottom
    ("identity", pa.string()),  # or "unknown"
    ("distance", pa.float32()),
    ("candidates", pa.list_(CANDIDATE)),
    ("index_id", pa.string()),  # the gallery index the match was made with
])


CLUSTERS_SCHEMA = pa.schema([
    ("face_id", pa.string()),
    ("cluster_id", pa.int64()),  # null: in no cluster (alone, or only like faces of its own photo)
    ("cluster_size", pa.int32()),
    ("distance", pa.float32()),  # to the cluster's centre
])

LABELS_SCHEMA = pa.schema([
    ("face_id", pa.string()),
    ("name", pa.string()),
    ("verdict", pa.string()),  # "is": the face is this person; "not": it is not
    ("via", pa.string()),  # how it was given: "cluster 12", "face"
    ("labelled_at", pa.string()),  # UTC, ISO 8601
])

#: Label verdicts.
IS, IS_NOT = "is", "not"


def faces_schema(model_id):
    return pa.schema([
        ("face_id", pa.string()),
        ("path", pa.string()),
        ("photo_sha256", pa.string()),
        ("face_index", pa.int32()),
        ("box", pa.list_(pa.int32())),  # left, top, right, bottom, in the displayed photo's pixels
        ("landmarks", pa.list_(pa.float32())),  # x, y of eyes, nose, mouth corners
        ("score", pa.float32()),
        pa.field("encoding", pa.list_(pa.float32()), metadata={MODEL_ID_FIELD_KEY: model_id}),
    ])


def schema_of(name, model_id):
    return {"photos": PHOTOS_SCHEMA, "faces": faces_schema(model_id), "matches": MATCHES_SCHEMA,
            "clusters": CLUSTERS_SCHEMA, "labels": LABELS_SCHEMA}[name]


class StoreBusyError(FaceTagError):
    """Another run is writing the store."""


def new_run_id():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)


class ArchiveStore:
    """An archive store at ``path``; see the module docstring. Reading never needs the lock."""

    def __init__(self, path):
        self.path = path.rstrip("/")
        self._manifest = None

    def join(self, *parts):
        return "/".join([self.path, *parts])

    def exists(self):
        return self.manifest() is not None

    def manifest(self, reload=False):
        """The store's commit record (``store.json``), or None for a store no run has committed yet."""
        if self._manifest is None or reload:
            try:
                self._manifest = json.loads(_read_bytes(self.join(MANIFEST)))
            except FileNotFoundError:
                self._manifest = None
        return self._manifest

    @property
    def model_id(self):
        return self._require()["model_id"]

    @property
    def index_id(self):
        return self._require().get("index_id")

    def _require(self):
        manifest = self.manifest()
        if manifest is None:
            raise FaceTagError(f"{self.path} is not a facetag archive store (no {MANIFEST}); "
                               "create one with 'facetag tag PHOTOS --index INDEX --out STORE'")
        return manifest

    def version(self, name):
        """The table's version in the store's current version, or None if the store has no such table yet."""
        manifest = self.manifest()
        return None if manifest is None else manifest["versions"].get(name)

    def table(self, name):
        """The ``deltalake.DeltaTable`` at the store's current version (None if the table does not exist yet)."""
        from deltalake import DeltaTable

        version = self.version(name)
        return None if version is None else DeltaTable(self.join(name), version=version)

    def read(self, name, columns=None, filter=None):
        """The table as a ``pyarrow.Table`` at the store's current version."""
        self._require()
        table = self.table(name)
        if table is None:
            schema = schema_of(name, self.model_id)
            return schema.empty_table() if columns is None else schema.empty_table().select(columns)
        return table.to_pyarrow_dataset().to_table(columns=columns, filter=filter)

    def files(self, name):
        """The Parquet files of the table's current version (for a pipeline to read in parallel)."""
        table = self.table(name)
        return [] if table is None else table.file_uris()

    def check_model(self, model_id):
        from facetag.vision.models import model_advice

        manifest = self.manifest()
        if manifest is not None and manifest["model_id"] != model_id:
            raise ModelMismatchError(
                f"the store {self.path} holds encodings of model {manifest['model_id']}, but this run uses "
                f"{model_id}: encodings of different models cannot be mixed; {model_advice(manifest['model_id'])}, "
                "or tag into a new --out folder")

    # Writing: one run at a time.

    def lock(self):
        """Hold the store's write lock (a context manager); raises StoreBusyError if another run holds it."""
        return _StoreLock(self)

    def staging_dir(self, run_id):
        return self.join(STAGING, run_id)

    def recover(self):
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
                _delete_tree(path)
                restored.append(name)
            elif latest.version() > committed:
                latest.restore(committed)
                restored.append(name)
        _delete_tree(self.join(STAGING))
        return restored

    def commit(self, run_id, model_id, index_id, staged, rematched_all, stats=None, labels_version=None,
               index_dir=None):
        """Apply a tagging run's staged Parquet files to the tables, then move ``store.json`` to them.

        ``staged``: ``{"photos": [files], "faces": [files], "matches": [files]}``: the photos rows the
        run wrote (new, changed, failed, removed), the faces of its new and changed photos, and the
        matches of those faces, or of every face when ``rematched_all`` (the gallery index changed).
        ``labels_version``: the version of ``labels`` the matches were made with. Returns the new manifest.
        """
        import pyarrow.dataset as ds
        from deltalake import DeltaTable, write_deltalake

        props = _props(run_id)
        photos = _dataset(staged["photos"], PHOTOS_SCHEMA)
        touched = photos.to_table(columns=["path", "outcome"])
        replaced = touched.filter(ds.field("outcome") != REMOVED).select(["path"])  # faces redone for these
        versions = {}
        for name, delete_paths in (("photos", None), ("faces", replaced), ("matches", touched.select(["path"]))):
            data = _dataset(staged[name], schema_of(name, model_id))
            path = self.join(name)
            if not DeltaTable.is_deltatable(path):
                _create(path, name, data, props)
            elif name == "photos":
                if touched.num_rows:
                    (DeltaTable(path).merge(photos.to_table(), "t.path = s.path", source_alias="s",
                                            target_alias="t", commit_properties=props)
                     .when_matched_update_all().when_not_matched_insert_all().execute())
            elif name == "matches" and rematched_all:
                write_deltalake(path, data.scanner().to_reader(), mode="overwrite", commit_properties=props)
            else:
                if delete_paths.num_rows:
                    (DeltaTable(path).merge(delete_paths, "t.path = s.path", source_alias="s", target_alias="t",
                                            commit_properties=props)
                     .when_matched_delete().execute())
                if data.count_rows():
                    write_deltalake(path, data.scanner().to_reader(), mode="append", commit_properties=props)
            kill_point(f"commit-{name}")
            versions[name] = DeltaTable(path).version()
        fields = {"model_id": model_id, "index_id": index_id, "labels_matched": labels_version,
                  "last_run": stats or {}}
        if index_dir:
            fields["index_dir"] = index_dir  # the gallery that `facetag name` grows
        return self._publish(run_id, versions, fields)

    def replace_table(self, run_id, name, files):
        """Replace table ``name`` (``clusters``) with a run's staged files, and publish it."""
        return self._write_whole(run_id, name, _dataset(files, schema_of(name, self.model_id)), "overwrite")

    def append_rows(self, run_id, name, rows):
        """Append ``rows`` (a pyarrow Table of the table's schema) to table ``name`` (``labels``), and publish."""
        import pyarrow.dataset as ds

        return self._write_whole(run_id, name, ds.dataset(rows.cast(schema_of(name, self.model_id))), "append")

    def _write_whole(self, run_id, name, data, mode):
        from deltalake import DeltaTable, write_deltalake

        path = self.join(name)
        if DeltaTable.is_deltatable(path) and self.version(name) is not None:
            write_deltalake(path, data.scanner().to_reader(), mode=mode, commit_properties=_props(run_id))
        else:
            _create(path, name, data, _props(run_id))
        return self._publish(run_id, {name: DeltaTable(path).version()}, {})

    def _publish(self, run_id, versions, fields):
        """Write the exports, then ``store.json`` naming the new table versions: the store's commit point."""
        manifest = {**(self.manifest() or {"format": 1}), **fields}
        manifest["versions"] = {**manifest.get("versions", {}), **versions}
        manifest["run_id"] = run_id
        manifest["committed_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self._write_exports(manifest, versions)
        kill_point("commit-manifest")
        _write_atomically(self.join(MANIFEST), json.dumps(manifest, indent=2).encode())
        self._manifest = manifest
        _delete_tree(self.join(STAGING))  # this run's, and nothing else: the lock is held
        return manifest

    def _write_exports(self, manifest, changed):
        """The CSV exports of the tables that changed: ``matches.csv`` and ``clusters.csv``, sorted by photo."""
        from deltalake import DeltaTable

        def at(name, columns):
            return DeltaTable(self.join(name), version=manifest["versions"][name]).to_pyarrow_table(columns=columns)

        if "matches" in changed:
            matches = at("matches", ["path", "face_index", "box", "identity", "distance"])
            _write_csv(self.join(MATCHES_CSV), MATCHES_CSV_HEADER, (
                [r["path"], r["face_index"], " ".join(map(str, r["box"])), r["identity"], f"{r['distance']:.4f}"]
                for r in _by_photo(matches)))
        if "clusters" in changed:
            clusters = at("clusters", ["face_id", "cluster_id", "cluster_size"]).to_pydict()
            cluster_of = dict(zip(clusters["face_id"], zip(clusters["cluster_id"], clusters["cluster_size"])))
            faces = at("matches", ["face_id", "path", "face_index", "box"])
            _write_csv(self.join(CLUSTERS_CSV), CLUSTERS_CSV_HEADER, (
                [r["path"], r["face_index"], " ".join(map(str, r["box"])),
                 "" if cluster_of[r["face_id"]][0] is None else cluster_of[r["face_id"]][0],
                 cluster_of[r["face_id"]][1] or 1]
                for r in _by_photo(faces) if r["face_id"] in cluster_of))


MATCHES_CSV = "matches.csv"
MATCHES_CSV_HEADER = ["source", "face", "box", "identity", "distance"]
CLUSTERS_CSV = "clusters.csv"
CLUSTERS_CSV_HEADER = ["source", "face", "box", "cluster", "size"]


def _props(run_id):
    from deltalake import CommitProperties

    return CommitProperties(custom_metadata={"facetag.run_id": run_id})


def _create(path, name, data, props):
    from deltalake import write_deltalake

    write_deltalake(path, data.scanner().to_reader(), name=name, description=f"facetag {name}",
                    mode="overwrite", commit_properties=props)


def _by_photo(table):
    return table.sort_by([("path", "ascending"), ("face_index", "ascending")]).to_pylist()


def _write_csv(path, header, rows):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    # Written just before store.json: a crash in between leaves a newer CSV beside the older store, which
    # the next run rewrites; the CSVs are exports, the tables are the record.
    _write_atomically(path, buf.getvalue().encode())


def _dataset(files, schema):
    # pyarrow.dataset is imported where a commit needs it: at the top it cost every run 0.12 s before its first photo.
    import pyarrow.dataset as ds

    return ds.dataset(files, schema=schema, format="parquet") if files else ds.dataset(schema.empty_table())


class _StoreLock:
    def __init__(self, store):
        self.store = store
        self.handle = None

    def __enter__(self):
        if "://" in self.store.path:
            return self  # remote stores: runs must be serialised by the scheduler (README)
        import fcntl

        os.makedirs(self.store.path, exist_ok=True)
        self.handle = open(os.path.join(self.store.path, LOCK_FILE), "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            raise StoreBusyError(f"another facetag run is writing the store {self.store.path} ({holder}); "
                                 "wait for it to finish, then run again") from None
        self.handle.seek(0)
        self.handle.truncate()
        started = datetime.datetime.now().isoformat(timespec="seconds")
        self.handle.write(f"pid {os.getpid()}, started {started}")
        self.handle.flush()
        return self

    def __exit__(self, *exc):
        if self.handle:
            self.handle.close()  # releases the flock


def _read_bytes(path):
    if "://" not in path:
        with open(path, "rb") as f:
            return f.read()
    from apache_beam.io.filesystems import FileSystems

    if not FileSystems.exists(path):
        raise FileNotFoundError(path)
    with FileSystems.open(path) as f:
        return f.read()


def _write_atomically(path, data):
    """Replace ``path`` with ``data`` at once: a reader sees the old or the new file, never a part."""
    if "://" not in path:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return
    # Object stores replace an object whole on upload: a reader never sees half of it.
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path) as f:
        f.write(data)


def _delete_tree(path):
    if "://" not in path:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        return
    from apache_beam.io.filesystems import FileSystems

    if FileSystems.exists(path):
        FileSystems.delete([path])
