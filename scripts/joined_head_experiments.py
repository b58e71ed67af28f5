"""128-number heads trained with the triplet loss on both networks' features, against facetag-256 (issue 30).

    python scripts/joined_head_experiments.py [--configs NAME ...] [--out out/joined-heads] [--adopt NAME]

Each face is two encodings: FaceNet's backbone (512 numbers, int8, facetag's crop) and dlib's ResNet (128,
on the face's aligned chip). A head maps them, side by side, to 128 numbers (facetag.learn.training.HeadTrainer,
the triplet loss with alpha 0.2). Two inputs are tried: facetag-256's encoding (facetag-128's head output and
dlib's, weighed and joined: 256 numbers) and the raw pair (the backbone's 512 and dlib's 128 weighed as in
facetag-256: 640 numbers).

Training photos are scripts/head_experiments.py's (lfw_dev and lfw_dev_colour without the people of
lfw_dev/pairs.txt, colour_faces without its validation people, AT&T/ORL, Yale), each under the views of
facetag.learn.training (colour, grey copy, tight 112) by both networks. Scored on people no head saw: the
lfw_dev pairs grey and colour, the colour web photos of the colour_faces validation people full size and as
tight 112x112 crops; and clustering (average linkage) on all 6,922 lfw_dev photos and on bench/cluster.py's
sets of pairs people, at each head's best pair threshold on the selection people's pairs times a ratio
(facetag-128's and facetag-256's defaults are 0.82 of it). A configuration is chosen on the selection people
only (:func:`chosen`): the best BCubed F1 there at 0.82 with BCubed precision at least 0.98; every other
figure reports it. Run scripts/colour_sets.py first. ``--adopt`` trains a configuration on every
training photo into ``--head-out`` with its record.
"""

import argparse
import json
import os
import sys

import numpy as np
from compare_colour import SETS, set_pairs
from head_experiments import training_photos

from facetag.identity.clustering import FaceClustering
from facetag.io.datasets import is_grey
from facetag.learn.evaluation import best_threshold, read_pairs, verification_scores
from facetag.learn.filecache import FileEncoder
from facetag.learn.training import VIEWS, HeadTrainer
from facetag.vision.alignment import DEFAULT_MARGIN
from facetag.vision.models import DLIB_WEIGHT, load_head, load_model

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from cluster import people_sets  # noqa: E402
from cluster_data import lfw_photos  # noqa: E402
from cluster_quality import clustering_quality  # noqa: E402

DATA = "../shared/data"
LFW = f"{DATA}/lfw_dev"
SCORED = ("grey-lfw", "colour-lfw", "colour-web", "tight-web")
CLUSTER_RATIOS = (0.78, 0.80, 0.82, 0.84, 0.86)
CLUSTER_SETS = ("selection", "held-out", "all")

# name -> (input, HeadTrainer settings)
CONFIGS = {
    "256 pca": ("256", {"steps": 0}),
    "256 lda s0.5": ("256", {"steps": 0, "init": "lda", "shrinkage": 0.5}),
    "256 lda s0.2": ("256", {"steps": 0, "init": "lda", "shrinkage": 0.2}),
    "256 pca+500": ("256", {"steps": 500}),
    "256 pca+1500": ("256", {"steps": 1500}),
    "256 pca+1500 semi-hard": ("256", {"steps": 1500, "mining": "semi-hard"}),
    "256 pca+1500 lr3e-4": ("256", {"steps": 1500, "learning_rate": 3e-4}),
    "256 lda s0.5+1500": ("256", {"steps": 1500, "init": "lda", "shrinkage": 0.5}),
    "256 pca+3000 semi-hard": ("256", {"steps": 3000, "mining": "semi-hard"}),
    "256 pca+1500 semi-hard distill 1": ("256", {"steps": 1500, "mining": "semi-hard", "distill": 1.0}),
    "256 pca+1500 semi-hard distill 10": ("256", {"steps": 1500, "mining": "semi-hard", "distill": 10.0}),
    "256 pca+1500 distill 10": ("256", {"steps": 1500, "distill": 10.0}),
    "256 hidden 256 +1500 semi-hard": ("256", {"steps": 1500, "mining": "semi-hard", "hidden": 256}),
    "256 pca+1500 semi-hard distill 30": ("256", {"steps": 1500, "mining": "semi-hard", "distill": 30.0}),
    "256 pca+1500 semi-hard distill 100": ("256", {"steps": 1500, "mining": "semi-hard", "distill": 100.0}),
    "256 pca+3000 semi-hard distill 10": ("256", {"steps": 3000, "mining": "semi-hard", "distill": 10.0}),
    "256 pca+1500 semi-hard distill 10 lr3e-4": ("256", {"steps": 1500, "mining": "semi-hard", "distill": 10.0,
                                                         "learning_rate": 3e-4}),
    "256 hidden 256 +1500 semi-hard distill 10": ("256", {"steps": 1500, "mining": "semi-hard", "distill": 10.0,
                                                          "hidden": 256}),
    "640 pca+1500 semi-hard distill 10": ("640", {"steps": 1500, "mining": "semi-hard", "distill": 10.0}),
    "256 hidden 256 +3000 semi-hard distill 30": ("256", {"steps": 3000, "mining": "semi-hard", "distill": 30.0,
                                                          "hidden": 256}),
    "256 hidden 256 +1500 semi-hard distill 100": ("256", {"steps": 1500, "mining": "semi-hard", "distill": 100.0,
                                                           "hidden": 256}),
    "256 pca+3000 semi-hard distill 100": ("256", {"steps": 3000, "mining": "semi-hard", "distill": 100.0}),
    "256 hidden 512 +3000 semi-hard distill 30": ("256", {"steps": 3000, "mining": "semi-hard", "distill": 30.0,
                                                          "hidden": 512}),
    "256 pca+1500 semi-hard distill 30 batch 192": ("256", {"steps": 1500, "mining": "semi-hard", "distill": 30.0,
                                                            "identities_per_batch": 192}),
    "640 pca": ("640", {"steps": 0}),
    "640 lda s0.5": ("640", {"steps": 0, "init": "lda", "shrinkage": 0.5}),
    "640 pca+1500": ("640", {"steps": 1500}),
    "640 pca+1500 lr3e-4": ("640", {"steps": 1500, "learning_rate": 3e-4}),
    "640 lda s0.5+1500": ("640", {"steps": 1500, "init": "lda", "shrinkage": 0.5}),
}


def joined(backbone, dlib, head):
    """Both networks' encodings side by side: facetag-256's ("256", through facetag-128's ``head``) or raw ("640")."""
    first = backbone if head is None else load_model("facetag-128").project(backbone)
    first = first / np.maximum(np.linalg.norm(first, axis=-1, keepdims=True), 1e-12)
    both = np.concatenate([first, DLIB_WEIGHT * dlib], axis=-1)
    return (both / np.maximum(np.linalg.norm(both, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def face_features(paths, progress=None, **view):
    """(backbone (N, 512), dlib (N, 128)) of each file's main face under one view (FileEncoder settings)."""
    encoder = FileEncoder(margin=DEFAULT_MARGIN, **view)
    backbone = encoder.encode(paths, progress=progress).encodings
    return backbone, encoder.dlib_encodings(paths)


def training_features(paths, progress=None):
    """(N, views, 512) and (N, views, 128): both networks under facetag.learn.training's views (a grey photo's
    grey copy is the photo itself)."""
    grey = np.array([is_grey(p) for p in paths], bool)
    colour = [p for p, g in zip(paths, grey) if not g]
    backbones, dlibs, plain = [], [], {}
    for name, settings in VIEWS:
        if settings.get("grey"):
            base = {k: v for k, v in settings.items() if k != "grey"}
            b, d = (x.copy() for x in plain[tuple(sorted(base.items()))])
            b[~grey], d[~grey] = face_features(colour, progress, **settings)
        else:
            b, d = face_features(paths, progress, **settings)
            plain[tuple(sorted(settings.items()))] = (b, d)
        backbones.append(b)
        dlibs.append(d)
        print(f"training view {name} encoded", file=sys.stderr, flush=True)
    return np.stack(backbones, axis=1), np.stack(dlibs, axis=1)


def pair_sets():
    """{set: (backbone, dlib, a, b, same, folds)} for the verification sets."""
    out = {}
    for key in SCORED:
        _, pairs_file, images = SETS[key]
        pairs = set_pairs(pairs_file, images)
        paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
        row = {p: i for i, p in enumerate(paths)}
        backbone, dlib = face_features(paths)
        out[key] = (backbone, dlib, np.array([row[p.a] for p in pairs]), np.array([row[p.b] for p in pairs]),
                    np.array([p.same for p in pairs]), np.array([p.fold for p in pairs]))
        print(f"set {key} encoded", file=sys.stderr, flush=True)
    return out


def lfw_all():
    """Every lfw_dev photo: (backbone, dlib, names, bench/cluster.py's sets, lfw_dev pair rows a, b, same)."""
    photos, names = lfw_photos()
    backbone, dlib = face_features(photos)
    pairs = read_pairs(f"{LFW}/pairs.txt", f"{LFW}/images")
    row = {os.path.abspath(p): i for i, p in enumerate(photos)}
    a, b = (np.array([row[os.path.abspath(getattr(p, side))] for p in pairs]) for side in ("a", "b"))
    print("lfw_dev encoded", file=sys.stderr, flush=True)
    return backbone, dlib, names, people_sets(names), a, b, np.array([p.same for p in pairs])


def evaluate(transform, sets, lfw):
    """A row of results: each set's (accuracy, AUC, TAR at FAR 1e-3), and clustering at each ratio."""
    result = {}
    for key, (backbone, dlib, a, b, same, folds) in sets.items():
        e = transform(backbone, dlib)
        s = verification_scores(np.linalg.norm(e[a] - e[b], axis=1), same, folds)
        result[key] = (s["accuracy_mean"], s["roc_auc"], s["tar_at_far_1e-3"])
    backbone, dlib, names, people, a, b, same = lfw
    e = transform(backbone, dlib)
    chooser = people["selection"][a] & people["selection"][b]
    pair_threshold = best_threshold(np.linalg.norm(e[a] - e[b], axis=1)[chooser], same[chooser])
    result["pair threshold"] = float(pair_threshold)
    for ratio in CLUSTER_RATIOS:
        threshold = round(ratio * pair_threshold, 3)
        for s in CLUSTER_SETS:
            labels = FaceClustering(threshold=threshold).fit_predict(e[people[s]])
            q = clustering_quality(labels, names[people[s]])
            result[f"cluster {ratio:g} {s}"] = (threshold, q.bcubed_precision, q.bcubed_recall, q.bcubed_f1)
    return result


def print_row(name, result):
    cells = [f"{100 * acc:.2f}% / {auc:.4f} / {100 * tar:.1f}%" for acc, auc, tar in (result[k] for k in SCORED)]
    print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    for ratio in CLUSTER_RATIOS:
        quality = [result[f"cluster {ratio:g} {s}"] for s in CLUSTER_SETS]
        print(f"|   clustering {ratio:g} x {result['pair threshold']:.3f} = {quality[0][0]:g} | "
              + " | ".join(f"{s}: {p:.4f} / {r:.4f} / {f:.4f}" for s, (_, p, r, f) in zip(CLUSTER_SETS, quality))
              + " |", flush=True)


def chosen(results):
    """The configuration of ``{name: evaluate() result}`` with the best selection-people clustering F1 at the
    0.82 ratio among those with precision >= 0.98 there."""
    precise = {name: r["cluster 0.82 selection"] for name, r in results.items() if r["cluster 0.82 selection"][1] >= 0.98}
    return max(precise, key=lambda name: precise[name][3]) if precise else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--out", default="out/joined-heads")
    parser.add_argument("--adopt", metavar="CONFIG", choices=list(CONFIGS),
                        help="train this configuration on every training photo into --head-out, and stop")
    parser.add_argument("--head-out", default="weights/facetag-duo.npz")
    args = parser.parse_args(argv)
    photos = training_photos(with_selection=True)
    paths, labels = [p for p, _ in photos], np.array([who for _, who in photos])
    print(f"{len(photos)} training photos of {len(set(labels))} people", file=sys.stderr, flush=True)
    backbone_views, dlib_views = training_features(paths)
    head128 = load_head("facetag-128.npz")[0]

    def inputs(kind, backbone, dlib):
        return joined(backbone, dlib, head128 if kind == "256" else None)

    if args.adopt:
        kind, settings = CONFIGS[args.adopt]
        trainer = HeadTrainer(**settings).fit(inputs(kind, backbone_views, dlib_views), labels)
        np.savez(args.head_out, **trainer.head_)
        record = {"config": args.adopt, "input": kind, "photos": len(paths), "people": len(set(labels)),
                  "views": [n for n, _ in VIEWS], "settings": settings,
                  "final_loss": float(np.mean(trainer.history_[-200:])) if trainer.history_ else None}
        with open(os.path.splitext(args.head_out)[0] + ".training.json", "w") as f:
            json.dump(record, f, indent=2)
        print(json.dumps(record, indent=2))
        return
    sets, lfw = pair_sets(), lfw_all()
    os.makedirs(args.out, exist_ok=True)
    print("| encoding | " + " | ".join(SCORED) + " |  (each: accuracy / AUC / TAR at FAR 1e-3)")
    print_row("facetag-128", evaluate(lambda b, d: load_model("facetag-128").project(b), sets, lfw))
    print_row("facetag-256", evaluate(lambda b, d: inputs("256", b, d), sets, lfw))
    results = {}
    for name in args.configs:
        kind, settings = CONFIGS[name]
        trainer = HeadTrainer(**settings).fit(inputs(kind, backbone_views, dlib_views), labels)
        np.savez(os.path.join(args.out, name.replace(" ", "_") + ".npz"), **trainer.head_)
        result = results[name] = evaluate(lambda b, d: trainer.transform(inputs(kind, b, d)), sets, lfw)
        print_row(name, result)
        with open(os.path.join(args.out, "results.jsonl"), "a") as f:
            f.write(json.dumps({"config": name, "input": kind, "settings": settings, "scores": result}) + "\n")
    print(f"\nchosen on the selection people: {chosen(results)}")


if __name__ == "__main__":
    main()
