"""Open-set identification on lfw_dev with the Beam jobs: enroll, then tag.

    python scripts/evaluate_identification.py [--images ../shared/data/lfw_dev/images] [--people N] [Beam options]

People with >= 4 photos: the first 2 are enrolled, the rest are tagged; 300
one-photo people are tagged as strangers. Prints rank-1 accuracy of the known,
the share identified correctly at the default threshold, and the share of
strangers labelled unknown. The figures in the README come from this script.
"""

import argparse
import csv
import json
import os
import tempfile
import time

import numpy as np

from beam_jobs import enroll, tag
from facetag.archive.store import ArchiveStore
from facetag.learn.evaluation import identification_split, score_identification
from facetag.vision.models import DEFAULT_MODEL, IDENTIFY_THRESHOLDS


#: The 1:K thresholds swept, around each model's default (facetag-256's distances are about half as long).
SWEEP = np.arange(0.70, 1.21, 0.05).round(2)
SWEEPS = {"facetag-256": np.arange(0.40, 0.601, 0.02).round(2), "facetag-duo": np.arange(0.72, 0.821, 0.01).round(2)}


def run_protocol(images, work, people=None, strangers=300, model=None, threshold=None, beam_args=()):
    gallery, probes = identification_split(images, people=people, strangers=strangers)
    gallery_csv = os.path.join(work, "gallery.csv")
    with open(gallery_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["uri", "identity"])
        writer.writerows(gallery)
    probe_dir = os.path.join(work, "probes")
    os.makedirs(probe_dir)
    for path, _ in probes:
        os.symlink(path, os.path.join(probe_dir, os.path.basename(path)))
    model_args = ["--model", model] if model else []
    start = time.perf_counter()
    enroll.run(["--gallery", gallery_csv, "--out", os.path.join(work, "index"), *model_args, *beam_args])
    enrolled = time.perf_counter()
    # Tagging with the loosest swept threshold keeps every nearest candidate; scores apply each threshold after.
    tag.run(["--input", probe_dir, "--index", os.path.join(work, "index"), "--store", os.path.join(work, "tagged"),
             "--threshold", "2.0", *model_args, *beam_args])
    tagged = time.perf_counter()
    rows = ArchiveStore(os.path.join(work, "tagged")).read("matches").to_pylist()
    original = {os.path.join(probe_dir, os.path.basename(p)): p for p, _ in probes}
    answers = {}
    for row in rows:  # a photo may show several faces: the one nearest to a gallery face answers for it
        path = original[row["path"]]
        answer = (row["candidates"][0]["identity"], row["distance"])
        if path not in answers or answer[1] < answers[path][1]:
            answers[path] = answer
    report = score_identification(probes, answers, threshold or IDENTIFY_THRESHOLDS[model or DEFAULT_MODEL])
    report.update(gallery_photos=len(gallery), people=len({who for _, who in gallery}),
                  enroll_seconds=round(enrolled - start, 1), tag_seconds=round(tagged - enrolled, 1),
                  tag_photos_per_second=round(len(probes) / (tagged - enrolled), 2),
                  sweep=[score_identification(probes, answers, t) for t in SWEEPS.get(model or DEFAULT_MODEL, SWEEP)])
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", default="../shared/data/lfw_dev/images")
    parser.add_argument("--people", type=int, help="only the first N known people (quick runs)")
    parser.add_argument("--strangers", type=int, default=300, help="one-photo people tagged as strangers")
    parser.add_argument("--model")
    args, beam_args = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory() as work:
        report = run_protocol(os.path.abspath(args.images), work, args.people, args.strangers, args.model,
                              beam_args=beam_args)
    sweep = report.pop("sweep")
    print(json.dumps(report, indent=2))
    print("\n| threshold | known identified | strangers rejected |\n|---|---|---|")
    for row in sweep:
        print(f"| {row['threshold']:.2f} | {100 * row['identified_at_threshold']:.1f}% | "
              f"{100 * row['strangers_rejected']:.1f}% |")


if __name__ == "__main__":
    main()
