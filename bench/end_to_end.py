"""End to end: `facetag enroll` + `facetag tag` against the `face_recognition` command line on the same photos.

    python bench/end_to_end.py [--people 150] [--strangers 150] [--reps 2]
    python bench/end_to_end.py --photos web [--people 150] [--strangers 150] [--reps 2]
    python bench/end_to_end.py --photos colour [--people 60] [--strangers 60] [--reps 2]

The labelled set is the open-set protocol of scripts/evaluate_identification.py
on ../shared/data/lfw_dev: the first N people with >= 4 photos enrol their
first 2 photos, their other photos are tagged, plus one-photo strangers.

With ``--photos web`` the photos are ../shared/data/colour_faces as they are: web photos of 0.01 to
0.25 megapixels (longer side up to 500 px, a median of 0.17 MP), each tagged whole. The first N people with
>= 4 photos enrol their first 2 photos; up to 3 of their other photos, and the first photo of N people
with fewer photos (the strangers), are tagged.

With ``--photos colour`` the photos are ../shared/data/colour_faces (web photos,
longer side up to 500 px): the first N people with >= 4 photos enrol their first
2 photos as they are; up to 3 of their other photos, and the first photo of N
people with fewer photos (the strangers), are tiled, in a fixed shuffled order,
into camera-size scenes: 2x2 tiles at 2 megapixels, 3x3 at 6, 4x3 at 12 (as
bench/detector.py tiles lfw_dev), the sizes in turn, each photo enlarged
(bicubic) to fit its square tile on a grey ground, every scene saved as a
quality-90 JPEG with 4:2:0 chroma, as cameras write them. Both tools pay what a
camera file costs to decode and search, with several people to a photo. Each
tile is one probe: the answer for it is the nearest match of the faces whose
box centre lies in the tile. face_recognition runs as
bench/face_recognition_boxes.py, its command line with the per-photo step
printing each face's box too (the command itself prints names only); the work
is the command's.

- facetag: `facetag enroll KNOWN` then `facetag tag UNKNOWN` (Beam, in-process
  runner, and with 2 worker processes), each a fresh process as a user runs
  them, each timed as a whole (start-up and model loading included).
- face_recognition: `face_recognition --cpus 2 KNOWN UNKNOWN` (default
  tolerance 0.6, HOG detector, dlib encoder), timed as a whole. It has no
  stored gallery: every run encodes the known photos, then the unknown ones.

Speed: photos/s = photos each run went through. `facetag tag` goes through the
unknown photos (the gallery was enrolled before, as it is when an archive is
tagged again); `facetag enroll + tag` and face_recognition go through the known
and the unknown photos. Medians of `--reps` runs. Two ratios to face_recognition
(see speed_table): its seconds over the run's for the same probes (issue 14's
measure), and, for lfw_dev, photos/s over its photos/s.

Accuracy, the same labelled set: rank-1 of the known, known identified within
the threshold, strangers rejected, at each tool's default; then at equal
operating points: each tool's threshold set (from its distances in the runs
above) to reject at least a given share of the strangers, and the share of
known photos it then identifies. face_recognition prints distances only up to
its tolerance (0.6), so its thresholds are swept at or below 0.6.

Each facetag mode also tags a folder of one photo: that run's time is the
fixed cost of a run, and (photos - 1) / (tag time - one-photo time) is the
steady rate once the models are loaded, which is what two workers should
scale (the issue's target: 1.7x one worker).
"""

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import benchutil

from facetag.archive.store import ArchiveStore
from facetag.learn.evaluation import identification_split, score_identification
from facetag.vision.models import DEFAULT_MODEL, IDENTIFY_THRESHOLDS

VENV_BIN = os.path.dirname(sys.executable)


def colour_split(images, people, strangers, per_person=3):
    """The open-set split for colour_faces, where every person has at least 2 photos (see the module's text)."""
    names = sorted(os.listdir(images))
    photos = {n: sorted(os.listdir(os.path.join(images, n))) for n in names}
    known = [n for n in names if len(photos[n]) >= 4][:people]
    gallery = [(os.path.join(images, n, f), n) for n in known for f in photos[n][:2]]
    probes = [(os.path.join(images, n, f), n) for n in known for f in photos[n][2:2 + per_person]]
    probes += [(os.path.join(images, n, photos[n][0]), None) for n in names if len(photos[n]) < 4][:strangers]
    return gallery, probes


#: Tiles across and down of a scene, by its size in megapixels (up to the first figure): bench/detector.py's.
GRIDS = ((3, (2, 2)), (8, (3, 3)), (float("inf"), (4, 3)))
SCENE_GROUND = (128, 128, 128)
SCENE_ORDER_SEED = 14


def grid_for(megapixels):
    return next(grid for limit, grid in GRIDS if megapixels <= limit)


def scene(paths, megapixels):
    """The photos at ``paths`` tiled into one scene of about ``megapixels`` (see the module's text): the
    scene, and each tile's (left, top, right, bottom)."""
    from PIL import Image

    across, down = grid_for(megapixels)
    side = round((megapixels * 1e6 / (across * down)) ** 0.5)
    canvas = Image.new("RGB", (across * side, down * side), SCENE_GROUND)
    tiles = []
    for i, path in enumerate(paths):
        left, top = (i % across) * side, (i // across) * side
        photo = Image.open(path).convert("RGB")
        factor = side / max(photo.size)
        photo = photo.resize((round(photo.width * factor), round(photo.height * factor)), Image.BICUBIC)
        canvas.paste(photo, (left + (side - photo.width) // 2, top + (side - photo.height) // 2))
        tiles.append((left, top, left + side, top + side))
    return canvas, tiles


def lay_out_gallery(gallery, work):
    """known/<Name>/... (facetag's layout) and known_flat/<Name>__photo.jpg (face_recognition's)."""
    for path, who in gallery:
        os.makedirs(os.path.join(work, "known", who), exist_ok=True)
        shutil.copy(path, os.path.join(work, "known", who))
        os.makedirs(os.path.join(work, "known_flat"), exist_ok=True)
        shutil.copy(path, os.path.join(work, "known_flat", f"{who}__{os.path.basename(path)}"))


def lay_out(split, work):
    """Folders both tools read: the gallery (lay_out_gallery), probes/ with each probe photo, one_probe/ with
    the first. Returns the gallery and the truth [(probe path, identity or None)]."""
    gallery, probes = split
    lay_out_gallery(gallery, work)
    os.makedirs(os.path.join(work, "probes"))
    for path, _ in probes:
        shutil.copy(path, os.path.join(work, "probes"))
    os.makedirs(os.path.join(work, "one_probe"))
    shutil.copy(os.path.join(work, "probes", os.path.basename(probes[0][0])), os.path.join(work, "one_probe"))
    truth = [(os.path.join(work, "probes", os.path.basename(p)), who) for p, who in probes]
    return gallery, truth, None


def lay_out_scenes(split, work, scene_megapixels):
    """As :func:`lay_out`, the probes tiled into scenes (see the module's text). The truth is keyed by tile,
    ``scene path#tile number``; also returns {scene path: [(tile box, tile key)]}."""
    gallery, probes = split
    lay_out_gallery(gallery, work)
    probes = list(probes)
    random.Random(SCENE_ORDER_SEED).shuffle(probes)
    os.makedirs(os.path.join(work, "probes"))
    truth, tiles, start = [], {}, 0
    while start < len(probes):
        megapixels = scene_megapixels[len(tiles) % len(scene_megapixels)]
        across, down = grid_for(megapixels)
        chunk = probes[start:start + across * down]
        start += len(chunk)
        path = os.path.join(work, "probes", f"scene_{len(tiles):03d}_{megapixels:g}mp.jpg")
        image, boxes = scene([p for p, _ in chunk], megapixels)
        image.save(path, "JPEG", quality=90, subsampling="4:2:0")
        tiles[path] = [(box, f"{path}#{k}") for k, box in enumerate(boxes)]
        truth += [(f"{path}#{k}", who) for k, (_, who) in enumerate(chunk)]
    os.makedirs(os.path.join(work, "one_probe"))
    shutil.copy(next(iter(tiles)), os.path.join(work, "one_probe"))
    return gallery, truth, tiles


def answer_key(path, box, tiles):
    """What a face answers for: its photo, or in a scene the tile its box centre lies in (None: no tile)."""
    if tiles is None or not box:
        return path
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return next((key for (left, top, right, bottom), key in tiles.get(path, ())
                 if left <= x < right and top <= y < bottom), None)


def keep_nearest(answers, key, answer):
    """Each key's nearest answer (identity, distance): a photo's or a tile's several faces answer with their nearest."""
    if key is not None and (key not in answers or answer[1] < answers[key][1]):
        answers[key] = answer


def run_facetag(work, extra, rep, tiles):
    """(enroll s, tag s, tag-one-photo s, {probe: (nearest identity, distance)}); each step a fresh process.

    Tagging one photo measures the fixed cost of a run (start-up, model loading, writing), so that the
    steady rate of the tag step can be told apart from it.
    """
    index, out = os.path.join(work, f"index{rep}"), os.path.join(work, f"tagged{rep}")
    facetag = os.path.join(VENV_BIN, "facetag")

    def timed_run(*args):
        start = time.perf_counter()
        subprocess.run([facetag, *args, *extra], check=True, capture_output=True)
        return time.perf_counter() - start

    enroll = timed_run("enroll", os.path.join(work, "known"), "--out", index)
    tag = timed_run("tag", os.path.join(work, "probes"), "--index", index, "--out", out, "--threshold", "2.0")
    one = timed_run("tag", os.path.join(work, "one_probe"), "--index", index, "--out", out + "-one")
    answers = {}
    for row in ArchiveStore(out).read("matches").to_pylist():
        keep_nearest(answers, answer_key(row["path"], row["box"], tiles),
                     (row["candidates"][0]["identity"], row["distance"]))
    return enroll, tag, one, answers


def run_face_recognition(work, tiles):
    """(seconds, {probe or tile: (nearest identity within its tolerance, distance)}); ("unknown", 9.0) when
    no known face is within it. Scenes go through bench/face_recognition_boxes.py, which also prints boxes."""
    probes = os.path.join(work, "probes")
    if tiles is None:
        command = [os.path.join(VENV_BIN, "face_recognition"), "--show-distance", "true"]
    else:
        command = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "face_recognition_boxes.py")]
    start = time.perf_counter()
    out = subprocess.run([*command, "--cpus", "2", os.path.join(work, "known_flat"), probes],
                         check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    # The command's two pool processes print "path,name,distance" to one pipe and their writes interleave (a
    # line's text and its newline are separate writes), so results are found by pattern, not by line.
    box = r",-?[0-9]+,-?[0-9]+,-?[0-9]+,-?[0-9]+" if tiles is not None else ""
    result = re.compile(re.escape(probes + os.sep) + r"[^,\n]+?,[^,\n]+?,(?:None|[0-9.]+(?:e-?[0-9]+)?)" + box)
    answers = {}
    for match in result.finditer(out.stdout):
        path, name, distance, *box = match.group(0).rsplit(",", 6 if tiles is not None else 2)
        if name == "no_persons_found":
            continue
        who = "unknown" if name == "unknown_person" else name.split("__")[0]
        keep_nearest(answers, answer_key(path, [int(v) for v in box], tiles),
                     (who, float(distance) if distance != "None" else 9.0))
    return seconds, answers


def threshold_rejecting(truth, answers, share, ceiling):
    """The largest threshold <= ceiling at which at least ``share`` of the strangers are rejected, or None."""
    strangers = sorted(answers[p][1] for p, who in truth if who is None and p in answers)
    candidates = sorted({ceiling, *(d - 1e-9 for d in strangers if d - 1e-9 <= ceiling)}, reverse=True)
    for threshold in candidates:
        if score_identification(truth, answers, threshold)["strangers_rejected"] >= share:
            return threshold
    return None


def speed_table(results, photos, rates=True):
    """Rows: each facetag mode's enroll, tag and enroll + tag, then face_recognition, with two ratios.

    - face_recognition's seconds over the run's, for ``tag`` and ``enroll + tag`` (the issue's measure: the
      same probes tagged; face_recognition, which keeps no gallery, encodes the known photos every run);
    - with ``rates``, photos/s over face_recognition's photos/s, which counts the known photos it encodes
      as photos it went through (stricter for ``tag``; meaningless for scenes, whose photos are not alike).
    """
    known, unknown = photos
    fr_seconds = results["face_recognition --cpus 2"]["seconds"]
    baseline = (known + unknown) / fr_seconds
    lines = ["| run | photos | seconds | photos/s | face_recognition's seconds ÷ the run's | photos/s ÷ "
             "face_recognition's |", "|---|---:|---:|---:|---:|---:|"]
    for name, result in results.items():
        if name.startswith("facetag"):
            rows = [(f"{name}: enroll", known, result["enroll"], False),
                    (f"{name}: tag", unknown, result["tag"], True),
                    (f"{name}: enroll + tag", known + unknown, result["enroll"] + result["tag"], True)]
        else:
            rows = [(name, known + unknown, result["seconds"], True)]
        for label, count, seconds, same_probes in rows:
            rate = count / seconds
            time_ratio = f"{fr_seconds / seconds:.2f}x" if same_probes else ""
            rate_ratio = f"{rate / baseline:.2f}x" if rates else ""
            lines.append(f"| {label} | {count} | {seconds:.1f} | {rate:.2f} | {time_ratio} | {rate_ratio} |")
    return lines


def steady_table(results, photos):
    """Each facetag mode's fixed cost per run and steady tagging rate, (photos - 1) / (tag s - one-photo s)."""
    lines = ["| mode | one-photo run, s | steady photos/s | vs the in-process runner |", "|---|---:|---:|---:|"]
    rates = {name: (photos - 1) / (r["tag"] - r["tag_one"]) for name, r in results.items() if name.startswith("facetag")}
    first = next(iter(rates.values()))
    for name, rate in rates.items():
        lines.append(f"| {name} | {results[name]['tag_one']:.1f} | {rate:.2f} | {rate / first:.2f}x |")
    return lines


def accuracy_tables(truth, facetag_answers, fr_answers, model=DEFAULT_MODEL):
    facetag_threshold = IDENTIFY_THRESHOLDS[model]
    defaults = [(f"facetag ({model}, threshold {facetag_threshold})",
                 score_identification(truth, facetag_answers, facetag_threshold)),
                ("face_recognition (tolerance 0.6)", score_identification(truth, fr_answers, 0.6))]
    lines = ["At each tool's default:", "",
             "| tool | rank-1 | identified | strangers rejected | known / strangers without a face |",
             "|---|---:|---:|---:|---:|"]
    for name, score in defaults:
        lines.append(f"| {name} | {100 * score['rank1_accuracy']:.1f}% | {100 * score['identified_at_threshold']:.1f}% | "
                     f"{100 * score['strangers_rejected']:.1f}% | "
                     f"{score['known_without_face']} / {score['strangers_without_face']} |")
    lines += ["", "At equal operating points (known photos identified when each tool rejects at least the share "
              "of strangers on the left; its threshold in brackets):", "",
              "| strangers rejected ≥ | facetag identified | face_recognition identified |", "|---:|---:|---:|"]
    fr_default = defaults[1][1]["strangers_rejected"]
    for share in sorted({fr_default, 0.5, 0.8, 0.9, 0.95, 0.99}):
        cells = []
        for answers, ceiling in ((facetag_answers, 2.0), (fr_answers, 0.6)):
            threshold = threshold_rejecting(truth, answers, share, ceiling)
            if threshold is None:
                cells.append("not reached")
            else:
                score = score_identification(truth, answers, threshold)
                cells.append(f"{100 * score['identified_at_threshold']:.1f}% ({threshold:.3f})")
        lines.append(f"| {100 * share:.1f}% | " + " | ".join(cells) + " |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", choices=("lfw", "web", "colour"), default="lfw")
    parser.add_argument("--data", default="../shared/data", help="the shared data folder")
    parser.add_argument("--people", type=int, default=150)
    parser.add_argument("--strangers", type=int, default=150)
    parser.add_argument("--scene-megapixels", type=float, nargs="+", default=[2, 6, 12],
                        help="sizes the colour probes are written at, in turn")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"facetag's encoding model (default {DEFAULT_MODEL})")
    args = parser.parse_args(argv)
    images = os.path.abspath(os.path.join(args.data, "lfw_dev" if args.photos == "lfw" else "colour_faces", "images"))
    if not os.path.isdir(images):
        sys.exit(f"{images} is absent: this benchmark needs the shared photos")
    machine = benchutil.machine_facts()
    with tempfile.TemporaryDirectory() as work:
        if args.photos == "lfw":
            gallery, truth, tiles = lay_out(identification_split(images, people=args.people, strangers=args.strangers),
                                            work)
        elif args.photos == "web":
            gallery, truth, tiles = lay_out(colour_split(images, args.people, args.strangers), work)
        else:
            gallery, truth, tiles = lay_out_scenes(colour_split(images, args.people, args.strangers), work,
                                                   args.scene_megapixels)
        model = ["--model", args.model]
        modes = {"facetag, in-process runner": model,
                 "facetag, 2 worker processes": [*model, "--direct_num_workers=2", "--direct_running_mode=multi_processing"]}
        results = {}
        for name, extra in modes.items():
            runs = [run_facetag(work, extra, f"{len(results)}-{r}", tiles) for r in range(args.reps)]
            results[name] = {"enroll": statistics.median(r[0] for r in runs),
                             "tag": statistics.median(r[1] for r in runs),
                             "tag_one": statistics.median(r[2] for r in runs), "answers": runs[-1][3]}
        runs = [run_face_recognition(work, tiles) for _ in range(args.reps)]
        results["face_recognition --cpus 2"] = {"seconds": statistics.median(r[0] for r in runs), "answers": runs[-1][1]}
    photos = len(truth) if tiles is None else len(tiles)
    probes = (f"{len(truth)} photos tagged" if tiles is None else
              f"{len(truth)} photos tiled into {photos} scenes at {', '.join(f'{m:g}' for m in args.scene_megapixels)}"
              " MP in turn, the scenes tagged")
    lines = [f"# End to end, {args.photos} photos, facetag's model {args.model}", "", *machine, "",
             f"{len(gallery)} enrolled photos of {len({who for _, who in gallery})} people; {probes} "
             f"({sum(w is not None for _, w in truth)} photos of enrolled people, "
             f"{sum(w is None for _, w in truth)} of strangers); median of {args.reps} runs", "", "## Speed", ""]
    lines += speed_table(results, (len(gallery), photos), rates=tiles is None)
    lines += ["", "The tag step apart from its fixed cost (a run tagging one photo: start-up, models, writing):", ""]
    lines += steady_table(results, photos)
    lines += ["", "## Accuracy (facetag's answers from the in-process runs; both modes give the same)", ""]
    lines += accuracy_tables(truth, results["facetag, in-process runner"]["answers"],
                             results["face_recognition --cpus 2"]["answers"], args.model)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
