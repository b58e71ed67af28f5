"""Encode photos to faces: photos -> faces Parquet, plus no_face.jsonl and failed.jsonl.

    python -m beam_jobs.encode --input 'photos/**' --output out/encoded [--gallery people/] [Beam options]

Every input photo ends up in exactly one output: its faces (one Parquet row
per face), ``no_face.jsonl``, or ``failed.jsonl`` with the reason.
"""

import logging

import apache_beam as beam

from facetag.datasets import read_labelled
from facetag.models import describe_model
from facetag.pipeline.encode import EncodePhotos
from facetag.pipeline.options import (add_config_argument, add_model_arguments, limits_from, new_parser,
                                      pipeline_options, summary_line, tf_threads)
from facetag.pipeline.outcomes import FAILED, NO_FACE
from facetag.pipeline.outputs import write_encoded
from facetag.pipeline.sources import ReadPhotos, check_patterns_match


def parse_known_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("--input", action="append", default=[],
                        help="photos: a file, folder, glob or TFRecord shards (repeatable)")
    parser.add_argument("--gallery", help="labelled photos: a Name/photo folder or a file,identity CSV")
    parser.add_argument("--output", required=True, help="output folder (local or gs://...)")
    add_model_arguments(parser)
    add_config_argument(parser)
    return parser.parse_known_args(argv)


def encode_photos(pipeline, args):
    """The shared first half of every job: read photos, detect, encode; returns the three outcomes."""
    labelled = read_labelled(args.gallery) if getattr(args, "gallery", None) else []
    check_patterns_match(args.input)
    limits = limits_from(args)
    photos = pipeline | "Read photos" >> ReadPhotos(args.input, labelled, limits.max_file_bytes)
    encoded = photos["photos"] | "Encode photos" >> EncodePhotos(
        args.model, args.min_score, args.margin, args.max_batch_size, tf_threads(pipeline.options, args.tf_threads),
        limits)
    failed = (photos[FAILED], encoded[FAILED]) | "All failures" >> beam.Flatten()
    return encoded["faces"], encoded[NO_FACE], failed


def run(argv=None, test_pipeline=None):
    args, pipeline_args = parse_known_args(argv)
    model_id, encoding_size = describe_model(args.model)
    pipeline = test_pipeline or beam.Pipeline(options=pipeline_options(args.config, pipeline_args))
    with pipeline as p:
        write_encoded(encode_photos(p, args), args.output, model_id, encoding_size)
    print(summary_line(pipeline.result))
    return pipeline.result


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.WARNING)
    run()
