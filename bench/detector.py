"""Benchmark of the face detector: facetag's MTCNN against the stock mtcnn package and dlib's HOG detector.

The detectors, each called on RGB uint8 arrays decoded by facetag.load_image:

* facetag: ``facetag.vision.detection.FaceDetector().detect(image)`` (the mtcnn package's networks and
  weights, the whole cascade one compiled TensorFlow function, see facetag.vision.cascade; photos over
  DETECTION_MAX_SIDE pixels searched downscaled to it).
* stock mtcnn: ``mtcnn.MTCNN().detect_faces(image, box_format="xyxy")``, the package called directly,
  faces with confidence >= 0.9 kept (facetag's default threshold; both look for faces from 20 px).
* dlib HOG: ``face_recognition.face_locations(image, model="hog")``, face_recognition's default
  (one upsampling).

The photo sets:

* real photos: the first 100 lfw_dev photos (250x250) in sorted order, one face each plus any
  bystanders.
* large photos, built from real ones: one photo upscaled to 512x512 (the issue's reference point: ~0.4 s
  with the stock package), and 2x2, 3x3 and 4x3 tilings of the first photos of different
  lfw_dev people, each upscaled (PIL bilinear) to a square tile so that the tiling has about 2, 6 and
  12 MP. Faces are large there (about 40% of a tile's side); the stock package still searches the whole
  pyramid down to 20 px faces, facetag searches the photo downscaled to DETECTION_MAX_SIDE.

Without ../shared/data, facetag's sample photos stand in for lfw_dev's (cropped to squares in tilings).

Reported per set: photos/s of each detector (median over --reps repetitions of the whole set), the
speed ratios facetag/stock and facetag/dlib, the process's CPU time over wall time, and the faces
each detector found, with how many of facetag's boxes match a stock-mtcnn box with IoU >= 0.5
(one-to-one, greedy by IoU), so that "the same faces are found" can be checked. Before each set,
each detector is called once on the set's first photo, untimed in the medians: its time is reported
apart, as the cost of a photo size not seen before (TensorFlow prepares kernels per input shape; in
the first set it also includes loading the networks and tracing facetag's).

Run from the repository root (the default run takes a few minutes, most of it the stock package and
dlib on the 6 and 12 MP photos)::

    python bench/detector.py                  # 100 lfw photos, 512 px, 2, 6 and 12 MP; 3 repetitions
    python bench/detector.py --reps 5 --out bench/detector_results.md
    python bench/detector.py --quick          # 5 lfw photos, 512 px and a 1 MP 2x2 tiling, 1 repetition

The Markdown report goes to stdout (and to --out); progress and TensorFlow's messages to stderr.
"""

import argparse
import os
import sys
from dataclasses import dataclass

import benchutil
import face_recognition
import numpy as np
from mtcnn import MTCNN
from PIL import Image

import facetag
from facetag.vision.detection import DEFAULT_MIN_SCORE, FaceDetector

LFW_PHOTOS = 100
# (name, tiles across, tiles down, pixels of the whole photo)
LARGE = (("512x512", 1, 1, 512 * 512), ("2x2 tiles, 2 MP", 2, 2, 2e6), ("3x3 tiles, 6 MP", 3, 3, 6e6),
         ("4x3 tiles, 12 MP", 4, 3, 12e6))
QUICK = {"lfw_photos": 5, "large": (LARGE[0], ("2x2 tiles, 1 MP", 2, 2, 1e6))}
IOU_MATCH = 0.5


@dataclass(frozen=True)
class PhotoSet:
    name: str
    photos: list  # RGB uint8 arrays


@dataclass(frozen=True)
class Run:
    """One detector on one photo set."""

    warm_up: benchutil.Timing  # the first call, on the set's first photo
    median: benchutil.Timing  # of the whole set
    boxes: list  # per photo, from the last repetition


# ---- photos ----

def square(image):
    """The centred square of an image (lfw_dev's photos already are)."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[top:top + side, left:left + side]


def tiling(images, across, down, pixels):
    """``across`` x ``down`` of the images, each upscaled to a square tile, about ``pixels`` in all."""
    side = round((pixels / (across * down)) ** 0.5)
    tiles = [np.asarray(Image.fromarray(square(image)).resize((side, side), Image.BILINEAR)) for image in images]
    rows = [np.concatenate(tiles[r * across:(r + 1) * across], axis=1) for r in range(down)]
    return np.concatenate(rows, axis=0)


def one_per_person(paths):
    """The first photo in each folder (lfw_dev has one per person), in order."""
    firsts = {}
    for path in paths:
        firsts.setdefault(os.path.dirname(path), path)
    return list(firsts.values())


def photo_sets(lfw_photos, large):
    paths, source = benchutil.photo_paths()
    sets = [PhotoSet(f"{min(lfw_photos, len(paths))} real photos", [facetag.load_image(p) for p in paths[:lfw_photos]])]
    people = [facetag.load_image(p) for p in one_per_person(paths)[:max(across * down for _, across, down, _ in large)]]
    for name, across, down, pixels in large:
        tiles = [people[i % len(people)] for i in range(across * down)]
        sets.append(PhotoSet(name, [tiling(tiles, across, down, pixels)]))
    return sets, source


# ---- detectors: each maps an RGB image to boxes (left, top, right, bottom) ----

def facetag_detector():
    detector = FaceDetector()
    return lambda image: [d.box for d in detector.detect(image)]


def stock_detector():
    mtcnn = MTCNN()
    return lambda image: [tuple(face["box"]) for face in mtcnn.detect_faces(image, box_format="xyxy")
                          if face["confidence"] >= DEFAULT_MIN_SCORE]


def dlib_detector():
    return lambda image: [(left, top, right, bottom)
                          for top, right, bottom, left in face_recognition.face_locations(image, model="hog")]


DETECTORS = {"facetag": facetag_detector, "stock mtcnn": stock_detector, "dlib HOG": dlib_detector}


# ---- faces found ----

def iou(a, b):
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def matches(boxes, references, threshold=IOU_MATCH):
    """How many boxes pair one-to-one with a reference box at IoU >= threshold, greedily by IoU."""
    pairs = sorted(((iou(a, b), i, j) for i, a in enumerate(boxes) for j, b in enumerate(references)), reverse=True)
    used_boxes, used_references = set(), set()
    for overlap, i, j in pairs:
        if overlap < threshold:
            break
        if i not in used_boxes and j not in used_references:
            used_boxes.add(i)
            used_references.add(j)
    return len(used_boxes)


# ---- timing ----

def detect_all(detect, photos):
    return [detect(photo) for photo in photos]


def benchmark(detectors, photo_set, reps):
    """{detector name: Run}."""
    results = {}
    for name, detect in detectors.items():
        print(f"{photo_set.name}: {name}", file=sys.stderr, flush=True)
        warm_up, _ = benchutil.timed(lambda: detect(photo_set.photos[0]))
        median, boxes = benchutil.median_timing(lambda: detect_all(detect, photo_set.photos), reps)
        results[name] = Run(warm_up, median, boxes)
    return results


# ---- report ----

def size_cell(photos):
    sizes = {f"{photo.shape[1]}x{photo.shape[0]}" for photo in photos}
    return sizes.pop() if len(sizes) == 1 else "various"


def rate_cell(photos, timing):
    rate = photos / timing.wall
    return f"{rate:.2f} ({1000 / rate:,.0f} ms)"


def speed_table(sets, results):
    names = list(DETECTORS)
    lines = ["| photo set | size | " + " | ".join(f"{n} photos/s (ms/photo)" for n in names)
             + " | facetag ÷ stock | facetag ÷ dlib | cores busy " + " / ".join(names) + " |",
             "|---|---|" + "---:|" * (len(names) + 3)]
    for photo_set, result in zip(sets, results):
        count = len(photo_set.photos)
        wall = {name: result[name].median.wall for name in names}
        lines.append(f"| {photo_set.name} | {size_cell(photo_set.photos)} | "
                     + " | ".join(rate_cell(count, result[name].median) for name in names)
                     + f" | {wall['stock mtcnn'] / wall['facetag']:.2f}x | {wall['dlib HOG'] / wall['facetag']:.2f}x | "
                     + " / ".join(f"{result[name].median.cores_busy:.2f}" for name in names) + " |")
    return lines


def faces_table(sets, results):
    names = list(DETECTORS)
    lines = ["| photo set | " + " | ".join(f"faces by {n}" for n in names)
             + " | facetag − stock | facetag boxes matching a stock box (IoU ≥ 0.5) |",
             "|---|" + "---:|" * (len(names) + 2)]
    for photo_set, result in zip(sets, results):
        boxes = {name: result[name].boxes for name in names}
        counts = {name: sum(len(b) for b in boxes[name]) for name in names}
        matched = sum(matches(f, s) for f, s in zip(boxes["facetag"], boxes["stock mtcnn"]))
        difference = counts["facetag"] - counts["stock mtcnn"]
        share = f" ({difference / counts['stock mtcnn']:+.1%})" if counts["stock mtcnn"] else ""
        lines.append(f"| {photo_set.name} | " + " | ".join(str(counts[name]) for name in names)
                     + f" | {difference:+d}{share} | {matched} of {counts['facetag']} |")
    return lines


def warm_up_table(sets, results):
    names = list(DETECTORS)
    lines = ["| photo set | " + " | ".join(f"{n} ms" for n in names) + " |", "|---|" + "---:|" * len(names)]
    for photo_set, result in zip(sets, results):
        lines.append(f"| {photo_set.name} | " + " | ".join(f"{result[name].warm_up.wall * 1000:,.0f}" for name in names)
                     + " |")
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions of each set; medians are reported")
    parser.add_argument("--lfw-photos", type=int, default=LFW_PHOTOS, help="photos in the lfw set")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK['lfw_photos']} lfw photos, "
                             f"{' and '.join(name for name, *_ in QUICK['large'])}, 1 repetition")
    parser.add_argument("--out", help="also write the report to this Markdown file")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.lfw_photos = 1, QUICK["lfw_photos"]
    args.large = QUICK["large"] if args.quick else LARGE
    return args


def main(argv=None):
    args = parse_args(argv)
    sets, source = photo_sets(args.lfw_photos, args.large)
    detectors = {name: make() for name, make in DETECTORS.items()}
    results = [benchmark(detectors, photo_set, args.reps) for photo_set in sets]

    lines = ["# Face detector benchmark: facetag against the stock mtcnn package and dlib's HOG detector", ""]
    lines += benchutil.machine_facts()
    lines += [f"- Photos: {source}; large photos are tilings of the first photos of different people, upscaled "
              "(PIL bilinear)",
              f"- Medians of {args.reps} repetitions of each whole set, after a warm-up call on its first photo; "
              f"faces are those with score ≥ {DEFAULT_MIN_SCORE} for both MTCNNs",
              "", "## Speed", ""]
    lines += speed_table(sets, results)
    lines += ["", "## Faces found", ""]
    lines += faces_table(sets, results)
    lines += ["", "## Warm-up call: the first on each set's photo size, not in the medians", "",
              "The first set's also includes loading the networks and, for facetag, tracing them.", ""]
    lines += warm_up_table(sets, results)
    benchutil.write_report(lines, args.out)


if __name__ == "__main__":
    main()
