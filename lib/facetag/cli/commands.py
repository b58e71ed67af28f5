"""The subcommands: each parses nothing and decides little; the work is in the library and the jobs."""

import json
import sys

import numpy as np

from facetag.cli.output import UsageError, emit, face_json, progress, table
from facetag.errors import FaceTagError


def cmd_faces(args):
    from facetag.api import find_faces

    faces = find_faces(args.photo, args.model)
    emit(args, {"photo": args.photo, "faces": [face_json(f) for f in faces]},
          [f"{args.photo}: {len(faces)} face(s)"]
          + [f"  face {i}: box (left, top, right, bottom) {f.box}, score {f.score:.3f}" for i, f in enumerate(faces)])


def _load_gallery(args):
    from facetag.identity.gallery import Gallery
    from facetag.vision.analyzer import FaceAnalyzer

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
    emit(args, {"same": result.same, "distance": round(result.distance, 4), "threshold": result.threshold},
          [f"{subject}: {verdict} (distance {result.distance:.3f}, threshold {result.threshold:.2f})"])


def cmd_identify(args):
    from facetag.api import identify

    gallery = _load_gallery(args)
    results = identify(args.photo, gallery, args.model)
    data = [{**face_json(face), "identity": m.identity, "distance": round(m.distance, 4),
             "candidates": [[name, round(d, 4)] for name, d in m.candidates]} for face, m in results]
    lines = [f"{args.photo}: {len(results)} face(s)"]
    lines += [f"  face {i} at {face.box}: {m.identity} (distance {m.distance:.3f}; nearest {m.candidates[0][0]})"
              for i, (face, m) in enumerate(results)]
    emit(args, {"photo": args.photo, "faces": data}, lines)


def cmd_evaluate(args):
    from facetag.learn.evaluation import evaluate_pairs, plot_roc, read_pairs
    from facetag.vision.models import load_model

    pairs = read_pairs(args.pairs, args.images)
    report = evaluate_pairs(pairs, load_model(args.model), args.margin, args.on_miss, progress("detect + encode"))
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
    emit(args, public, lines)


def cmd_calibrate(args):
    from facetag.learn.evaluation import evaluate_pairs, read_pairs, threshold_at_far
    from facetag.vision.models import load_model

    pairs = read_pairs(args.pairs, args.images)
    report = evaluate_pairs(pairs, load_model(args.model), args.margin, args.on_miss, progress("detect + encode"))
    same = np.array([p.same for p in pairs])
    threshold = threshold_at_far(report["_distances"], same, args.far)
    emit(args, {"model": args.model, "far": args.far, "threshold": threshold},
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
                                    progress=progress("encode training photos"))
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
    from facetag.archive.exports import MATCHES_CSV, MATCHES_CSV_HEADER, by_photo
    from facetag.archive.store import ArchiveStore

    summary = tag.run(["--input", args.photos, "--index", args.index, "--store", args.out,
                       *(["--model", args.model] if args.model else []), *(["--progress"] if args.progress else []),
                       *args.beam_args])
    if args.json:
        print(json.dumps(summary))
        return
    store = ArchiveStore(args.out)
    rows = by_photo(store.read("matches", columns=["path", "face_index", "box", "identity", "distance"]))
    print(f"\n{len(rows)} face(s) tagged in the archive; results in {args.out} ({MATCHES_CSV}, Delta tables "
          "photos, faces, matches)\n")
    print(table([MATCHES_CSV_HEADER] + [
        [r["path"], str(r["face_index"]), " ".join(map(str, r["box"])), r["identity"], f"{r['distance']:.4f}"]
        for r in rows[: args.show]]))
    if len(rows) > args.show:
        print(f"... {len(rows) - args.show} more rows in {store.join(MATCHES_CSV)}")


def cmd_cluster(args):
    from beam_jobs import cluster

    summary = cluster.run(["--store", args.store, *(["--threshold", str(args.threshold)] if args.threshold else []),
                           *(["--min_quality", str(args.min_quality)] if args.min_quality is not None else []),
                           *args.beam_args])
    if args.json:
        print(json.dumps(summary))


def cmd_reencode(args):
    from beam_jobs import reencode

    summary = reencode.run(["--store", args.store, "--model", args.model, "--index", args.index,
                            *(["--progress"] if args.progress else []), *args.beam_args])
    if args.json:
        print(json.dumps(summary))


def cmd_name(args):
    from facetag.archive.naming import Word, name_faces, read_names_csv
    from facetag.identity.words import IS, IS_NOT

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
    emit(args, {k: v for k, v in summary.items() if k not in ("manifest", "rows")}, lines)


def _store_results(args):
    from facetag.archive.results import open_store, read_results

    return read_results(open_store(args.store))


def cmd_maintain(args):
    from facetag.archive.maintenance import maintain_store

    report = maintain_store(args.store, args.retain_hours, args.dry_run)
    would = "would be " if args.dry_run else ""
    lines = [f"{args.store}: {report['files_compacted'] or report.get('files_to_compact', 0)} small files "
             f"{would}compacted, {report['files_deleted']} files ({report['bytes_deleted'] / 1e6:.1f} MB) {would}"
             f"deleted; versions kept: " + ", ".join(f"{k} {v}" for k, v in report["versions_kept"].items())]
    lines += [f"  {name}: {t['files']} files ({t['small_files']} small) at version {t['version']}"
              + (f", now {t['files_after']} at version {report['versions_kept'][name]}" if "files_after" in t else "")
              for name, t in report["tables"].items()]
    emit(args, report, lines)


def cmd_review(args):
    from facetag.archive.review import write_review

    if args.serve:
        return _serve_review(args)
    if not args.out:
        raise UsageError("give --out DIR for the static page, or --serve for the local app")
    results = _store_results(args)
    threshold = args.threshold if args.threshold is not None else results.identify_threshold()
    summary = write_review(results, args.out, args.store, threshold, None if args.json else progress("thumbnails"))
    for path, reason in summary["thumbnails_unreadable"]:
        print(f"warning: no thumbnails for {path}: {reason}", file=sys.stderr)
    clusters = "no clusters" if summary["clusters"] is None else f"{summary['clusters']} clusters"
    emit(args, summary, [
        f"{summary['photos']} photos, {summary['faces']} faces: {summary['identified']} identified "
        f"({summary['identities']} people), {summary['unknown']} unknown ({clusters}); "
        f"{summary['no_face']} without a face, {summary['failed']} failed",
        f"{summary['thumbnails_written']} new thumbnails; open {summary['page']} in a browser"])


def _serve_review(args):
    from facetag.archive.results import open_store
    from facetag.web.server import serve

    if args.json:
        raise UsageError("--serve prints its address, not JSON")
    open_store(args.store)

    def ready(url):
        print(f"facetag: the review page of {args.store} is at {url}  (Ctrl-C stops the server)", flush=True)

    serve(args.store, args.port, args.out, args.threshold, on_ready=ready)
    print("facetag: the review server stopped")


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
    emit(args, {**counts, "failures": failures}, [
        f"XMP {where}: {counts['written']} written, {counts['unchanged']} unchanged, "
        f"{counts['skipped']} with no named face, {counts['failed']} failed; {counts['regions']} face regions"])
    if failures:
        raise FaceTagError(f"the XMP of {len(failures)} photo(s) could not be written (the reasons are above)")
