"""Encode photos to faces: photos -> faces Parquet, plus no_face.jsonl and failed.jsonl.

    python -m beam_jobs.encode --input 'photos/**' --output out/encoded [--gallery people/] [Beam options]

Every input photo ends up in exactly one output: its faces (one Parquet row
per face), ``no_face.jsonl``, or ``failed.jsonl`` with the reason.
"""


import apache_beam as beam

from facetag.errors import FaceTagError
from facetag.io.datasets import read_labelled
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
    parser.add_argument("--input", action="append", default=[],
                        help="photos: a file, folder, glob or TFRecord shards (repeatable)")
    parser.add_argument("--gallery", help="labelled photos: a Name/photo folder or a file,identity CSV")
    parser.add_argument("--output", required=True, help="output folder (local or gs://...)")
    add_model_arguments(parser)
    add_config_argument(parser)
    return parser.parse_known_args(argv)


def run(argv=None, test_pipeline=None):
    args, pipeline_args = parse_known_args(argv)
    model_id, encoding_size = describe_model(args.model)
    if earlier_outputs(args.output):
        # Shards of two runs would mix (a runner with more workers writes more shards): refuse, don't guess.
        raise FaceTagError(f"{args.output} already holds the results of an earlier run; give an empty or new "
                           "--output folder (or use 'facetag tag', whose archive store updates in place)")
    pipeline = test_pipeline or beam.Pipeline(options=pipeline_options(args.config, pipeline_args))
    with running(pipeline) as p:
        labelled = read_labelled(args.gallery) if args.gallery else []
        encoded = read_and_encode(p, args.input, labelled, encoder_settings(args, p.options))
        write_encoded(encoded, args.output, model_id, encoding_size)
    print(summary_line(pipeline.result))
    return pipeline.result


if __name__ == "__main__":
    job_main(run)
