"""Levers for clustering precision on lfw_dev (issue 23): face quality gating, test-time flips, a second encoder.

Every lfw_dev photo's main face (bench/cluster_data.py, encodings cached by facetag.learn.filecache),
the sets of people of bench/cluster.py (``selection`` chooses, ``held-out`` reports, ``all`` is all
6,922 photos).

* ``quality``: each factor of facetag.vision.quality on every face, how well it singles out the faces
  that default clustering puts in a stranger's cluster (ROC AUC, 0.5: not at all), and BCubed
  precision / recall / F1 when the faces under a quality threshold are left unclustered (singletons).
* ``identify``: lfw_dev's open-set identification protocol (facetag.learn.evaluation.identification_split,
  as ``make lfw-identify`` but on the cached main faces, nearest gallery face by exact search) when a
  face under a quality threshold needs a stricter distance to take a gallery name.
* ``dlib``: a second encoder, dlib's ResNet converted to LiteRT (facetag.vision.dlib_encoder) on facetag's
  aligned chips, alone and joined to facetag-128 (facetag-256; and the joins tried besides: other weights, a
  128-d PCA projection), on every photo: lfw_dev pair verification, and clustering at thresholds that are each
  encoding's best pair threshold (pairs of selection people only) times CLUSTER_RATIOS, plus each model's
  default (facetag-128's 0.975 is 0.82 x 1.183). Then against face_recognition (its own detector, alignment
  and dlib encoder, Chinese whispers; cached by bench/cluster_data.py, about 2 photos/s) on people whose
  names start with A to ``--dlib-until``.
* ``flips``: encodings of each face and its mirror image averaged and re-normalised (after the head,
  or before it on the 512-d backbone encodings): lfw_dev pair verification (5-fold accuracy, ROC AUC,
  TAR at FAR 1e-3) and clustering at several thresholds; and the encoder's faces/s with and without.

    python bench/quality_levers.py quality identify flips --out q.md
    python bench/quality_levers.py dlib --dlib-until D
"""

import argparse
import os
import sys
import time

import numpy as np
from benchutil import machine_facts, write_report
from cluster import DLIB_GRID, dlib_whispers, people_sets, singletons_unclustered
from cluster_data import LFW_DEV, dlib_encodings, lfw_photos
from cluster_quality import clustering_quality
from scipy.stats import rankdata

from facetag.identity.clustering import FaceClustering
from facetag.io.images import load_image
from facetag.learn.evaluation import (
    best_threshold,
    identification_split,
    read_pairs,
    score_identification,
    verification_scores,
)
from facetag.learn.filecache import FileEncoder
from facetag.vision import quality
from facetag.vision.alignment import crop_face
from facetag.vision.models import CLUSTER_THRESHOLDS, DLIB_WEIGHT, IDENTIFY_THRESHOLDS, load_model

REPORTED = ("selection", "held-out", "all")
PERCENTILES = (5, 10, 20)
QUALITY_THRESHOLDS = (0.25, 0.5, 0.75, 0.9)
STRICT_THRESHOLDS = (0.85, 0.90)
CLUSTER_RATIOS = (0.78, 0.80, 0.82, 0.84, 0.86)
FLIP_THRESHOLDS = (0.90, 0.925, 0.93, 0.935, 0.94, 0.95, 0.975, 1.0)


def auc(positive, score):
    """ROC AUC of ``score`` ranking the ``positive`` rows first."""
    ranks = rankdata(score)
    pos, neg = positive.sum(), len(positive) - positive.sum()
    return (ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * neg)


def factors(photos):
    """Each face's quality factors (raw values) and its quality; faces the detector missed get quality 0."""
    faces = FileEncoder(margin=0.25).main_faces(photos)
    names = ("size px", "sharpness", "yaw offset", "score", "quality")
    values = np.zeros((len(photos), len(names)))
    for i, path in enumerate(photos):
        if faces[path] is None:
            continue
        box, score, landmarks = faces[path]
        crop = crop_face(load_image(path), box, margin=0.25)
        left, top, right, bottom = box
        values[i] = (min(right - left, bottom - top), quality.sharpness(crop), quality.yaw_offset(landmarks), score,
                     quality.face_quality(box, score, landmarks, crop))
    return names, values, np.array([faces[p] is not None for p in photos])


def lfw_pairs(photos):
    """lfw_dev's pairs as rows of ``photos``: (a, b, same, folds)."""
    pairs = read_pairs(os.path.join(LFW_DEV, "pairs.txt"), os.path.join(LFW_DEV, "images"))
    row = {p: i for i, p in enumerate(photos)}
    return (np.array([row[p.a] for p in pairs]), np.array([row[p.b] for p in pairs]),
            np.array([p.same for p in pairs]), np.array([p.fold for p in pairs]))


def verification_cells(encodings, a, b, same, folds):
    """Table cells: 5-fold accuracy ± its spread, ROC AUC, TAR at FAR 1e-3 of the pairs (a, b)."""
    s = verification_scores(np.linalg.norm(encodings[a] - encodings[b], axis=1), same, folds)
    return (f"{100 * s['accuracy_mean']:.2f}% ± {100 * s['accuracy_std']:.2f} | {s['roc_auc']:.4f} "
            f"| {100 * s['tar_at_far_1e-3']:.1f}%")


def stranger_faces(labels, names):
    """Faces in a cluster whose majority is another person."""
    wrong = np.zeros(len(names), bool)
    for cluster in np.unique(labels[labels >= 0]):
        member = labels == cluster
        people, counts = np.unique(names[member], return_counts=True)
        wrong[member & (names != people[np.argmax(counts)])] = True
    return wrong


def gated_quality(encodings, names, sets, keep, threshold):
    cells = []
    for s in REPORTED:
        rows = sets[s]
        labels = np.full(int(rows.sum()), -1)
        kept = keep[rows]
        clustering = FaceClustering(threshold=threshold)
        labels[kept] = clustering.fit_predict(encodings[rows][kept])
        q = clustering_quality(labels, names[rows])
        cells.append(f"{q.bcubed_precision:.4f} / {q.bcubed_recall:.4f} / {q.bcubed_f1:.4f}")
    return cells


def quality_report(photos, names, sets, encodings, measured, threshold):
    names_f, values, found = measured
    wrong = stranger_faces(FaceClustering(threshold=threshold).fit_predict(encodings), names)
    lines = ["## Face quality gating", "",
             f"Faces the default clustering (all 6,922 photos) puts in a stranger's cluster: {int(wrong.sum())}. "
             "Each factor's distribution on the detected faces, and how well its low values single those faces out "
             "(ROC AUC; 0.5: no better than chance; yaw offset ranked high-first):", "",
             "| factor | 1% | 5% | 25% | 50% | 75% | 95% | 99% | AUC |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for j, name in enumerate(names_f):
        sign = 1 if name == "yaw offset" else -1
        pct = np.percentile(values[found, j], (1, 5, 25, 50, 75, 95, 99))
        lines.append(f"| {name} | " + " | ".join(f"{v:.3g}" for v in pct)
                     + f" | {auc(wrong[found], sign * values[found, j]):.3f} |")
    lines += ["", "BCubed precision / recall / F1 with the faces under each gate left unclustered (clustering at its "
              "defaults on the rest):", "",
              "| gate | faces gated (all) | " + " | ".join(REPORTED) + " |", "|---|---:|" + "---|" * len(REPORTED)]
    lines.append("| none | 0 | " + " | ".join(gated_quality(encodings, names, sets, np.ones(len(names), bool),
                                                           threshold)) + " |")
    for j, name in enumerate(names_f[:-1]):
        sign = -1 if name == "yaw offset" else 1
        for pct in PERCENTILES:
            cut = np.percentile(sign * values[found, j], pct)
            keep = found & (sign * values[:, j] >= cut)
            rule = f"{name} {'≤' if sign < 0 else '≥'} {abs(cut):.3g} (drops the worst {pct}%)"
            lines.append(f"| {rule} | {int((~keep).sum())} | "
                         + " | ".join(gated_quality(encodings, names, sets, keep, threshold)) + " |")
        print(f"quality: {name} done", file=sys.stderr, flush=True)
    for gate in QUALITY_THRESHOLDS:
        keep = values[:, -1] >= gate
        lines.append(f"| quality ≥ {gate:g} | {int((~keep).sum())} | "
                     + " | ".join(gated_quality(encodings, names, sets, keep, threshold)) + " |")
    return lines


def identify_report(photos, encodings, face_quality):
    gallery, probes = identification_split(os.path.join(LFW_DEV, "images"))
    row = {p: i for i, p in enumerate(photos)}
    g = np.array([row[p] for p, _ in gallery])
    who = np.array([name for _, name in gallery])
    rows = np.array([row[p] for p, _ in probes])
    distances = np.sqrt(np.maximum(2 - 2 * encodings[rows] @ encodings[g].T, 0))  # unit-length encodings
    nearest = distances.argmin(axis=1)
    base = IDENTIFY_THRESHOLDS["facetag-128"]
    lines = ["## Low-quality faces and the gallery", "",
             f"lfw_dev open-set identification ({len(gallery)} gallery photos, {len(probes)} probes, cached main faces, "
             f"exact nearest gallery face): a probe face of quality under the gate takes a name only within the "
             f"stricter distance; the others at the default {base:g}.", "",
             "| gate | stricter distance | probes under the gate | known identified | strangers rejected |",
             "|---|---:|---:|---:|---:|"]
    configs = [(None, base)] + [(q, t) for q in QUALITY_THRESHOLDS[:2] for t in STRICT_THRESHOLDS]
    for gate, strict in configs:
        low = np.zeros(len(probes), bool) if gate is None else face_quality[rows] < gate
        threshold = np.where(low, strict, base)
        answers = {p: (who[n], d[n] if d[n] <= t else np.inf)
                   for (p, _), n, d, t in zip(probes, nearest, distances, threshold)}
        s = score_identification(probes, answers, base)
        lines.append(f"| {'none' if gate is None else f'quality < {gate:g}'} | {strict:g} | {int(low.sum())} "
                     f"| {100 * s['identified_at_threshold']:.1f}% | {100 * s['strangers_rejected']:.1f}% |")
    return lines


def dlib_report(photos, names, sets, until):
    """facetag-128, dlib's ResNet on facetag's chips and facetag-256 on every photo; face_recognition on A to ``until``."""
    encoder = FileEncoder(margin=0.25)
    ours = encoder.model_encodings(load_model("facetag-128"), photos).encodings
    dlib = encoder.dlib_encodings(photos)
    joined = load_model("facetag-256")
    a, b, same, folds = lfw_pairs(photos)
    chooser = sets["selection"][a] & sets["selection"][b]

    def pair_threshold(enc):
        return best_threshold(np.linalg.norm(enc[a] - enc[b], axis=1)[chooser], same[chooser])

    def weighted(weight):
        both = np.concatenate([ours, weight * dlib], axis=1)
        return both / np.linalg.norm(both, axis=1, keepdims=True)

    training = ~sets["unseen"]  # people in no pair: what a projection may be fitted on
    full = weighted(DLIB_WEIGHT)
    centre = full[training].mean(axis=0)
    _, _, vt = np.linalg.svd(full[training] - centre, full_matrices=False)
    reduced = (full - centre) @ vt[:128].T
    variants = {"facetag-128": ours, "dlib's ResNet on facetag's chips": dlib,
                f"facetag-256 (dlib weight {DLIB_WEIGHT:g})": full,
                f"facetag-256, dlib weight {0.85 * DLIB_WEIGHT:.2f}": weighted(0.85 * DLIB_WEIGHT),
                f"facetag-256, dlib weight {1.15 * DLIB_WEIGHT:.2f}": weighted(1.15 * DLIB_WEIGHT),
                "facetag-256 projected to 128-d (PCA on training people)":
                    reduced / np.linalg.norm(reduced, axis=1, keepdims=True)}
    check = joined.join(ours[:8], dlib[:8])
    assert np.allclose(check, full[:8], atol=1e-5), "the bench's facetag-256 must be the model's"
    lines = ["## A second encoder: dlib's ResNet on LiteRT, joined to facetag-128 (facetag-256)", "",
             f"All {len(photos):,} lfw_dev photos, the main face of each (MTCNN; dlib's chips aligned on its landmarks). "
             f"Pair thresholds for the clustering ratios from the {int(chooser.sum())} pairs of selection people.", "",
             "| encodings | pair accuracy (5-fold) | ROC AUC | TAR at FAR 1e-3 | best pair threshold (selection) |",
             "|---|---:|---:|---:|---:|"]
    for name, enc in variants.items():
        lines.append(f"| {name} | {verification_cells(enc, a, b, same, folds)} | {pair_threshold(enc):.3f} |")
    lines += ["", "Clustering (average linkage, lone ratio 0.85), BCubed precision / recall / F1:", "",
              "| encodings | threshold | " + " | ".join(REPORTED) + " |", "|---|---:|" + "---|" * len(REPORTED)]
    everyone = np.ones(len(photos), bool)
    for name, enc in variants.items():
        thresholds = {round(ratio * pair_threshold(enc), 3): f"{ratio:g} x {pair_threshold(enc):.3f}"
                      for ratio in CLUSTER_RATIOS}
        default = {"facetag-128": CLUSTER_THRESHOLDS["facetag-128"]}.get(name)
        if name.startswith("facetag-256 (dlib"):
            default = CLUSTER_THRESHOLDS["facetag-256"]
        if default is not None:
            thresholds[default] = "the model's default"
        for threshold, how in sorted(thresholds.items()):
            lines.append(f"| {name} | {threshold:g} ({how}) | "
                         + " | ".join(gated_quality(enc, names, sets, everyone, threshold)) + " |")
    lines += [""] + peer_report(photos, names, sets, {"facetag-128": ours, "facetag-256": full}, until)
    return lines


def peer_report(photos, names, sets, encodings, until):
    """face_recognition (its HOG detector, dlib's alignment and ResNet, Chinese whispers) against facetag's models
    on the people whose names start with A to ``until``: its encoder runs at about 2 photos/s here."""
    covered = np.array([n[0].upper() <= until.upper() for n in names])
    subset = [p for p, c in zip(photos, covered) if c]
    theirs, _ = dlib_encodings(subset, 1)
    lines = [f"Against face_recognition, people A to {until.upper()} ({len(subset):,} photos), everyone of them, "
             "BCubed precision / recall / F1:", "", "| tool | configuration | precision | recall | F1 |",
             "|---|---|---:|---:|---:|"]
    truth = names[covered]
    for name, enc in encodings.items():
        labels = FaceClustering(threshold=CLUSTER_THRESHOLDS[name]).fit_predict(enc[covered])
        q = clustering_quality(labels, truth)
        lines.append(f"| facetag | {name}, threshold {CLUSTER_THRESHOLDS[name]:g} | {q.bcubed_precision:.4f} "
                     f"| {q.bcubed_recall:.4f} | {q.bcubed_f1:.4f} |")
    for threshold in DLIB_GRID:
        q = clustering_quality(singletons_unclustered(dlib_whispers(theirs, threshold)), truth)
        lines.append(f"| face_recognition | dlib Chinese whispers {threshold:.2f} | {q.bcubed_precision:.4f} "
                     f"| {q.bcubed_recall:.4f} | {q.bcubed_f1:.4f} |")
    return lines


def encoder_speed(model, crops, flip, repeats=3):
    """Faces per second of ``model.encode`` on ``crops`` in batches of 32 (best of ``repeats``), mirrored too."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(crops), 32):
            batch = crops[i:i + 32]
            model.encode(np.concatenate([batch, batch[:, :, ::-1]]) if flip else batch)
        best = max(best, len(crops) / (time.perf_counter() - start))
    return best


def flips_report(photos, names, sets, model):
    plain_b = FileEncoder(margin=0.25).encode(photos).encodings
    flip_b = FileEncoder(margin=0.25, flip=True).encode(photos).encodings
    plain = model.project(plain_b)
    after = plain + model.project(flip_b)
    before = plain_b + flip_b
    variants = {"plain (default)": plain,
                "flips averaged after the head": after / np.linalg.norm(after, axis=1, keepdims=True),
                "flips averaged before the head": model.project(before / np.linalg.norm(before, axis=1, keepdims=True))}
    a, b, same, folds = lfw_pairs(photos)
    lines = ["## Test-time flips", "", "lfw_dev's 3,000 pairs (5-fold, threshold from the other folds):", "",
             "| encodings | accuracy | ROC AUC | TAR at FAR 1e-3 |", "|---|---:|---:|---:|"]
    for name, enc in variants.items():
        lines.append(f"| {name} | {verification_cells(enc, a, b, same, folds)} |")
    lines += ["", "Clustering (average linkage, lone ratio 0.85), BCubed precision / recall / F1:", "",
              "| encodings | threshold | " + " | ".join(REPORTED) + " |", "|---|---:|" + "---|" * len(REPORTED)]
    for name, enc in variants.items():
        for threshold in FLIP_THRESHOLDS:
            lines.append(f"| {name} | {threshold:g} | "
                         + " | ".join(gated_quality(enc, names, sets, np.ones(len(names), bool), threshold)) + " |")
        print(f"flips: {name} done", file=sys.stderr, flush=True)
    rng = np.random.default_rng(0)
    crops = np.stack([crop_face(load_image(p), (63, 63, 187, 187), margin=0.0)
                      for p in rng.choice(photos, 256, replace=False)])
    plain_speed, flip_speed = encoder_speed(model, crops, False), encoder_speed(model, crops, True)
    lines += ["", f"Encoder ({model.name}, batches of 32, best of 3 over 256 crops): {plain_speed:.0f} faces/s plain, "
              f"{flip_speed:.0f} faces/s with flips ({plain_speed / flip_speed:.2f}x the cost)."]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", choices=("quality", "identify", "flips", "dlib"),
                        default=["quality", "identify", "flips"])
    parser.add_argument("--dlib-until", metavar="LETTER", default="D",
                        help="the dlib part compares with face_recognition on people whose names start with A to LETTER")
    parser.add_argument("--model", default="facetag-128",
                        help="the model whose encodings the quality part clusters (identify and flips: facetag-128's)")
    parser.add_argument("--out", help="also write the report to this Markdown file")
    args = parser.parse_args(argv)
    photos, names = lfw_photos()
    sets = people_sets(names)
    model = load_model("facetag-128")
    encodings = model.project(FileEncoder(margin=0.25).encode(photos).encodings)
    lines = ["# Issue 23's levers on lfw_dev", ""] + machine_facts() + [""]
    measured = factors(photos) if {"quality", "identify"} & set(args.parts) else None
    if "quality" in args.parts:
        clustered = FileEncoder(margin=0.25).model_encodings(load_model(args.model), photos).encodings
        lines += [f"Quality gating on {args.model}'s encodings, clustering at its threshold "
                  f"{CLUSTER_THRESHOLDS[args.model]:g}.", ""]
        lines += quality_report(photos, names, sets, clustered, measured, CLUSTER_THRESHOLDS[args.model]) + [""]
    if "identify" in args.parts:
        lines += identify_report(photos, encodings, measured[1][:, -1]) + [""]
    if "flips" in args.parts:
        lines += flips_report(photos, names, sets, model) + [""]
    if "dlib" in args.parts:
        lines += dlib_report(photos, names, sets, args.dlib_until)
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
