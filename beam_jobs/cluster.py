"""Group an archive store's unknown faces into people: one cluster per person, for a person to name once.

    python -m beam_jobs.cluster --store out/archive [--threshold T] [Beam options]

The faces whose current match is ``unknown`` are clustered (facetag.pipeline.cluster: neighbours
from an HNSW graph in parallel DoFns, then the graph step in one place), except those a person named or
hid since (the labels table); clusters a person merged stay merged (facetag.identity.words). The store's
``clusters`` table is replaced in one commit and ``clusters.csv`` written beside it. Cluster ids carry over from the
previous run by overlap, so ``facetag name STORE --cluster ID`` keeps meaning the same people after
new photos arrive. Faces alone (or only like faces of their own photo) get no cluster, nor do faces
whose quality is under ``--min_quality`` (the review page lists them as too unsure to group).
"""

import time

import apache_beam as beam

from facetag._testing.faults import kill_point
from facetag.archive.exports import CLUSTERS_CSV
from facetag.archive.store import ArchiveStore
from facetag.identity.clustering import DEFAULT_MIN_QUALITY, too_unsure
from facetag.identity.matching import UNKNOWN
from facetag.pipeline.cluster import ClusterFaces, MergeSaidClusters
from facetag.pipeline.match import FaceLabels
from facetag.pipeline.options import add_config_argument, new_parser, pipeline_options
from facetag.pipeline.running import job_main, running
from facetag.pipeline.store import StoreRun, read_table, stage_rows, staged_files
from facetag.vision.models import cluster_threshold_of


def parse_known_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("--store", required=True, help="an archive store written by facetag tag")
    parser.add_argument("--threshold", type=float,
                        help="largest distance between two faces linked as one person (default: the store's model's, "
                             "facetag.vision.models.CLUSTER_THRESHOLDS)")
    parser.add_argument("--min_quality", type=float, default=DEFAULT_MIN_QUALITY,
                        help="faces of a lower quality (0-1, facetag.vision.quality) are left out of clusters; "
                             f"default {DEFAULT_MIN_QUALITY:g}: none is (on lfw_dev every gate cost more than it "
                             "gained, see facetag.identity.clustering.DEFAULT_MIN_QUALITY)")
    add_config_argument(parser)
    return parser.parse_known_args(argv)


def _unknown_faces(element):
    _, joined = element
    said = joined["words"][0] if joined["words"] else None
    if said is not None and (said.hidden or said.is_name):
        return
    if joined["unknown"] and joined["faces"]:
        face = joined["faces"][0]
        yield {"face_id": face["face_id"], "path": face["path"], "encoding": face["encoding"],
               "quality": face["quality"]}


def run(argv=None, test_pipeline=None):
    """Cluster the store's unknown faces; returns the summary dict (also printed as one line)."""
    started = time.perf_counter()
    args, pipeline_args = parse_known_args(argv)
    store = ArchiveStore(args.store)
    model_id = store.model_id
    threshold = args.threshold if args.threshold is not None else cluster_threshold_of(model_id)
    with StoreRun(store) as run:
        run_id, staging = run.run_id, run.staging
        pipeline = test_pipeline or beam.Pipeline(options=pipeline_options(args.config, pipeline_args))
        with running(pipeline) as p:
            words = read_table(p, store, "labels") | "Labels" >> FaceLabels()
            unknown = ({"unknown": (read_table(p, store, "matches", ["face_id", "identity"])
                                    | "Unknown faces" >> beam.Filter(lambda m: m["identity"] == UNKNOWN)
                                    | "Key unknown" >> beam.Map(lambda m: (m["face_id"], None))),
                        "faces": (read_table(p, store, "faces", ["face_id", "path", "encoding", "quality"])
                                  | "Key faces" >> beam.Map(lambda f: (f["face_id"], f))),
                        "words": words}
                       | "Join unknown and faces" >> beam.CoGroupByKey()
                       | "Encodings of unknown faces" >> beam.FlatMap(_unknown_faces))
            previous = (read_table(p, store, "clusters", ["face_id", "cluster_id"])
                        | "Previous clusters" >> beam.Filter(lambda r: r["cluster_id"] is not None))
            clusters = unknown | "Cluster" >> ClusterFaces(
                work_dir=store.join("_staging", run_id, "neighbours"), threshold=threshold, previous=previous,
                min_quality=args.min_quality) | "Keep merged clusters merged" >> MergeSaidClusters(words)
            stage_rows(clusters, staging, "clusters", model_id)
        kill_point("staged")
        store.replace_table(run_id, "clusters", staged_files(staging, "clusters"),
                            fields={"cluster_min_quality": args.min_quality})
    rows = store.read("clusters", ["face_id", "cluster_id"])
    clustered = [c for c in rows.column("cluster_id").to_pylist() if c is not None]
    summary = {"unknown_faces": rows.num_rows, "clusters": len(set(clustered)), "faces_in_clusters": len(clustered),
               "faces_alone": rows.num_rows - len(clustered), "faces_too_unsure": _too_unsure(store, rows, args.min_quality),
               "seconds": round(time.perf_counter() - started, 1)}
    print(f"facetag: {summary['unknown_faces']} unknown faces: {summary['clusters']} clusters "
          f"({summary['faces_in_clusters']} faces), {summary['faces_alone']} alone "
          f"({summary['faces_too_unsure']} of them too unsure to group); {store.join(CLUSTERS_CSV)}; {summary['seconds']} s")
    return summary


def _too_unsure(store, clusters, min_quality):
    """How many of the unknown faces the quality gate left out."""
    if min_quality <= 0:
        return 0
    alone = {f for f, c in zip(clusters.column("face_id").to_pylist(), clusters.column("cluster_id").to_pylist())
             if c is None}
    faces = store.read("faces", ["face_id", "quality"])
    return sum(f in alone and too_unsure(q, min_quality)
               for f, q in zip(faces.column("face_id").to_pylist(), faces.column("quality").to_pylist()))


if __name__ == "__main__":
    job_main(run)
