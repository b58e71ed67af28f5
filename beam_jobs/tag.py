"""Tag an archive into its archive store, doing only the new work (what ``facetag tag`` runs).

    python -m beam_jobs.tag --input 'archive/' --index out/index --store out/archive [Beam options]

The store (facetag.archive.store) remembers every photo it has seen. A run lists the
inputs and reads only photos that are new or changed (size or modification
time); a photo whose content the store already knows (a copy, a move) takes
its stored faces; photos that are gone are marked removed. New faces are
matched against the gallery index, and when the index differs from the one of
the store's last run every stored face is matched again, without detecting
or encoding anything. The results are committed once, after the pipeline
succeeded; a run killed at any moment leaves the store as it was.
"""

import os
import time

import apache_beam as beam

from facetag._testing.faults import kill_point
from facetag.archive.maintenance import RETAIN_HOURS
from facetag.archive.store import ArchiveStore
from facetag.errors import FaceTagError
from facetag.io.files import is_remote, join
from facetag.pipeline.archive import STORED_PHOTO_COLUMNS, UpdateArchive
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
from facetag.pipeline.sources import check_patterns_match
from facetag.pipeline.store import StoreRun, read_table, stage_run_rows, staged_run_files
from facetag.vision.models import DEFAULT_MODEL, describe_model, model_named_by


def parse_known_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("--input", action="append", required=True,
                        help="photos: a file, folder (every file below it) or glob; local or gs://... (repeatable)")
    parser.add_argument("--store", required=True, help="the archive store folder (created by the first run)")
    add_match_arguments(parser)
    parser.add_argument("--no_maintenance", action="store_true",
                        help="leave the store's compaction and vacuum to 'facetag maintain' (or your own Delta jobs)")
    parser.add_argument("--retain_hours", type=int, default=RETAIN_HOURS,
                        help=f"the store's maintenance keeps files that later versions replaced this long (default "
                             f"{RETAIN_HOURS}: a week)")
    add_progress_argument(parser)
    add_model_arguments(parser, store_default=True)
    add_config_argument(parser)
    return parser.parse_known_args(argv)


def run(argv=None, test_pipeline=None):
    """Run one incremental pass; returns the summary dict (also printed as one line)."""
    started = time.perf_counter()
    args, pipeline_args = parse_known_args(argv)
    store = ArchiveStore(args.store)
    args.model = args.model or store_model(store)
    model_id, _ = describe_model(args.model)
    match, current_index = matcher(args, model_id)
    store.check_model(model_id)
    check_patterns_match(args.input)
    with StoreRun(store, maintain=not args.no_maintenance, retain_hours=args.retain_hours) as run:
        run_id, staging = run.run_id, run.staging
        labels_version = store.version("labels")
        # A new gallery, or new words from people (facetag name), change the matches of stored faces too.
        rematch_all = store.exists() and (store.index_id != current_index
                                          or store.manifest().get("labels_matched") != labels_version)
        pipeline = test_pipeline or beam.Pipeline(options=pipeline_options(args.config, pipeline_args))
        with ProgressReporter(args.progress, folder=join(staging, "progress")):
            with running(pipeline) as p:
                stored = (read_table(p, store, "photos", STORED_PHOTO_COLUMNS), read_table(p, store, "faces"),
                          read_table(p, store, "labels") | "Labels" >> FaceLabels())
                rows = stored | "Update the archive" >> UpdateArchive(
                    args.input, run_id, encoder_settings(args, p.options), match, rematch_all)
                stage_run_rows(rows, staging, model_id)
        kill_point("staged")
        summary = run_summary(counters(pipeline.result), rematch_all)
        staged = staged_run_files(staging)
        summary["seconds"] = round(time.perf_counter() - started, 1)
        committing = time.perf_counter()
        store.commit(run_id=run_id, model_id=model_id, index_id=current_index, staged=staged,
                     rematched_all=rematch_all, stats=summary, labels_version=labels_version,
                     index_dir=args.index if is_remote(args.index) else os.path.abspath(args.index))
    summary["commit_seconds"] = round(time.perf_counter() - committing, 2)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    print(summary_line(summary))
    return summary


def store_model(store):
    """The model of the store's encodings (the default for a new store); FaceTagError if this facetag lacks it."""
    if not store.exists():
        return DEFAULT_MODEL
    name = model_named_by(store.model_id)
    if name is None:
        raise FaceTagError(f"the store {store.path} holds encodings of model {store.model_id}, which this facetag "
                           "does not have: run the facetag that made it, or tag into a new --out folder")
    return name


def run_summary(c, rematched_all):
    return {
        "photos_listed": c.get("photos_listed", 0),
        "unchanged": c.get("photos_unchanged", 0),
        "new": c.get("photos_new", 0),
        "changed": c.get("photos_changed", 0),
        "reused_by_content": c.get("photos_reused", 0),
        "removed": c.get("photos_removed", 0),
        "failed": c.get("images_failed", 0),
        "no_face": c.get("images_without_face", 0),
        "faces_encoded": c.get("faces_found", 0),
        "faces_matched": c.get("faces_identified", 0) + c.get("faces_unknown", 0),
        "faces_identified": c.get("faces_identified", 0),
        "rematched_all": rematched_all,
    }


def summary_line(s):
    line = (f"facetag: {s['photos_listed']} photos listed: {s['unchanged']} unchanged, {s['new']} new, "
            f"{s['changed']} changed ({s['reused_by_content']} reused by content), {s['removed']} removed; "
            f"{s['failed']} failed, {s['no_face']} without a face; {s['faces_encoded']} faces encoded, "
            f"{s['faces_matched']} matched ({s['faces_identified']} identified)")
    if s["rematched_all"]:
        line += "; the gallery or the labels changed, so every stored face was matched again"
    return line + f"; {s['seconds']} s"


if __name__ == "__main__":
    job_main(run)
