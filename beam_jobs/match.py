"""Match every face of an archive store against a gallery index again, without detecting or encoding.

    python -m beam_jobs.match --store out/archive --index out/index [Beam options]

``facetag tag`` does this by itself when it finds that the index changed since
the store's last run; this job does only that, for example right after
``facetag enroll`` grew the gallery. The faces come from the store's ``faces``
table; the ``matches`` table is replaced in one commit.
"""

import time

import apache_beam as beam

from facetag.archive.store import ArchiveStore
from facetag.pipeline.archive import FacesOfPresentPhotos
from facetag.pipeline.match import FaceLabels, add_match_arguments, matcher
from facetag.pipeline.options import add_config_argument, counters, new_parser, pipeline_options
from facetag.pipeline.running import job_main, running
from facetag.pipeline.store import StoreRun, read_table, stage_rows, staged_files


def parse_known_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("--store", required=True, help="an archive store written by facetag tag")
    add_match_arguments(parser)
    add_config_argument(parser)
    return parser.parse_known_args(argv)


def run(argv=None, test_pipeline=None):
    started = time.perf_counter()
    args, pipeline_args = parse_known_args(argv)
    store = ArchiveStore(args.store)
    model_id = store.model_id
    match, current_index = matcher(args, model_id)
    with StoreRun(store) as run:
        run_id, staging = run.run_id, run.staging
        pipeline = test_pipeline or beam.Pipeline(options=pipeline_options(args.config, pipeline_args))
        with running(pipeline) as p:
            faces = ((read_table(p, store, "photos", ["path", "outcome"]), read_table(p, store, "faces"))
                     | "Faces of present photos" >> FacesOfPresentPhotos())
            labels = read_table(p, store, "labels") | "Labels" >> FaceLabels()
            matches = faces | "Match faces" >> beam.ParDo(match, labels=beam.pvalue.AsDict(labels))
            stage_rows(matches, staging, "matches", model_id)
        staged = {"photos": [], "faces": [], "matches": staged_files(staging, "matches")}
        c = counters(pipeline.result)
        store.commit(run_id=run_id, model_id=model_id, index_id=current_index, staged=staged, rematched_all=True,
                     labels_version=store.version("labels"))
    line = (f"facetag: {c.get('faces_identified', 0) + c.get('faces_unknown', 0)} faces matched against "
            f"{args.index}: {c.get('faces_identified', 0)} identified, {c.get('faces_unknown', 0)} unknown; "
            f"{time.perf_counter() - started:.1f} s")
    print(line)
    return c


if __name__ == "__main__":
    job_main(run)
