"""The archive store seen from a pipeline: its tables read in parallel, a run's rows staged as Parquet."""

import glob

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from facetag.store import schema_of


def read_table(pipeline, store, name, columns=None):
    """The rows (dicts) of the store's table ``name`` at its current version; none for a new store."""
    files = store.files(name)
    if not files:
        return pipeline | f"No stored {name}" >> beam.Create([])
    return (pipeline
            | f"List stored {name} files" >> beam.Create(files)
            | f"Read stored {name}" >> beam.io.ReadAllFromParquet(columns=columns))


def stage_rows(rows, staging_dir, name, model_id):
    """Write a run's ``name`` rows as ``<staging_dir>/<name>-*.parquet``, for the store to commit."""
    return rows | f"Stage {name}" >> beam.io.WriteToParquet(
        FileSystems.join(staging_dir, name), schema_of(name, model_id), file_name_suffix=".parquet")


def staged_files(staging_dir, name):
    """The Parquet files stage_rows wrote for ``name``, once the pipeline has finished."""
    pattern = FileSystems.join(staging_dir, f"{name}-*.parquet")
    if "://" not in staging_dir:
        return sorted(glob.glob(pattern))
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
