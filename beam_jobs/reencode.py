"""Move an archive store to another encoding model, from its photos, in one run (what ``facetag reencode`` runs).

    python -m beam_jobs.reencode --store out/archive --model facetag-256 --index out/index-256 [Beam options]

Every photo the store holds with faces (or none) is read again, its faces found and encoded with
``--model``, and matched against ``--index`` (a gallery enrolled with that model). Faces keep their ids,
so people's words on them (facetag name) and the clusters hold. The store's faces and matches are then
replaced whole, in one commit: a run killed at any moment leaves the store as it was, with the model it
had. The faces people named in the store join the gallery after the commit (as ``facetag enroll --store``
adds them), so the next ``facetag tag`` matches every face against them too.
"""

import os
import time

import apache_beam as beam

from facetag._testing.faults import kill_point
from facetag.archive.naming import enrol_named_faces
from facetag.archive.store import ArchiveStore
from facetag.errors import FaceTagError
from facetag.io.files import is_remote, join
from facetag.pipeline.archive import ReencodeArchive
from facetag.pipeline.match import FaceLabels, add_match_arguments, matcher
from facetag.pipeline.options import (
    add_config_argument,
    add_model_arguments,
    counters,
    encoder_settings,
    new_parser,
    pipeline_options,
)
from facetag.pipeline.progress import ProgressReporter, add_progress_argument
from facetag.pipeline.running import job_main, running
from facetag.pipeline.store import StoreRun, read_table, stage_run_rows, staged_run_files
from facetag.vision.models import describe_model, model_named_by


def parse_known_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("--store", required=True, help="the archive store to move (facetag tag --out)")
    add_match_arguments(parser)
    add_progress_argument(parser)
    add_model_arguments(parser)
    add_config_argument(parser)
    return parser.parse_known_args(argv)


def run(argv=None, test_pipeline=None):
    """Re-encode the store; returns the summary dict (also printed as one line)."""
    started = time.perf_counter()
    args, pipeline_args = parse_known_args(argv)
    store = ArchiveStore(args.store)
    model_id, _ = describe_model(args.model)
    if store.model_id == model_id:
        raise FaceTagError(f"the store {store.path} already holds encodings of {args.model}: nothing to re-encode")
    match, index_id = matcher(args, model_id)
    with StoreRun(store) as run:
        previous = model_named_by(store.model_id) or store.model_id
        labels_version = store.version("labels")
        pipeline = test_pipeline or beam.Pipeline(options=pipeline_options(args.config, pipeline_args))
        with ProgressReporter(args.progress, folder=join(run.staging, "progress")):
            with running(pipeline) as p:
                stored = (read_table(p, store, "photos", ["path", "size", "mtime", "outcome"]),
                          read_table(p, store, "labels") | "Labels" >> FaceLabels())
                rows = stored | "Re-encode the archive" >> ReencodeArchive(
                    run.run_id, encoder_settings(args, p.options), match)
                stage_run_rows(rows, run.staging, model_id)
        kill_point("staged")
        c = counters(pipeline.result)
        summary = {"model": args.model, "previous_model": previous,
                   "photos": c.get("images_with_faces", 0) + c.get("images_without_face", 0) + c.get("images_failed", 0),
                   "failed": c.get("images_failed", 0), "no_face": c.get("images_without_face", 0),
                   "faces_encoded": c.get("faces_found", 0), "faces_identified": c.get("faces_identified", 0)}
        store.commit(run_id=run.run_id, model_id=model_id, index_id=index_id, reencoded=True, rematched_all=True,
                     staged=staged_run_files(run.staging),
                     stats=summary, labels_version=labels_version,
                     index_dir=args.index if is_remote(args.index) else os.path.abspath(args.index))
        summary["gallery_faces"] = enrol_named_faces(store, args.index)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    print(summary_line(summary))
    return summary


def summary_line(s):
    return (f"facetag: the store now holds encodings of {s['model']} (was {s['previous_model']}): {s['photos']} photos "
            f"read again, {s['failed']} failed, {s['no_face']} without a face; {s['faces_encoded']} faces encoded and "
            f"matched ({s['faces_identified']} identified); the gallery holds {s['gallery_faces']} faces; "
            f"{s['seconds']} s")


if __name__ == "__main__":
    job_main(run)
