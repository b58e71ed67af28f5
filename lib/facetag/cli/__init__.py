"""The ``facetag`` command line. Exit codes: 0 done, 1 a file could not be read or used, 2 usage error."""

import argparse
import json
import logging
import os
import sys

import numpy as np

from facetag.vision.alignment import DEFAULT_MARGIN
from facetag.errors import FaceTagError
from facetag.vision.models import DEFAULT_MODEL, available_models


def _add_model_options(parser):
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=available_models(),
                        help=f"encoding model (default {DEFAULT_MODEL})")
    parser.add_argument("--json", action="store_true", help="print JSON for machines instead of text")


def _face_json(face):
    return {"box": list(face.box), "score": round(face.score, 4),
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in face.landmarks]}


def _emit(args, data, text_lines):
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print("\n".join(text_lines))


def cmd_faces(args):
    from facetag.api import find_faces

    faces = find_faces(args.photo, args.model)
    _emit(args, {"photo": args.photo, "faces": [_face_json(f) for f in faces]},
          [f"{args.photo}: {len(faces)} face(s)"]
          + [f"  face {i}: box (left, top, right, bottom) {f.box}, score {f.score:.3f}" for i, f in enumerate(faces)])


def _load_gallery(args):
    from facetag.vision.analyzer import FaceAnalyzer
    from facetag.identity.gallery import Gallery

    gallery = Gallery.from_folder(args.gallery, FaceAnalyzer(model=args.model), threshold=args.threshold)
    for path, reason in gallery.skipped_:
        print(f"warning: gallery photo {path} not enrolled: {reason}", file=sys.stderr)
    return gallery


def cmd_verify(args):
    from facetag.api import verify, verify_claim

    if args.claim:
        if not args.gallery or args.photo_b:
            raise UsageError("--claim NAME takes one photo and --gallery DIR")
        result = verify_claim(args.photo_a, args.claim, _load_gallery(args), args.model)
        subject = f"{args.photo_a} is {args.claim}"
    else:
        if not args.photo_b:
            raise UsageError("give two photos, or one photo with --claim NAME --gallery DIR")
        result = verify(args.photo_a, args.photo_b, args.threshold, args.model)
        subject = f"{args.photo_a} and {args.photo_b} are the same person"
    verdict = "yes" if result.same else "no"
    _emit(args, {"same": result.same, "distance": round(result.distance, 4), "threshold": result.threshold},
          [f"{subject}: {verdict} (distance {result.distance:.3f}, threshold {result.threshold:.2f})"])


def cmd_identify(args):
    from facetag.api import identify

    gallery = _load_gallery(args)
    results = identify(args.photo, gallery, args.model)
    data = [{**_face_json(face), "identity": m.identity, "distance": round(m.distance, 4),
             "candidates": [[name, round(d, 4)] for name, d in m.candidates]} for face, m in results]
    lines = [f"{args.photo}: {len(results)} face(s)"]
    lines += [f"  face {i} at {face.box}: {m.identity} (distance {m.distance:.3f}; nearest {m.candidates[0][0]})"
              for i, (face, m) in enumerate(results)]
    _emit(args, {"photo": args.photo, "faces": data}, lines)


def _progress(label):
    """A progress line on stderr, drawn only on a terminal (a log file gets no carriage-return clutter)."""
    def show(done, total):
        if sys.stderr.isatty():
            print(f"\r{label}: {done}/{total} photos", end="" if done < total else "\n", file=sys.stderr, flush=True)

    return show


def cmd_evaluate(args):
    from facetag.learn.evaluation import evaluate_pairs, plot_roc, read_pairs
    from facetag.vision.models import load_model

    pairs = read_pairs(args.pairs, args.images)
    report = evaluate_pairs(pairs, load_model(args.model), args.margin, args.on_miss, _progress("detect + encode"))
    if args.roc:
        plot_roc(report, args.roc)
    public = {k: v for k, v in report.items() if not k.startswith("_")}
    lines = [
        f"model {report['model']} ({report['model_id']})",
        f"{report['pairs']} pairs, {report['photos']} photos, {report['folds']} folds",
        f"{report['folds']}-fold accuracy: {100 * report['accuracy_mean']:.2f}% ± {100 * report['accuracy_std']:.2f}"
        " (threshold chosen on the other folds)",
        f"ROC AUC: {report['roc_auc']:.4f}",
        f"TAR at FAR=1e-3: {100 * report['tar_at_far_1e-3']:.1f}%   TAR at FAR=1e-2: {100 * report['tar_at_far_1e-2']:.1f}%",
        f"best global threshold: {report['best_threshold']:.3f}",
        f"threshold for FAR<=1e-3: {report['threshold_at_far_1e-3']:.3f}   for FAR<=1e-2: {report['threshold_at_far_1e-2']:.3f}",
        f"photos where the detector found no face: {report['photos_without_face']} "
        f"(in {report['pairs_with_a_missed_face']} pairs; "
        + ("the photo's centre was encoded instead)" if report["on_miss"] == "centre" else "those pairs count as 'different')"),
        f"time per photo (detect + encode): {report['seconds_per_photo']:.3f} s"
        + (f" over the {report['photos_computed']} photos not yet cached" if report["photos_computed"] else " (all cached)"),
    ]
    for kind, part in report["by_colour"].items():
        lines.append(f"{kind} pairs ({part['pairs']}, {part['same_pairs']} same): accuracy {100 * part['accuracy']:.2f}%, "
                     f"ROC AUC {part['roc_auc']:.4f}, TAR at FAR=1e-3 {100 * part['tar_at_far_1e-3']:.1f}%")
    if args.roc:
        lines.append(f"ROC curve written to {args.roc}")
    _emit(args, public, lines)


def cmd_calibrate(args):
    from facetag.learn.evaluation import evaluate_pairs, read_pairs, threshold_at_far
    from facetag.vision.models import load_model

    pairs = read_pairs(args.pairs, args.images)
    report = evaluate_pairs(pairs, load_model(args.model), args.margin, args.on_miss, _progress("detect + encode"))
    same = np.array([p.same for p in pairs])
    threshold = threshold_at_far(report["_distances"], same, args.far)
    _emit(args, {"model": args.model, "far": args.far, "threshold": threshold},
          [f"{args.model}: threshold {threshold:.3f} keeps the false-accept rate at or below {args.far:g} "
           f"on these {len(pairs)} pairs"])


def cmd_train(args):
    from facetag.io.datasets import pair_people, read_labelled
    from facetag.learn.training import train_head_from_photos

    excluded = set()
    for pairs_file in args.exclude_pairs:
        excluded |= pair_people(pairs_file)
    photos = [(path, who) for source in args.data for path, who in read_labelled(source) if who not in excluded]
    record = train_head_from_photos(photos, args.out, steps=args.steps, log=lambda m: print(m, file=sys.stderr),
                                    progress=_progress("encode training photos"))
    record["excluded_people"] = len(excluded)
    print(json.dumps(record, indent=2) if args.json else
          f"trained on {record['photos']} photos of {record['people']} people "
          f"({len(excluded)} people of the pairs files left out); head written to {args.out}")


def cmd_enroll(args):
    from beam_jobs import enroll

    enroll.run(["--gallery", args.gallery, "--out", args.out, "--model", args.model,
                *(["--store", args.store] if args.store else []), *args.beam_args])
    print(f"index written to {args.out}")


def cmd_tag(args):
    from beam_jobs import tag
    from facetag.archive.store import MATCHES_CSV, ArchiveStore

    summary = tag.run(["--input", args.photos, "--index", args.index, "--store", args.out, "--model", args.model,
                       *(["--progress"] if args.progress else []), *args.beam_args])
    if args.json:
        print(json.dumps(summary))
        return
    store = ArchiveStore(args.out)
    rows = store.read("matches", columns=["path", "face_index", "box", "identity", "distance"]).sort_by(
        [("path", "ascending"), ("face_index", "ascending")]).to_pylist()
    print(f"\n{len(rows)} face(s) tagged in the archive; results in {args.out} ({MATCHES_CSV}, Delta tables "
          "photos, faces, matches)\n")
    table = [["source", "face", "box", "identity", "distance"]] + [
        [r["path"], str(r["face_index"]), " ".join(map(str, r["box"])), r["identity"], f"{r['distance']:.4f}"]
        for r in rows[: args.show]]
    print(_table(table))
    if len(rows) > args.show:
        print(f"... {len(rows) - args.show} more rows in {store.join(MATCHES_CSV)}")


def cmd_cluster(args):
    from beam_jobs import cluster

    summary = cluster.run(["--store", args.store, *(["--threshold", str(args.threshold)] if args.threshold else []),
                           *args.beam_args])
    if args.json:
        print(json.dumps(summary))


def cmd_name(args):
    from facetag.archive.naming import Word, name_faces, read_names_csv
    from facetag.archive.store import IS, IS_NOT

    if args.from_csv:
        if args.cluster is not None or args.face or args.name or args.not_name:
            raise UsageError("--from takes its clusters and names from the file: give nothing else")
        words = read_names_csv(args.from_csv)
    elif (args.cluster is None) == (args.face is None):
        raise UsageError("give --cluster ID or --face FACE_ID (or --from names.csv)")
    elif args.cluster is not None:
        if not args.name or args.not_name:
            raise UsageError("a cluster is named with --as NAME")
        words = [Word(args.name, cluster=args.cluster)]
    else:
        if bool(args.name) == bool(args.not_name):
            raise UsageError("a face takes --as NAME or --not NAME")
        words = [Word(args.name or args.not_name, face=args.face, verdict=IS if args.name else IS_NOT)]
    summary = name_faces(args.store, words, args.index)
    lines = [f"{summary['labels']} face(s) labelled in {args.store}"]
    if summary["faces_named"]:
        lines.append(f"{summary['faces_named']} face(s) of {', '.join(summary['names'])} enrolled in the gallery "
                     f"{summary['index']} (now {summary['gallery_faces']} faces)")
    lines.append("the next 'facetag tag' applies this to every face of the archive")
    _emit(args, summary, lines)
def _store_results(args):
    from facetag.archive.results import open_store, read_results

    return read_results(open_store(args.store))


def cmd_review(args):
    from facetag.archive.review import write_review

    results = _store_results(args)
    threshold = args.threshold if args.threshold is not None else results.identify_threshold()
    summary = write_review(results, args.out, args.store, threshold, None if args.json else _progress("thumbnails"))
    for path, reason in summary["thumbnails_unreadable"]:
        print(f"warning: no thumbnails for {path}: {reason}", file=sys.stderr)
    clusters = "no clusters" if summary["clusters"] is None else f"{summary['clusters']} clusters"
    _emit(args, summary, [
        f"{summary['photos']} photos, {summary['faces']} faces: {summary['identified']} identified "
        f"({summary['identities']} people), {summary['unknown']} unknown ({clusters}); "
        f"{summary['no_face']} without a face, {summary['failed']} failed",
        f"{summary['thumbnails_written']} new thumbnails; open {summary['page']} in a browser"])


def cmd_xmp(args):
    from facetag.archive.xmp import write_xmp

    if args.embed and args.out:
        raise UsageError("--embed writes into the photos and --out is for sidecars: give one of them")
    failures = []

    def on_error(path, message):
        failures.append({"photo": path, "reason": message})
        print(f"facetag: error: {message}", file=sys.stderr)

    counts = write_xmp(_store_results(args), out_dir=args.out, embed_in_photo=args.embed,
                       unknown_regions=args.unknown_regions, on_error=on_error)
    where = "embedded in the photos" if args.embed else ("sidecars under " + args.out if args.out else
                                                           "sidecars beside the photos")
    _emit(args, {**counts, "failures": failures}, [
        f"XMP {where}: {counts['written']} written, {counts['unchanged']} unchanged, "
        f"{counts['skipped']} with no named face, {counts['failed']} failed; {counts['regions']} face regions"])
    if failures:
        raise FaceTagError(f"the XMP of {len(failures)} photo(s) could not be written (the reasons are above)")


def _table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


class UsageError(Exception):
    pass


def build_parser():
    parser = argparse.ArgumentParser(prog="facetag", description="Find, verify and identify faces in photos.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("faces", help="list the faces in a photo")
    p.add_argument("photo")
    _add_model_options(p)
    p.set_defaults(func=cmd_faces)

    p = sub.add_parser("verify", help="are two photos the same person? or: is this photo the claimed person?")
    p.add_argument("photo_a", metavar="PHOTO")
    p.add_argument("photo_b", metavar="PHOTO_B", nargs="?")
    p.add_argument("--claim", metavar="NAME", help="the person the photo claims to be (needs --gallery)")
    p.add_argument("--gallery", metavar="DIR", help="folder of Name/*.jpg enrolled photos")
    p.add_argument("--threshold", type=float, help="largest distance still the same person (default: the model's)")
    _add_model_options(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("identify", help="name every face in a photo from a gallery, or 'unknown'")
    p.add_argument("photo")
    p.add_argument("--gallery", metavar="DIR", required=True, help="folder of Name/*.jpg enrolled photos")
    p.add_argument("--threshold", type=float, help="largest distance still a match (default: the model's)")
    _add_model_options(p)
    p.set_defaults(func=cmd_identify)

    for name, func, text in (("evaluate", cmd_evaluate, "verification accuracy on LFW-format pairs"),
                             ("calibrate", cmd_calibrate, "the threshold for a target false-accept rate")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--pairs", required=True, help="pairs file: 'folds<TAB>n' then same/different lines")
        p.add_argument("--images", required=True, help="folder of Name/Name_NNNN.jpg photos")
        p.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help="crop margin (fraction of the box)")
        p.add_argument("--on-miss", choices=["centre", "fail"], default="centre",
                       help="a photo with no detected face: encode its centre, or count its pairs as failures")
        _add_model_options(p)
        p.set_defaults(func=func)
    p.add_argument("--far", type=float, default=1e-3, help="target false-accept rate (default 1e-3)")
    subs = sub.choices
    subs["evaluate"].add_argument("--roc", metavar="PNG", help="write the ROC curve to this PNG file")

    p = sub.add_parser("enroll", help="encode a gallery of known people and build its index (a Beam job)",
                       description="Extra options go to Beam: --runner, --direct_num_workers, --config FILE, ...")
    p.add_argument("gallery", help="folder of Name/photo files, or a CSV of uri,identity")
    p.add_argument("--out", required=True, help="index folder to write")
    p.add_argument("--store", help="an archive store whose named faces (facetag name) join the gallery too")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=available_models())
    p.set_defaults(func=cmd_enroll, beam=True)

    p = sub.add_parser("tag", help="tag every face in a photo archive against an index (a Beam job); re-runs "
                       "do only the new work",
                       description="Extra options go to Beam: --runner, --direct_num_workers, --config FILE, ...")
    p.add_argument("photos", help="a folder (every file below it) or a glob, local or gs://")
    p.add_argument("--index", required=True, help="index folder written by 'facetag enroll'")
    p.add_argument("--out", required=True, help="the archive store: a folder of Delta tables, created by the "
                   "first run and updated by the next ones")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=available_models())
    p.add_argument("--show", type=int, default=50, help="result rows to print (default 50)")
    p.add_argument("--progress", action="store_true",
                   help="show the progress line even when stderr is not a terminal (local runners)")
    p.add_argument("--json", action="store_true", help="print the run's summary as one JSON object")
    p.set_defaults(func=cmd_tag, beam=True)

    p = sub.add_parser("cluster", help="group the archive's unknown faces into people (a Beam job)",
                       description="Extra options go to Beam: --runner, --direct_num_workers, --config FILE, ...")
    p.add_argument("store", help="an archive store (facetag tag --out)")
    p.add_argument("--threshold", type=float, help="largest distance between two faces linked as one person")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_cluster, beam=True)

    p = sub.add_parser("name", help="name a cluster of unknown faces, or say who one face is (or is not)",
                       description="Names are kept in the store (table labels) and override the matcher in every "
                       "later run; named faces join the gallery index from their stored encodings.")
    p.add_argument("store", help="an archive store (facetag tag --out)")
    p.add_argument("--cluster", type=int, metavar="ID", help="a cluster id from clusters.csv (facetag cluster)")
    p.add_argument("--face", metavar="FACE_ID", help="one face (its face_id)")
    p.add_argument("--as", dest="name", metavar="NAME", help="who the faces are")
    p.add_argument("--not", dest="not_name", metavar="NAME", help="who the face is not (with --face)")
    p.add_argument("--from", dest="from_csv", metavar="CSV", help="many clusters at once: cluster,name rows")
    p.add_argument("--index", help="the gallery to enrol named faces in (default: the one the store's last "
                   "'facetag tag' used)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_name)
    p = sub.add_parser("review", help="write a review page of the faces in an archive store (static HTML)")
    p.add_argument("store", help="archive store written by 'facetag tag'")
    p.add_argument("--out", required=True, help="folder for the page and its thumbnails (re-runs add only new ones)")
    p.add_argument("--threshold", type=float,
                   help="distance the faces are sorted against, most doubtful first (default: the model's 1:K one)")
    p.add_argument("--json", action="store_true", help="print JSON for machines instead of text")
    p.set_defaults(func=cmd_review)

    p = sub.add_parser("xmp", help="write the face tags as XMP (sidecars, or --embed) for photo tools",
                       description="MWG face regions and People| keywords, merged into existing XMP; "
                                   "photos are never changed unless --embed is given.")
    p.add_argument("store", help="archive store written by 'facetag tag'")
    p.add_argument("--out", metavar="DIR", help="write sidecars under DIR (mirroring each photo's full path) "
                                               "instead of beside the photos, for a read-only archive")
    p.add_argument("--embed", action="store_true", help="write into the JPEG and TIFF files themselves")
    p.add_argument("--unknown-regions", action="store_true", help="also write unknown faces' regions, unnamed")
    p.add_argument("--json", action="store_true", help="print JSON for machines instead of text")
    p.set_defaults(func=cmd_xmp)

    p = sub.add_parser("train", help="train the 128-d head with the triplet loss")
    p.add_argument("--data", action="append", required=True,
                   help="a folder of Name/photo files or a CSV of file,identity (repeatable)")
    p.add_argument("--exclude-pairs", action="append", default=[], metavar="PAIRS",
                   help="leave out every person named in this pairs file (repeatable)")
    p.add_argument("--out", required=True, help="where to write the head's weights (.npz)")
    p.add_argument("--steps", type=int, default=500, help="training steps (default 500, see weights/README.md)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv=None):
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "beam", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.beam_args = extra
    # facetag's own warnings as plain lines (Beam may have configured the root logger at import time).
    logging.basicConfig(format="%(message)s", level=logging.WARNING, force=True)
    try:
        args.func(args)
    except UsageError as e:
        parser.error(str(e))
    except (FaceTagError, FileNotFoundError) as e:
        print(f"facetag: error: {e}", file=sys.stderr)
        return 1
    return 0


def console():
    """The ``facetag`` command: :func:`main`, then exit without the interpreter's teardown.

    Everything is written and closed when main returns. The teardown would cost most of a second of
    module clean-up, and it stops Beam's daemon threads by unwinding them through native frames, which
    aborted about one run in ten ("terminate called without an active exception", exit status 134)."""
    try:
        code = main()
    except SystemExit as e:  # argparse's usage errors and --help; as Python itself exits for them
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console()
