"""Writing the encode and enroll jobs' outputs: faces as Parquet, photos without a face or failed as JSON Lines."""

import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from facetag.io.files import filesystems, is_remote
from facetag.pipeline.outcomes import FAILED, NO_FACE
from facetag.pipeline.records import face_schema


def write_faces(faces, out_dir, model_id, encoding_size, name="faces"):
    return faces | f"Write {name} Parquet" >> beam.io.WriteToParquet(
        FileSystems.join(out_dir, name), face_schema(model_id, encoding_size), file_name_suffix=".parquet")


def write_outcomes(records, out_dir, name):
    """``{source, reason}`` records as one JSON Lines file, ``<out_dir>/<name>.jsonl``.

    On an object store an empty file is not written: Beam's S3 writer cannot (it completes a multipart
    upload of no part, which S3 refuses), so there no file means no such photo.
    """
    return (
        records
        | f"Format {name}" >> beam.Map(json.dumps)
        | f"Write {name}" >> beam.io.WriteToText(FileSystems.join(out_dir, name), file_name_suffix=".jsonl",
                                                  shard_name_template="", skip_if_empty=is_remote(out_dir))
    )


def earlier_outputs(out_dir, faces_name="faces"):
    """Files an earlier run of the encode or enroll job left in ``out_dir``."""
    patterns = [FileSystems.join(out_dir, f"{faces_name}-*.parquet")] + [
        FileSystems.join(out_dir, f"{name}.jsonl") for name in (NO_FACE, FAILED)]
    return [m.path for result in filesystems().match(patterns) for m in result.metadata_list]


def write_encoded(encoded, out_dir, model_id, encoding_size, faces_name="faces"):
    """The three outcomes of encoding photos: faces Parquet, no_face.jsonl, failed.jsonl."""
    faces, no_face, failed = encoded
    write_faces(faces, out_dir, model_id, encoding_size, faces_name)
    write_outcomes(no_face, out_dir, NO_FACE)
    write_outcomes(failed, out_dir, FAILED)
