"""Tag faces against a gallery index: faces Parquet (or photos) -> matches Parquet and matches.csv.

    python -m beam_jobs.match --faces 'out/photos/faces-*.parquet' --index out/index --output out/tagged
    python -m beam_jobs.match --input 'archive/**' --index out/index --output out/tagged

With ``--input`` the photos are encoded first (faces, no_face and failed are
written beside the matches). The index must come from the same model as the
faces; a mismatch stops the job before any work.
"""

import logging

import apache_beam as beam

from facetag.errors import FaceTagError
from facetag.gallery_index import check_same_model, read_index_metadata
from facetag.models import IDENTIFY_THRESHOLDS, describe_model
from facetag.pipeline.match import MatchFaces
from facetag.pipeline.options import add_config_argument, add_model_arguments, new_parser, pipeline_options, summary_line
from facetag.pipeline.outputs import write_encoded, write_matches

from beam_jobs.encode import encode_photos
from beam_jobs.index import faces_model_id


def parse_known_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("--faces", help="glob of faces Parquet files written by the encode job")
    parser.add_argument("--input", action="append", default=[], help="photos to encode first (repeatable)")
    parser.add_argument("--index", required=True, help="index folder written by the index job or facetag enroll")
    parser.add_argument("--output", required=True, help="output folder (local or gs://...)")
    parser.add_argument("--threshold", type=float, help="largest distance still a match (default: the model's 1:K threshold)")
    parser.add_argument("--top_k", type=int, default=5, help="candidate identities listed per face")
    parser.add_argument("--search_k", type=int,
                        help="tree nodes Annoy inspects per query (default: the index's, chosen for its size; "
                             "more: exacter, slower)")
    add_model_arguments(parser)
    add_config_argument(parser)
    return parser.parse_known_args(argv)


def run(argv=None, test_pipeline=None):
    args, pipeline_args = parse_known_args(argv)
    if bool(args.faces) == bool(args.input):
        raise FaceTagError("give either --faces (encoded faces) or --input (photos to encode), not both or neither")
    index_meta = read_index_metadata(args.index)
    if args.faces:
        model_id, what = faces_model_id(args.faces), f"the faces in {args.faces}"
    else:
        model_id, what = describe_model(args.model)[0], f"--model {args.model}"
    check_same_model(index_meta, model_id, what)
    threshold = args.threshold if args.threshold is not None else IDENTIFY_THRESHOLDS[model_id.split(":")[0]]
    encoding_size = index_meta["encoding_size"]

    pipeline = test_pipeline or beam.Pipeline(options=pipeline_options(args.config, pipeline_args))
    with pipeline as p:
        if args.faces:
            faces = p | "Read faces" >> beam.io.ReadFromParquet(args.faces)
        else:
            encoded = encode_photos(p, args)
            write_encoded(encoded, args.output, model_id, encoding_size)
            faces = encoded[0]
        matches = faces | "Match faces" >> beam.ParDo(MatchFaces(args.index, threshold, args.top_k, args.search_k))
        write_matches(matches, args.output, model_id, encoding_size)
    print(summary_line(pipeline.result))
    return pipeline.result


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.WARNING)
    run()
