"""facetag-128, facenet-512, facetag-256 and face_recognition's recipe side by side on the same held-out pairs.

    python scripts/compare_colour.py [--sets NAME ...] [--head NAME=PATH ...] [--border mean reflect clip]
                                     [--bootstrap N]

Every set's pairs are people the head never saw: lfw_dev's pairs (grey, colour, and a grey photo
against a colour one; the head trains only on other LFW people) and the colour_faces validation
people of scripts/colour_sets.py (run it first: it also makes the tight crops). For each set and
system: 5-fold accuracy (threshold from the other folds), ROC AUC, TAR at FAR 1e-3 and the photos
without a detected face. A photo without a detection is encoded from its centre (half its shorter
side; on the tight crops the whole crop) by every system alike.

face_recognition's recipe (installed as `make bench-setup` does): dlib's HOG detector
(face_locations, 1 upsampling), the main face by facetag's rule, face_encodings with its defaults
(5-point alignment, 1 jitter), L2 distance. Its encodings are cached under the facetag cache.
``--head NAME=PATH`` adds a candidate head (.npz) on the same backbone encodings. ``--bootstrap N``
also prints facetag-128's lead over every other system with a 95% interval from N paired
resamples of the pairs: with 1,500 different pairs a set's TAR at FAR 1e-3 rests on its one or two
closest strangers, so a lead there means little without its interval.
"""

import argparse
import os
import sys

import numpy as np

from facetag.io.cachedir import default_cache_dir
from facetag.learn.evaluation import Pair, read_pairs, verification_scores
from facetag.learn.filecache import FileEncoder, file_key
from facetag.vision.alignment import DEFAULT_BORDER, DEFAULT_MARGIN, centre_box
from facetag.vision.models import FaceModel, load_model

DATA = "../shared/data"
COLOUR = "out/colour"
SETS = {
    "grey-lfw": ("grey LFW (lfw_dev pairs)", f"{DATA}/lfw_dev/pairs.txt", f"{DATA}/lfw_dev/images"),
    "colour-lfw": ("colour LFW (lfw_dev_colour pairs)", f"{DATA}/lfw_dev_colour/pairs.txt", f"{DATA}/lfw_dev_colour/images"),
    "colour-web": ("colour web photos, full size (colour_faces validation people)", f"{COLOUR}/colour_faces_val.pairs.txt",
                   f"{DATA}/colour_faces/images"),
    "tight-web": ("tight 112x112 crops of those", f"{COLOUR}/colour_faces_val.pairs.txt", f"{COLOUR}/tight_colour_faces/images"),
    "mixed-lfw": ("grey against colour LFW (lfw_dev pairs, first photo grey, second in colour)", f"{DATA}/lfw_dev/pairs.txt",
                  (f"{DATA}/lfw_dev/images", f"{DATA}/lfw_dev_colour/images")),
    "tight-lfw": ("tight 96x96 crops of colour LFW", f"{DATA}/lfw_dev_colour/pairs.txt", f"{COLOUR}/tight_lfw_colour/images"),
}


def face_recognition_encodings(paths, progress=None, centre_fraction=0.5):
    """(N, 128) encodings and (N,) detected flags by face_recognition's recipe, cached per file.

    A photo where HOG finds no face is encoded from its centre box (``centre_fraction`` of its shorter side).
    """
    import face_recognition

    from facetag.io.images import load_image
    from facetag.vision.detection import main_face

    cache_file = os.path.join(default_cache_dir(), "face_recognition-1.3.0-hog-small-1jitter.npz")
    cached = {}
    if os.path.exists(cache_file):
        with np.load(cache_file) as z:
            cached = dict(zip(z["keys"].tolist(), zip(z["encodings"], z["detected"])))
    keys = [file_key(p) for p in paths]
    if centre_fraction != 0.5:  # a miss's encoding depends on the fallback box
        keys = [k if k in cached and cached[k][1] else f"{k}|centre{centre_fraction}" for k in keys]
    todo = [i for i, k in enumerate(keys) if k not in cached]
    for n, i in enumerate(todo):
        image = load_image(paths[i])
        found = [_Box((left, top, right, bottom)) for top, right, bottom, left in face_recognition.face_locations(image)]
        face = main_face(found, image.shape)
        if face is None and not keys[i].endswith(f"|centre{centre_fraction}") and centre_fraction != 0.5:
            keys[i] += f"|centre{centre_fraction}"
        left, top, right, bottom = face.box if face else centre_box(image.shape, centre_fraction)
        encoding = face_recognition.face_encodings(image, known_face_locations=[(top, right, bottom, left)])[0]
        cached[keys[i]] = (encoding, face is not None)
        if n % 100 == 99 or n == len(todo) - 1:
            np.savez(cache_file + ".tmp.npz", keys=np.array(list(cached)), encodings=np.stack([v[0] for v in cached.values()]),
                     detected=np.array([v[1] for v in cached.values()]))
            os.replace(cache_file + ".tmp.npz", cache_file)
        if progress:
            progress(n + 1, len(todo))
    return np.stack([cached[k][0] for k in keys]), np.array([cached[k][1] for k in keys], bool)


class _Box:
    def __init__(self, box):
        self.box = box


def set_pairs(pairs_file, images):
    """The set's pairs; ``images`` may be two folders, the first photo of each pair from one, the second from the other."""
    if isinstance(images, str):
        return read_pairs(pairs_file, images)
    firsts, seconds = (read_pairs(pairs_file, folder) for folder in images)
    return [Pair(a.a, b.b, a.same, a.fold) for a, b in zip(firsts, seconds)]


def pair_distances(encodings, pairs, index):
    ia = np.array([index[p.a] for p in pairs])
    ib = np.array([index[p.b] for p in pairs])
    return np.linalg.norm(encodings[ia] - encodings[ib], axis=1)


def score(name, system, distances, detected, same, folds):
    s = verification_scores(distances, same, folds)
    return (f"| {name} | {system} | {100 * s['accuracy_mean']:.2f}% ± {100 * s['accuracy_std']:.2f} | {s['roc_auc']:.4f} "
            f"| {100 * s['tar_at_far_1e-3']:.1f}% | {int((~detected).sum())} |")


METRICS = (("accuracy_mean", "accuracy", 100, "{:+.2f} pt"), ("roc_auc", "AUC", 1, "{:+.4f}"),
           ("tar_at_far_1e-3", "TAR@1e-3", 100, "{:+.1f} pt"))


def lead_intervals(distances, same, folds, reps, seed=0):
    """facetag-128's lead over each other system: {system: {metric: (lead, low, high, share of resamples led)}}.

    A paired bootstrap: each resample draws, within every fold, as many same and as many different
    pairs as the fold has, with replacement, and scores every system on the same draw; low and high
    bound the central 95% of the resampled leads.
    """
    rng = np.random.default_rng(seed)
    strata = [np.flatnonzero((folds == f) & (same == s)) for f in np.unique(folds) for s in (True, False)]
    systems = list(distances)
    full = {name: verification_scores(d, same, folds) for name, d in distances.items()}
    samples = {name: {key: [] for key, *_ in METRICS} for name in systems}
    for _ in range(reps):
        draw = np.concatenate([rng.choice(stratum, len(stratum)) for stratum in strata])
        for name in systems:
            result = verification_scores(distances[name][draw], same[draw], folds[draw])
            for key, *_ in METRICS:
                samples[name][key].append(result[key])
    out = {}
    for name in systems[1:]:
        out[name] = {}
        for key, *_ in METRICS:
            leads = np.array(samples[systems[0]][key]) - np.array(samples[name][key])
            out[name][key] = (full[systems[0]][key] - full[name][key], *np.percentile(leads, [2.5, 97.5]), float((leads > 0).mean()))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--head", action="append", default=[], metavar="NAME=PATH", help="a candidate head to add")
    parser.add_argument("--border", nargs="+", default=[DEFAULT_BORDER], help="crop border fills to compare (facetag)")
    parser.add_argument("--centre-fraction", type=float, nargs="+",
                        help="centre box for photos without a detection, as a fraction of the shorter side "
                             "(default: 0.5, and 1.0, the whole crop, for the tight sets)")
    parser.add_argument("--no-peer", action="store_true", help="leave face_recognition out")
    parser.add_argument("--folds", type=int, help="score every system on the first FOLDS folds of each set only")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                        help="also print facetag-128's lead over each other system with a 95%% interval from N paired resamples")
    args = parser.parse_args(argv)
    models = [load_model("facetag-128"), load_model("facenet-512"), load_model("facetag-256")]
    for spec in args.head:
        name, path = spec.split("=", 1)
        with np.load(path) as z:
            models.append(FaceModel(name, models[0].backbone, {k: z[k].astype(np.float32) for k in z.files}, None))
    progress = lambda d, t: print(f"\r  {d}/{t}", end="", file=sys.stderr, flush=True)
    leads = []
    print("| held-out set | system | 5-fold accuracy | ROC AUC | TAR at FAR 1e-3 | photos without a detection |")
    print("|---|---|---|---|---|---|")
    for key in args.sets:
        name, pairs_file, images = SETS[key]
        name += f" (folds 1-{args.folds})" if args.folds else ""
        pairs = [p for p in set_pairs(pairs_file, images) if args.folds is None or p.fold < args.folds]
        paths = list(dict.fromkeys(q for p in pairs for q in (p.a, p.b)))  # fold by fold: a partial cache covers whole folds
        index = {p: i for i, p in enumerate(paths)}
        same = np.array([p.same for p in pairs])
        folds = np.array([p.fold for p in pairs])
        compared = {}
        fractions = args.centre_fraction or [1.0 if key.startswith("tight") else 0.5]
        for border in args.border:
            for fraction in fractions:
                encoder = FileEncoder(margin=DEFAULT_MARGIN, border=border, centre_fraction=fraction)
                options = "" if (len(args.border), len(fractions)) == (1, 1) else f" (border {border}, centre {fraction})"
                for model in models:
                    files = encoder.model_encodings(model, paths, progress)
                    compared[model.name + options] = pair_distances(files.encodings, pairs, index)
                    print(score(name, model.name + options, compared[model.name + options], files.detected, same, folds), flush=True)
        if not args.no_peer:
            encodings, detected = face_recognition_encodings(paths, progress, fractions[-1])
            compared["face_recognition (dlib)"] = pair_distances(encodings, pairs, index)
            print(score(name, "face_recognition (dlib)", compared["face_recognition (dlib)"], detected, same, folds), flush=True)
        if args.bootstrap:
            leads.append((name, lead_intervals(compared, same, folds, args.bootstrap)))
    for name, by_system in leads:
        print(f"\n{name}: facetag-128's lead over each system, with the 95% interval of {args.bootstrap} paired resamples "
              "and the share of resamples it leads in\n")
        print("| system | " + " | ".join(label for _, label, _, _ in METRICS) + " |")
        print("|---|" + "---|" * len(METRICS))
        for system, result in by_system.items():
            cells = []
            for key, _, scale, fmt in METRICS:
                lead, low, high, share = result[key]
                cells.append(f"{fmt.format(scale * lead)} [{fmt.format(scale * low)}, {fmt.format(scale * high)}] ({100 * share:.0f}%)")
            print(f"| {system} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
