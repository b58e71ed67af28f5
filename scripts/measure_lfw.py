"""Compare preprocessing choices on all lfw_dev pairs (5-fold accuracy, plain 512-d backbone).

    python scripts/measure_lfw.py [--data ../shared/data/lfw_dev] [--margins 0.2 0.3 0.4] [--variants prewhiten landmarks]

Detections are cached, so each extra margin costs only the encoding pass.
The table it prints is copied into weights/README.md.
"""

import argparse
import sys

import numpy as np

from facetag.learn.evaluation import kfold_accuracy, read_pairs
from facetag.learn.filecache import FileEncoder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data/lfw_dev")
    parser.add_argument("--margins", type=float, nargs="+", default=[0.2, 0.3, 0.4])
    parser.add_argument("--fallbacks", nargs="+", default=["centre"])
    parser.add_argument("--variants", nargs="*", default=[], choices=["prewhiten", "landmarks"],
                        help="also measure per-image standardisation or 5-landmark alignment (margin: the first)")
    args = parser.parse_args(argv)
    pairs = read_pairs(f"{args.data}/pairs.txt", f"{args.data}/images")
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    index = {p: i for i, p in enumerate(paths)}
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    print(f"{len(pairs)} pairs, {len(paths)} images")
    print("| margin | on a miss | missed images | 5-fold accuracy |")
    print("|---|---|---|---|")
    for fallback in args.fallbacks:
        for margin in args.margins:
            result = FileEncoder(margin=margin, fallback=fallback).encode(
                paths, progress=lambda d, t: print(f"  {d}/{t}", file=sys.stderr, end="\r")
            )
            e = result.encodings
            a = e[[index[p.a] for p in pairs]]
            b = e[[index[p.b] for p in pairs]]
            dist = np.linalg.norm(a - b, axis=1)
            ok_pair = result.detected[[index[p.a] for p in pairs]] & result.detected[[index[p.b] for p in pairs]]
            if fallback == "none":
                dist[~ok_pair] = np.inf  # a pair with a missed face can only be called "different"
            acc, _ = kfold_accuracy(dist, same, folds)
            print(f"| {margin} | {fallback} | {int((~result.detected).sum())} | {acc.mean():.4f} ± {acc.std():.4f} |", flush=True)
    if args.variants:
        print("| variant | 5-fold accuracy |\n|---|---|")
    for variant in args.variants:
        measure_variant(variant, args.data, args.margins[0])


def measure_variant(variant, data, margin):
    """Alternative preprocessing on the cached detections: per-image standardisation, or 5-landmark alignment."""
    import cv2

    from facetag.io.images import load_image
    from facetag.learn.filecache import FileEncoder
    from facetag.vision.alignment import CROP_SIZE, centre_box, crop_face, standardize
    from facetag.vision.backbone import load_backbone

    pairs = read_pairs(f"{data}/pairs.txt", f"{data}/images")
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    encoder = FileEncoder(margin=margin)
    encoder.encode(paths)  # detects (cached) every photo
    detections = encoder.main_faces(paths)
    backbone = load_backbone()
    # ArcFace's 112x112 five-point template, scaled to the 160x160 crop.
    template = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]], np.float32) * CROP_SIZE / 112
    encodings = []
    for start in range(0, len(paths), 64):
        crops = []
        for path in paths[start:start + 64]:
            image = load_image(path)
            entry = detections[path]
            if variant == "landmarks" and entry is not None:
                matrix, _ = cv2.estimateAffinePartial2D(np.array(entry[2], np.float32), template)
                crops.append(cv2.warpAffine(image, matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR))
            else:
                crops.append(crop_face(image, entry[0] if entry else centre_box(image.shape), margin=margin))
        batch = np.stack(crops).astype(np.float32)
        if variant == "prewhiten":
            mean = batch.mean(axis=(1, 2, 3), keepdims=True)
            std = np.maximum(batch.std(axis=(1, 2, 3), keepdims=True), 1.0 / np.sqrt(batch[0].size))
            batch = ((batch - mean) / std).astype(np.float32)
        else:
            batch = standardize(batch)
        encodings.append(backbone.encode_normalised(batch))
    e = np.concatenate(encodings)
    index = {p: i for i, p in enumerate(paths)}
    dist = np.linalg.norm(e[[index[p.a] for p in pairs]] - e[[index[p.b] for p in pairs]], axis=1)
    acc, _ = kfold_accuracy(dist, np.array([p.same for p in pairs]), np.array([p.fold for p in pairs]))
    print(f"| {variant} | {acc.mean():.4f} ± {acc.std():.4f} |", flush=True)


if __name__ == "__main__":
    main()
