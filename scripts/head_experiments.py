"""Train candidate heads on cached backbone views and score each on held-out people.

    python scripts/head_experiments.py [--configs NAME ...] [--out out/heads]

Training photos are those of `facetag train` with the sources of weights/README.md: lfw_dev (grey)
and lfw_dev_colour, both without the people of lfw_dev/pairs.txt; colour_faces without its
validation people (scripts/colour_sets.py) and the lfw_dev pairs people; AT&T/ORL; Yale. Each
configuration is scored on the held-out sets of scripts/compare_colour.py (facetag's crops, no
peer): a table row per set, with the 512-d backbone alone for reference. Views are cached (see
facetag.filecache), so after the first run a configuration costs its training only.
"""

import argparse
import json
import os
import sys

import numpy as np

from facetag.alignment import DEFAULT_MARGIN
from facetag.datasets import pair_people, read_labelled
from facetag.evaluation import read_pairs, verification_scores
from facetag.filecache import FileEncoder
from facetag.training import VIEWS, HeadTrainer, train_head_from_photos, training_views

DATA = "../shared/data"
COLOUR = "out/colour"
SOURCES = [f"{DATA}/lfw_dev/images", f"{DATA}/lfw_dev_colour/images", f"{DATA}/colour_faces/images",
           f"{DATA}/att_orl_faces/labels.csv", f"{DATA}/yalefaces/labels.csv"]
EXCLUDE = [f"{DATA}/lfw_dev/pairs.txt", f"{COLOUR}/colour_faces_val.pairs.txt"]

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
}
VIEW_SETS = {"all": [n for n, _ in VIEWS], "no-tight": [n for n, _ in VIEWS if "tight" not in n], "colour": ["colour"]}
#: CPU budget (two shared cores): colour_faces gives at most this many photos per training person
#: (the first, by name), and lfw_dev_colour every person with several photos but only every third
#: one-photo person. lfw_dev's grey photos are all used.
PHOTOS_PER_PERSON = 4


def training_photos():
    excluded = set().union(*(pair_people(p) for p in EXCLUDE))
    photos, taken = [], {}
    for source in SOURCES:
        items = [(path, who) for path, who in read_labelled(source) if who not in excluded]
        if "lfw_dev_colour" in source:
            counts = {who: sum(w == who for _, w in items) for _, who in items}
            singles = sorted(who for who, n in counts.items() if n == 1)[::3]
            items = [(path, who) for path, who in items if counts[who] > 1 or who in singles]
        for path, who in items:
            if "colour_faces" in source and taken.get(who, 0) >= PHOTOS_PER_PERSON:
                continue
            taken[who] = taken.get(who, 0) + ("colour_faces" in source)
            photos.append((path, who))
    return photos


def held_out():
    from compare_colour import SETS

    sets = {}
    for key, (name, pairs_file, images) in SETS.items():
        if key == "tight-lfw":  # 3,811 more detections: too slow for two shared cores
            continue
        if not os.path.exists(pairs_file) or not os.path.isdir(images):
            continue
        pairs = read_pairs(pairs_file, images)
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
                        help="train this configuration into --head-out with its record (facetag.training), and stop")
    parser.add_argument("--head-out", default="weights/facetag-128.npz")
    parser.add_argument("--views-only", action="store_true", help="encode (cache) the training views and stop")
    args = parser.parse_args(argv)
    photos = training_photos()
    if args.adopt:
        view_set, settings = CONFIGS[args.adopt]
        record = train_head_from_photos(photos, args.head_out, views=[v for v in VIEWS if v[0] in VIEW_SETS[view_set]],
                                        cache_dir=args.train_cache, **settings)
        print(json.dumps(record, indent=2))
        return
    labels = np.array([who for _, who in photos])
    views, _, names, grey = training_views([p for p, _ in photos], [DEFAULT_MARGIN],
                                           progress=lambda d, t: print(f"\r  {d}/{t}", end="", file=sys.stderr, flush=True),
                                           cache_dir=args.train_cache)
    print(f"{len(photos)} training photos ({grey} grey) of {len(set(labels))} people; views {names}", flush=True)
    if args.views_only:
        return
    sets = held_out()
    os.makedirs(args.out, exist_ok=True)
    print("| head | " + " | ".join(sets) + " |  (each: accuracy / AUC / TAR at FAR 1e-3)")
    print("|---|" + "---|" * len(sets))

    def row(name, result):
        print(f"| {name} | " + " | ".join(f"{100 * a:.2f}% / {u:.4f} / {100 * t:.1f}%" for a, u, t in result.values()) + " |", flush=True)

    row("none (facenet-512)", scores(lambda e: e, sets))
    for name in args.configs:
        view_set, settings = CONFIGS[name]
        chosen = [names.index(f"margin {DEFAULT_MARGIN} {v}") for v in VIEW_SETS[view_set]]
        trainer = HeadTrainer(**settings).fit(views[:, chosen], labels)
        np.savez(os.path.join(args.out, name.replace(" ", "_") + ".npz"), **trainer.head_)
        result = scores(trainer.transform, sets)
        row(name, result)
        with open(os.path.join(args.out, "results.jsonl"), "a") as f:
            f.write(json.dumps({"config": name, "views": VIEW_SETS[view_set], "settings": settings, "scores": result}) + "\n")


if __name__ == "__main__":
    main()
