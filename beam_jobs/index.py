"""Build the gallery index: labelled faces Parquet -> an index folder (Annoy + items + metadata).

    python -m beam_jobs.index --faces 'out/gallery/faces-*.parquet' --out out/index [Beam options]

Refuses faces from more than one model: their encodings cannot share an index.
"""


import apache_beam as beam

from facetag.pipeline.index import BuildIndex
from facetag.pipeline.options import add_config_argument, new_parser, pipeline_options
from facetag.pipeline.records import faces_model_id
from facetag.pipeline.running import job_main, running


def parse_known_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("--faces", required=True, help="glob of faces Parquet files written by the encode job")
    parser.add_argument("--out", required=True, help="index folder to write (local or gs://...)")
    parser.add_argument("--trees", type=int, help="Annoy trees (default: 32, or 64 above 200,000 faces)")
    add_config_argument(parser)
    return parser.parse_known_args(argv)


def run(argv=None, test_pipeline=None):
    args, pipeline_args = parse_known_args(argv)
    model_id = faces_model_id(args.faces)
    pipeline = test_pipeline or beam.Pipeline(options=pipeline_options(args.config, pipeline_args))
    with running(pipeline) as p:
        (p
         | "Read faces" >> beam.io.ReadFromParquet(args.faces)
         | "Index gallery" >> BuildIndex(args.out, model_id, args.trees))
    print(f"facetag: index written to {args.out}")
    return pipeline.result


if __name__ == "__main__":
    job_main(run)
