"""Train candidate heads on cached backbone views and score each on held-out people.

    python scripts/head_experiments.py [--configs NAME ...] [--out out/heads] [--adopt NAME]

Training photos are those of `facetag train` with the sources of weights/README.md: lfw_dev (grey)
and lfw_dev_colour, both without the people of lfw_dev/pairs.txt; colour_faces without its
validation people (scripts/colour_sets.py) and the lfw_dev pairs people; AT&T/ORL; Yale. Each
configuration is trained without colour_faces' selection people (scripts/colour_sets.py) and
scored on their pairs, full size and as tight crops, which choose the head, and on the held-out
sets of scripts/compare_colour.py (facetag's crops, no peer), which report it: a row per
configuration, with the 512-d backbone and the current head for reference. ``--adopt`` trains the
chosen configuration on every training person, selection people included. Views are cached (see
facetag.learn.filecache), so after the first run a configuration costs its training only.
"""

import argparse
import json
import os
import sys

import numpy as np

from facetag.io.datasets import pair_people, read_labelled
from facetag.learn.evaluation import verification_scores
from facetag.learn.filecache import FileEncoder
from facetag.learn.training import VIEWS, HeadTrainer, train_head_from_photos, training_views
from facetag.vision.alignment import DEFAULT_MARGIN
from facetag.vision.models import apply_head, load_head

DATA = "../shared/data"
COLOUR = "out/colour"
SOURCES = [f"{DATA}/lfw_dev/images", f"{DATA}/lfw_dev_colour/images", f"{DATA}/colour_faces/images",
           f"{DATA}/att_orl_faces/labels.csv", f"{DATA}/yalefaces/labels.csv"]
EXCLUDE = [f"{DATA}/lfw_dev/pairs.txt", f"{COLOUR}/colour_faces_val.pairs.txt"]
SELECTION = {
    "select-web": f"{DATA}/colour_faces/images",
    "select-tight": f"{COLOUR}/tight_colour_faces_select/images",
}
SELECTION_PAIRS = f"{COLOUR}/colour_faces_select.pairs.txt"

# name -> (views used, HeadTrainer settings)
CONFIGS = {
    "pca": ("all", {"steps": 0}),
    "pca+500": ("all", {"steps": 500}),
    "pca+1500": ("all", {"steps": 1500}),
    "pca+500 no-tight": ("no-tight", {"steps": 500}),
    "pca+500 colour-only": ("colour", {"steps": 500}),
    "pca+500 semi-hard": ("all", {"steps": 500, "mining": "semi-hard"}),
    "pca+500 lr3e-4": ("all", {"steps": 500, "learning_rate": 3e-4}),
    "whiten": ("all", {"steps": 0, "init": "whiten"}),
    "whiten+500": ("all", {"steps": 500, "init": "whiten"}),
    "current+200": ("all", {"steps": 200, "init": "current"}),
    "current+500": ("all", {"steps": 500, "init": "current"}),
    "current+500 lr3e-5": ("all", {"steps": 500, "init": "current", "learning_rate": 3e-5}),
    "current+500 colour-only": ("colour", {"steps": 500, "init": "current"}),
    "pca mirrored": ("mirrored", {"steps": 0}),
    "pca+500 mirrored": ("mirrored", {"steps": 500}),
    "current+200 mirrored": ("mirrored", {"steps": 200, "init": "current"}),
    "lda s0.8 mirrored": ("mirrored", {"steps": 0, "init": "lda", "shrinkage": 0.8}),
    "lda s0.2": ("all", {"steps": 0, "init": "lda", "shrinkage": 0.2}),
    "lda s0.5": ("all", {"steps": 0, "init": "lda", "shrinkage": 0.5}),
    "lda s0.8": ("all", {"steps": 0, "init": "lda", "shrinkage": 0.8}),
    "lda s0.5+500": ("all", {"steps": 500, "init": "lda", "shrinkage": 0.5}),
    "lda s0.5 no-tight": ("no-tight", {"steps": 0, "init": "lda", "shrinkage": 0.5}),
}
#: facetag.learn.training's views, and their mirror images for the "mirrored" configurations.
EXPERIMENT_VIEWS = VIEWS + (("colour mirrored", {"flip": True}), ("tight 112 mirrored", {"tight": 112, "flip": True}))
VIEW_SETS = {"all": [n for n, _ in VIEWS], "no-tight": [n for n, _ in VIEWS if "tight" not in n], "colour": ["colour"],
             "mirrored": [n for n, _ in EXPERIMENT_VIEWS]}


def training_photos(with_selection):
    """Every photo of every training person; the selection people's only ``with_selection``."""
    excluded = set().union(*(pair_people(p) for p in EXCLUDE))
    if not with_selection:
        excluded |= pair_people(SELECTION_PAIRS)
    return [(path, who) for source in SOURCES for path, who in read_labelled(source) if who not in excluded]


def head_settings(settings):
    """``settings`` with ``init="current"`` replaced by the weights of the shipped facetag-128 head."""
    if settings.get("init") == "current":
        return {**settings, "init": load_head("facetag-128.npz")[0]}
    return settings


def scored_sets():
    """{name: (encodings, pair indices a and b, same, folds)}: the selection sets, then the held-out ones."""
    from compare_colour import SETS, set_pairs

    sources = {key: (SELECTION_PAIRS, images) for key, images in SELECTION.items()}
    sources.update({key: (pairs_file, images) for key, (_, pairs_file, images) in SETS.items()})
    sets = {}
    for key, (pairs_file, images) in sources.items():
        folders = [images] if isinstance(images, str) else images
        if not os.path.exists(pairs_file) or not all(os.path.isdir(f) for f in folders):
            continue
        pairs = set_pairs(pairs_file, images)
        paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
        index = {p: i for i, p in enumerate(paths)}
        files = FileEncoder(margin=DEFAULT_MARGIN).encode(paths)
        ia, ib = np.array([index[p.a] for p in pairs]), np.array([index[p.b] for p in pairs])
        sets[key] = (files.encodings, ia, ib, np.array([p.same for p in pairs]), np.array([p.fold for p in pairs]))
    return sets


def scores(transform, sets):
    out = {}
    for key, (encodings, ia, ib, same, folds) in sets.items():
        e = transform(encodings)
        s = verification_scores(np.linalg.norm(e[ia] - e[ib], axis=1), same, folds)
        out[key] = (s["accuracy_mean"], s["roc_auc"], s["tar_at_far_1e-3"])
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--out", default="out/heads")
    parser.add_argument("--train-cache", help="cache folder for the training views (default: facetag's cache)")
    parser.add_argument("--adopt", metavar="CONFIG", choices=list(CONFIGS),
                        help="train this configuration into --head-out with its record (facetag.learn.training), and stop")
    parser.add_argument("--head-out", default="weights/facetag-128.npz")
    parser.add_argument("--views-only", action="store_true", help="encode (cache) the training views and stop")
    args = parser.parse_args(argv)
    photos = training_photos(with_selection=bool(args.adopt))
    if args.adopt:
        view_set, settings = CONFIGS[args.adopt]
        record = train_head_from_photos(photos, args.head_out, views=[v for v in EXPERIMENT_VIEWS if v[0] in VIEW_SETS[view_set]],
                                        cache_dir=args.train_cache, **head_settings(settings))
        print(json.dumps(record, indent=2))
        return
    labels = np.array([who for _, who in photos])
    views, _, names, grey = training_views([p for p, _ in photos], [DEFAULT_MARGIN], EXPERIMENT_VIEWS,
                                           progress=lambda d, t: print(f"\r  {d}/{t}", end="", file=sys.stderr, flush=True),
                                           cache_dir=args.train_cache)
    print(f"{len(photos)} training photos ({grey} grey) of {len(set(labels))} people; views {names}", flush=True)
    if args.views_only:
        return
    sets = scored_sets()
    os.makedirs(args.out, exist_ok=True)
    print("| head | " + " | ".join(sets) + " |  (each: accuracy / AUC / TAR at FAR 1e-3)")
    print("|---|" + "---|" * len(sets))

    def row(name, result):
        print(f"| {name} | " + " | ".join(f"{100 * a:.2f}% / {u:.4f} / {100 * t:.1f}%" for a, u, t in result.values()) + " |", flush=True)

    row("none (facenet-512)", scores(lambda e: e, sets))
    current, _ = load_head("facetag-128.npz")
    row("facetag-128 (current head)", scores(lambda e: apply_head(current, e), sets))
    for name in args.configs:
        view_set, settings = CONFIGS[name]
        chosen = [names.index(f"margin {DEFAULT_MARGIN} {v}") for v in VIEW_SETS[view_set]]
        trainer = HeadTrainer(**head_settings(settings)).fit(views[:, chosen], labels)
        np.savez(os.path.join(args.out, name.replace(" ", "_") + ".npz"), **trainer.head_)
        result = scores(trainer.transform, sets)
        row(name, result)
        with open(os.path.join(args.out, "results.jsonl"), "a") as f:
            f.write(json.dumps({"config": name, "views": VIEW_SETS[view_set], "settings": settings, "scores": result}) + "\n")


if __name__ == "__main__":
    main()
