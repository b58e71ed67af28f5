"""The archive store seen from a pipeline: its tables read in parallel, a run's rows staged as Parquet."""

import glob
import logging

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from facetag.archive.maintenance import RETAIN_HOURS, maintain_after_run
from facetag.archive.store import new_run_id
from facetag.archive.tables import schema_of
from facetag.io.files import filesystems, is_remote


def read_table(pipeline, store, name, columns=None):
    """The rows (dicts) of the store's table ``name`` at its current version; none for a new store.

    Every row has every column asked for (``columns`` None: the table's schema): a column that a file
    written before it existed lacks (``faces.quality``) is None.
    """
    files = store.files(name)
    if not files:
        return pipeline | f"No stored {name}" >> beam.Create([])
    wanted = columns or schema_of(name, store.model_id).names
    return (pipeline
            | f"List stored {name} files" >> beam.Create(files)
            | f"Spread {name} files" >> beam.Reshuffle()
            | f"Read stored {name}" >> beam.ParDo(_ReadRows(wanted)))


class _ReadRows(beam.DoFn):
    """A Parquet file of a store table -> its rows as dicts of ``columns``, None for columns the file lacks."""

    def __init__(self, columns, batch_rows=4096):
        self.columns = columns
        self.batch_rows = batch_rows

    def process(self, path):
        import pyarrow.parquet as pq

        with filesystems(path).open(path) as f:
            parquet = pq.ParquetFile(f)
            present = [c for c in self.columns if c in parquet.schema_arrow.names]
            absent = dict.fromkeys(c for c in self.columns if c not in present)
            for batch in parquet.iter_batches(batch_size=self.batch_rows, columns=present):
                for row in batch.to_pylist():
                    yield {**row, **absent}


def stage_rows(rows, staging_dir, name, model_id):
    """Write a run's ``name`` rows as ``<staging_dir>/<name>-*.parquet``, for the store to commit."""
    return rows | f"Stage {name}" >> beam.io.WriteToParquet(
        FileSystems.join(staging_dir, name), schema_of(name, model_id), file_name_suffix=".parquet")


def staged_files(staging_dir, name):
    """The Parquet files stage_rows wrote for ``name``, once the pipeline has finished."""
    pattern = FileSystems.join(staging_dir, f"{name}-*.parquet")
    if not is_remote(staging_dir):
        return sorted(glob.glob(pattern))
    return sorted(m.path for m in filesystems().match([pattern])[0].metadata_list)


#: The tables a tagging run stages and the store commits together (facetag.archive.store.ArchiveStore.commit).
RUN_TABLES = ("photos", "faces", "matches")


def stage_run_rows(rows, staging_dir, model_id):
    """Stage a run's rows of each of RUN_TABLES (``rows``: table name -> PCollection)."""
    for name in RUN_TABLES:
        stage_rows(rows[name], staging_dir, name, model_id)


def staged_run_files(staging_dir):
    """Table name -> the Parquet files stage_run_rows wrote, once the pipeline has finished."""
    return {name: staged_files(staging_dir, name) for name in RUN_TABLES}


class StoreRun:
    """A job's run on an archive store, as a context: the store locked, what a killed run left undone,
    a new run id and its staging folder (``run_id``, ``staging``); when the run committed, the store's
    maintenance (facetag.archive.maintenance) before the lock is released."""

    def __init__(self, store, maintain=True, retain_hours=RETAIN_HOURS):
        self.store = store
        self.maintain = maintain
        self.retain_hours = retain_hours
        self.lock = store.lock()

    def __enter__(self):
        self.lock.__enter__()
        try:
            self.store.manifest(reload=True)  # as the last run left it, which this run's commit must replace
            restored = self.store.recover()
        except BaseException:
            self.lock.__exit__(None, None, None)
            raise
        if restored:
            logging.getLogger("facetag").warning(
                "facetag: the previous run on %s stopped before it committed; its partial writes to %s were "
                "undone, and this run does its work", self.store.path, ", ".join(restored))
        self.run_id = new_run_id()
        self.staging = self.store.staging_dir(self.run_id)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            manifest = self.store.manifest() if exc_type is None and self.maintain else None
            if manifest and manifest.get("run_id") == self.run_id:  # this run committed: keep the store healthy
                maintain_after_run(self.store, self.run_id, self.retain_hours)
        finally:
            self.lock.__exit__(exc_type, exc, tb)
