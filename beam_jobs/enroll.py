"""Enrol a gallery: labelled photos -> faces Parquet and the index folder, in one pipeline.

    python -m beam_jobs.enroll --gallery people/ --out out/index [Beam options]

``--gallery`` is a folder of ``Name/photo`` files or a CSV of ``uri,identity``.
Each photo's main face (largest, most central) is enrolled under its name.
Faces, photos without a face and failures are written into the index folder
too (``gallery_faces-*.parquet``, ``no_face.jsonl``, ``failed.jsonl``).
"""


import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from facetag.archive.naming import enrol_named_faces
from facetag.archive.store import ArchiveStore
from facetag.io.datasets import read_labelled
from facetag.pipeline.index import BuildIndex
from facetag.pipeline.options import (
    add_config_argument,
    add_model_arguments,
    encoder_settings,
    new_parser,
    pipeline_options,
    summary_line,
)
from facetag.pipeline.outputs import earlier_outputs, write_encoded
from facetag.pipeline.running import job_main, running
from facetag.pipeline.sources import read_and_encode
from facetag.vision.models import describe_model


def parse_known_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("--gallery", required=True, help="a Name/photo folder or a uri,identity CSV")
    parser.add_argument("--out", required=True, help="index folder to write (local or gs://...)")
    parser.add_argument("--trees", type=int, help="Annoy trees (default: 32, or 64 above 200,000 faces)")
    parser.add_argument("--store", help="an archive store: also enrol the faces people named there (facetag name), "
                        "from their stored encodings")
    add_model_arguments(parser)
    add_config_argument(parser)
    return parser.parse_known_args(argv)


def run(argv=None, test_pipeline=None):
    args, pipeline_args = parse_known_args(argv)
    model_id, encoding_size = describe_model(args.model)
    stale = earlier_outputs(args.out, "gallery_faces")
    if stale:  # re-enrolling replaces the gallery: an earlier run's shards must not mix with this one's
        FileSystems.delete(stale)
    pipeline = test_pipeline or beam.Pipeline(options=pipeline_options(args.config, pipeline_args))
    with running(pipeline) as p:
        encoded = read_and_encode(p, [], read_labelled(args.gallery), encoder_settings(args, p.options))
        write_encoded(encoded, args.out, model_id, encoding_size, faces_name="gallery_faces")
        faces = encoded[0]
        faces | "Index gallery" >> BuildIndex(args.out, model_id, args.trees)
    print(summary_line(pipeline.result))
    if args.store:
        store = ArchiveStore(args.store)
        with store.lock():
            size = enrol_named_faces(store, args.out)
        print(f"facetag: the faces named in {args.store} enrolled too: the gallery holds {size} faces")
    return pipeline.result


if __name__ == "__main__":
    job_main(run)
