"""Big photos decoded small: a full decode against facetag.vision.photo's reduced JPEG decode, at 2, 12 and 24 MP.

    python bench/decode.py [--scenes 4] [--reps 3]

Photos: scenes of 12 colour_faces photos (../shared/data/colour_faces, web
photos of 500 px) in a 4 x 3 grid, each scene the next 12 people, enlarged
(bicubic) to 2, 12 and 24 megapixels and saved as quality-90 JPEGs with 4:2:0
chroma, as cameras write them. Per photo, each way does what a facetag worker
does: decode, search for faces, crop them (160 x 160):

- full decode: facetag.io.images.decode_image, detect_framed on the whole photo
  (the detector shrinks it to 1280 px), crop_face from the full decode;
- reduced decode: facetag.vision.photo.Photo (libjpeg's DCT scaling to the smallest
  of 1/2, 1/4, 1/8 still 1280 px long), its detect and crop.

Reported: photos per second and milliseconds per step (medians of ``--reps``
passes over the scenes, one photo at a time), faces found each way, and how the
encodings differ: the same box cropped from both decodes (the crop's own
error), and each way's own detections matched by overlap (what a user sees).
"""

import argparse
import glob
import io
import os
import statistics
import time

import benchutil
import numpy as np
from PIL import Image

from facetag.io.images import decode_image
from facetag.vision.alignment import crop_face
from facetag.vision.detection import shared_detector
from facetag.vision.framing import detect_framed
from facetag.vision.models import load_model
from facetag.vision.photo import Photo


def scenes(data_dir, count, megapixels):
    """``count`` JPEG scenes (bytes) of 12 people each, at ``megapixels``."""
    people = sorted(glob.glob(os.path.join(data_dir, "colour_faces", "images", "*")))
    width, height = round((megapixels * 1e6 * 4 / 3) ** 0.5), round((megapixels * 1e6 * 3 / 4) ** 0.5)
    made = []
    for scene in range(count):
        canvas = Image.new("RGB", (2000, 1500))
        for i, person in enumerate(people[scene * 12:(scene + 1) * 12]):
            tile = Image.open(sorted(glob.glob(os.path.join(person, "*")))[0]).convert("RGB").resize((500, 500))
            canvas.paste(tile, ((i % 4) * 500, (i // 4) * 500))
        buffer = io.BytesIO()
        canvas.resize((width, height), Image.BICUBIC).save(buffer, "JPEG", quality=90)
        made.append(buffer.getvalue())
    return made


def full_way(data, detector):
    started = time.perf_counter()
    image = decode_image(data, "scene.jpg")
    decoded = time.perf_counter()
    faces = detect_framed(detector, image)
    searched = time.perf_counter()
    crops = [crop_face(image, face.box) for face in faces]
    return faces, crops, (decoded - started, searched - decoded, time.perf_counter() - searched)


def reduced_way(data, detector):
    started = time.perf_counter()
    photo = Photo(data, "scene.jpg")
    decoded = time.perf_counter()
    faces = photo.detect(detector)
    searched = time.perf_counter()
    crops = [photo.crop(face.box) for face in faces]
    return faces, crops, (decoded - started, searched - decoded, time.perf_counter() - searched), photo


def iou(a, b):
    width, height = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0) * max(height, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def measure(photos, reps):
    detector, model = shared_detector(), load_model("facetag-128")  # the FaceNet crops' encodings: chips are not measured here
    full_way(photos[0], detector), reduced_way(photos[0], detector)  # warm-up
    steps = {"full": [], "reduced": []}
    for _ in range(reps):
        steps["full"].append([full_way(data, detector)[2] for data in photos])
        steps["reduced"].append([reduced_way(data, detector)[2] for data in photos])
    same_box, matched, counts, scales = [], [], {"full": 0, "reduced": 0}, set()
    for data in photos:
        full_faces, full_crops, _ = full_way(data, detector)
        reduced_faces, reduced_crops, _, photo = reduced_way(data, detector)
        scales.add(photo.scale)
        counts["full"] += len(full_faces)
        counts["reduced"] += len(reduced_faces)
        image = decode_image(data, "scene.jpg")
        same_box += list(np.linalg.norm(model.encode(np.stack([photo.crop(f.box) for f in full_faces]))
                                        - model.encode(np.stack([crop_face(image, f.box) for f in full_faces])), axis=1))
        pairs = [(i, max(range(len(reduced_faces)), key=lambda j: iou(f.box, reduced_faces[j].box)))
                 for i, f in enumerate(full_faces)]
        pairs = [(i, j) for i, j in pairs if iou(full_faces[i].box, reduced_faces[j].box) > 0.5]
        matched += list(np.linalg.norm(model.encode(np.stack([full_crops[i] for i, _ in pairs]))
                                       - model.encode(np.stack([reduced_crops[j] for _, j in pairs])), axis=1))
    medians = {way: [statistics.median(statistics.median(rep[p][k] for p in range(len(photos))) for rep in runs)
                     for k in range(3)] for way, runs in steps.items()}
    return medians, counts, np.array(same_box), np.array(matched), scales


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(benchutil.REPO, "..", "shared", "data"))
    parser.add_argument("--megapixels", type=float, nargs="+", default=[2, 12, 24])
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    lines = ["## Decoding big photos (`python bench/decode.py`)", "", *benchutil.machine_facts(),
             f"- {args.scenes} scenes per size, 12 faces each; medians of {args.reps} passes, one photo at a time", "",
             "| photo size | way | decode ms | search ms | crop ms | photos/s | faces found | reduced ÷ full |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    accuracy = ["", "Encoding distance (facetag-128) between the two ways' crops: the same box (crop error alone), "
                "and each way's own detections matched by overlap (IoU > 0.5):", "",
                "| photo size | decoded at | same box: median / max | own detections: median / max |",
                "|---|---|---:|---:|"]
    for megapixels in args.megapixels:
        photos = scenes(args.data, args.scenes, megapixels)
        medians, counts, same_box, matched, scales = measure(photos, args.reps)
        rates = {way: 1 / sum(steps) for way, steps in medians.items()}
        for way in ("full", "reduced"):
            decode, search, crop = (1000 * s for s in medians[way])
            ratio = f"{rates['reduced'] / rates['full']:.2f}x" if way == "reduced" else ""
            lines.append(f"| {megapixels:g} MP | {way} | {decode:.0f} | {search:.0f} | {crop:.0f} | "
                         f"{rates[way]:.2f} | {counts[way]} | {ratio} |")
        accuracy.append(f"| {megapixels:g} MP | 1/{' 1/'.join(str(s) for s in sorted(scales))} | "
                        f"{np.median(same_box):.3f} / {same_box.max():.3f} | "
                        f"{np.median(matched):.3f} / {matched.max():.3f} |")
    benchutil.write_report(lines + accuracy, None)


if __name__ == "__main__":
    main()
