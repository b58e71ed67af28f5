"""Compare preprocessing choices on all lfw_dev pairs (5-fold accuracy, plain 512-d backbone).

    python scripts/measure_lfw.py [--data ../shared/data/lfw_dev] [--margins 0.2 0.3 0.4]

Detections are cached, so each extra margin costs only the encoding pass.
The table it prints is copied into weights/README.md.
"""

import argparse
import sys

import numpy as np

from facetag.evaluation import kfold_accuracy, read_pairs
from facetag.filecache import FileEncoder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data/lfw_dev")
    parser.add_argument("--margins", type=float, nargs="+", default=[0.2, 0.3, 0.4])
    parser.add_argument("--fallbacks", nargs="+", default=["centre"])
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


if __name__ == "__main__":
    main()
