"""dlib's ResNet in full-integer int8 against float32: facetag-256 (int8) and facetag-256-v1 (float32) side by side.

    python bench/dlib_int8.py [--chips 400]

Accuracy: each held-out pair set of scripts/compare_colour.py (build the colour sets with
scripts/colour_sets.py first), the same detections and crops for both models (facetag.learn.filecache), 5-fold
accuracy / ROC AUC / TAR at FAR 1e-3. Speed: chips a second of each network on the aligned chips of the
first ``--chips`` colour web photos' main faces, batches of 8 on every core (best of 3), and how far apart the
two networks' encodings of the same chips are.
"""

import argparse
import os
import sys
import time

import numpy as np
from benchutil import machine_facts

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from compare_colour import SETS, set_pairs  # noqa: E402

from facetag.learn.evaluation import verification_scores  # noqa: E402
from facetag.learn.filecache import FileEncoder  # noqa: E402
from facetag.vision.alignment import DEFAULT_MARGIN  # noqa: E402
from facetag.vision.dlib_encoder import load_dlib_encoder  # noqa: E402
from facetag.vision.models import load_model  # noqa: E402

MODELS = ("facetag-256", "facetag-256-v1")
SCORED = ("grey-lfw", "colour-lfw", "colour-web", "tight-web")


def accuracy_rows():
    lines = ["| held-out set | " + " | ".join(f"{m} (dlib {load_model(m).dlib.precision})" for m in MODELS) + " |",
             "|---|" + "---|" * len(MODELS)]
    for key in SCORED:
        name, pairs_file, images = SETS[key]
        if not os.path.exists(pairs_file):
            continue
        pairs = set_pairs(pairs_file, images)
        paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
        row = {p: i for i, p in enumerate(paths)}
        a, b = np.array([row[p.a] for p in pairs]), np.array([row[p.b] for p in pairs])
        cells = []
        for model in MODELS:
            e = FileEncoder(margin=DEFAULT_MARGIN).model_encodings(load_model(model), paths).encodings
            s = verification_scores(np.linalg.norm(e[a] - e[b], axis=1), np.array([p.same for p in pairs]),
                                    np.array([p.fold for p in pairs]))
            cells.append(f"{100 * s['accuracy_mean']:.2f}% / {s['roc_auc']:.4f} / {100 * s['tar_at_far_1e-3']:.1f}%")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def speed_rows(count):
    from facetag.io.images import load_image
    from facetag.vision.alignment import align_face

    _, pairs_file, images = SETS["colour-web"]
    paths = sorted({p.a for p in set_pairs(pairs_file, images)})[:count]
    encoder = FileEncoder(margin=DEFAULT_MARGIN)
    encoder.encode(paths)
    faces = encoder.main_faces(paths)
    chips = np.stack([align_face(load_image(p), faces[p][2]) for p in paths if faces[p] is not None])
    lines = [f"Speed on {len(chips)} chips, batches of 8:", "", "| network | chips/s | ms a chip |", "|---|---:|---:|"]
    encodings = {}
    for precision in ("int8", "fp32"):
        network = load_dlib_encoder(precision)
        network.encode(chips[:8])
        best = min(_timed(lambda: network.encode(chips)) for _ in range(3))
        encodings[precision] = network.encode(chips)
        lines.append(f"| dlib {precision} | {len(chips) / best:.0f} | {1000 * best / len(chips):.2f} |")
    distance = np.linalg.norm(encodings["int8"] - encodings["fp32"], axis=1)
    lines += ["", f"int8 from float32: {np.median(distance):.3f} at the median, {distance.max():.3f} at most "
              "(unit encodings; facetag-256's dlib part weighs 2.69 of 2.87)"]
    return lines


def _timed(work):
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chips", type=int, default=400)
    args = parser.parse_args(argv)
    lines = ["# dlib's ResNet: int8 against float32", "", *machine_facts(), "",
             "Each cell: 5-fold accuracy / ROC AUC / TAR at FAR 1e-3.", "", *accuracy_rows(), "",
             *speed_rows(args.chips)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
