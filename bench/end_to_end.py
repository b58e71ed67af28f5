"""End to end: `facetag enroll` + `facetag tag` against the `face_recognition` command line on the same photos.

    python bench/end_to_end.py [--people 150] [--strangers 150] [--reps 2]
    python bench/end_to_end.py --photos colour [--people 60] [--strangers 60] [--reps 2]

The labelled set is the open-set protocol of beam_jobs.evaluate_identification
on ../shared/data/lfw_dev: the first N people with >= 4 photos enrol their
first 2 photos, their other photos are tagged, plus one-photo strangers.

With ``--photos colour`` the photos are ../shared/data/colour_faces (web photos,
longer side 500 px): the first N people with >= 4 photos enrol their first 2
photos as they are; up to 3 of their other photos, and the first photo of N
people with fewer photos (the strangers), are tagged as camera-size JPEGs:
each enlarged (bicubic) to 2, 6 or 12 megapixels in turn and saved at JPEG
quality 90, so that both tools pay what a camera file costs to decode and
search (not its detail: an enlarged web photo holds no more than the original).

- facetag: `facetag enroll KNOWN` then `facetag tag UNKNOWN` (Beam, in-process
  runner, and with 2 worker processes), each a fresh process as a user runs
  them, each timed as a whole (start-up and model loading included).
- face_recognition: `face_recognition --cpus 2 KNOWN UNKNOWN` (default
  tolerance 0.6, HOG detector, dlib encoder), timed as a whole. It has no
  stored gallery: every run encodes the known photos, then the unknown ones.

Speed: photos/s = photos each run went through. `facetag tag` goes through the
unknown photos (the gallery was enrolled before, as it is when an archive is
tagged again); `facetag enroll + tag` and face_recognition go through the known
and the unknown photos. Medians of `--reps` runs; ratios to face_recognition.

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
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import benchutil

from facetag.evaluation import identification_split, score_identification
from facetag.models import IDENTIFY_THRESHOLDS, DEFAULT_MODEL
from facetag.store import ArchiveStore

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


def camera_size(path, out_path, megapixels):
    """``path`` enlarged to about ``megapixels`` (aspect kept), saved as a quality-90 JPEG at ``out_path``."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    factor = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
    image.resize((round(image.width * factor), round(image.height * factor)), Image.BICUBIC).save(
        out_path, "JPEG", quality=90)


def lay_out(split, work, scene_megapixels=None):
    """Folders both tools read: known/<Name>/..., known_flat/<Name>__i.jpg (face_recognition's layout), probes/.
    With ``scene_megapixels``, each probe is written at the next of these sizes (camera_size)."""
    gallery, probes = split
    for path, who in gallery:
        os.makedirs(os.path.join(work, "known", who), exist_ok=True)
        shutil.copy(path, os.path.join(work, "known", who))
        os.makedirs(os.path.join(work, "known_flat"), exist_ok=True)
        shutil.copy(path, os.path.join(work, "known_flat", f"{who}__{os.path.basename(path)}"))
    os.makedirs(os.path.join(work, "probes"))
    for i, (path, _) in enumerate(probes):
        target = os.path.join(work, "probes", os.path.basename(path))
        if scene_megapixels:
            camera_size(path, target, scene_megapixels[i % len(scene_megapixels)])
        else:
            shutil.copy(path, target)
    os.makedirs(os.path.join(work, "one_probe"))
    shutil.copy(os.path.join(work, "probes", os.path.basename(probes[0][0])), os.path.join(work, "one_probe"))
    truth = [(os.path.join(work, "probes", os.path.basename(p)), who) for p, who in probes]
    return gallery, truth


def run_facetag(work, extra, rep):
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
        answer = (row["candidates"][0]["identity"], row["distance"])
        if row["path"] not in answers or answer[1] < answers[row["path"]][1]:
            answers[row["path"]] = answer
    return enroll, tag, one, answers


def run_face_recognition(work):
    probes = os.path.join(work, "probes")
    start = time.perf_counter()
    out = subprocess.run([os.path.join(VENV_BIN, "face_recognition"), "--cpus", "2", "--show-distance", "true",
                          os.path.join(work, "known_flat"), probes], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    # Its two pool processes print "path,name,distance" to one pipe and their writes interleave (a line's
    # text and its newline are separate writes), so results are found by pattern, not by line.
    result = re.compile(re.escape(probes + os.sep) + r"[^,\n]+?,[^,\n]+?,(?:None|[0-9.]+(?:e-?[0-9]+)?)")
    answers = {}  # nearest within its tolerance; ("unknown", 9.0) when none is
    for match in result.finditer(out.stdout):
        path, name, distance = match.group(0).rsplit(",", 2)
        if name == "no_persons_found":
            continue
        who = "unknown" if name == "unknown_person" else name.split("__")[0]
        dist = float(distance) if distance != "None" else 9.0
        if path not in answers or dist < answers[path][1]:
            answers[path] = (who, dist)
    return seconds, answers


def threshold_rejecting(truth, answers, share, ceiling):
    """The largest threshold <= ceiling at which at least ``share`` of the strangers are rejected, or None."""
    strangers = sorted(answers[p][1] for p, who in truth if who is None and p in answers)
    candidates = sorted({ceiling, *(d - 1e-9 for d in strangers if d - 1e-9 <= ceiling)}, reverse=True)
    for threshold in candidates:
        if score_identification(truth, answers, threshold)["strangers_rejected"] >= share:
            return threshold
    return None


def speed_table(results, photos):
    """Rows: each facetag mode's enroll, tag and enroll + tag, then face_recognition; ratios to face_recognition."""
    known, unknown = photos
    baseline = (known + unknown) / results["face_recognition --cpus 2"]["seconds"]
    lines = ["| run | photos | seconds | photos/s | ratio to face_recognition |", "|---|---:|---:|---:|---:|"]
    for name, result in results.items():
        if name.startswith("facetag"):
            rows = [(f"{name}: enroll", known, result["enroll"]), (f"{name}: tag", unknown, result["tag"]),
                    (f"{name}: enroll + tag", known + unknown, result["enroll"] + result["tag"])]
        else:
            rows = [(name, known + unknown, result["seconds"])]
        for label, count, seconds in rows:
            rate = count / seconds
            lines.append(f"| {label} | {count} | {seconds:.1f} | {rate:.2f} | {rate / baseline:.2f}x |")
    return lines


def steady_table(results, photos):
    """Each facetag mode's fixed cost per run and steady tagging rate, (photos - 1) / (tag s - one-photo s)."""
    lines = ["| mode | one-photo run, s | steady photos/s | vs the in-process runner |", "|---|---:|---:|---:|"]
    rates = {name: (photos - 1) / (r["tag"] - r["tag_one"]) for name, r in results.items() if name.startswith("facetag")}
    first = next(iter(rates.values()))
    for name, rate in rates.items():
        lines.append(f"| {name} | {results[name]['tag_one']:.1f} | {rate:.2f} | {rate / first:.2f}x |")
    return lines


def accuracy_tables(truth, facetag_answers, fr_answers):
    facetag_threshold = IDENTIFY_THRESHOLDS[DEFAULT_MODEL]
    defaults = [(f"facetag ({DEFAULT_MODEL}, threshold {facetag_threshold})",
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
    parser.add_argument("--photos", choices=("lfw", "colour"), default="lfw")
    parser.add_argument("--data", default="../shared/data", help="the shared data folder")
    parser.add_argument("--people", type=int, default=150)
    parser.add_argument("--strangers", type=int, default=150)
    parser.add_argument("--scene-megapixels", type=float, nargs="+", default=[2, 6, 12],
                        help="sizes the colour probes are written at, in turn")
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args(argv)
    images = os.path.abspath(os.path.join(args.data, "lfw_dev" if args.photos == "lfw" else "colour_faces", "images"))
    if not os.path.isdir(images):
        sys.exit(f"{images} is absent: this benchmark needs the shared photos")
    machine = benchutil.machine_facts()
    with tempfile.TemporaryDirectory() as work:
        if args.photos == "lfw":
            gallery, truth = lay_out(identification_split(images, people=args.people, strangers=args.strangers), work)
        else:
            gallery, truth = lay_out(colour_split(images, args.people, args.strangers), work, args.scene_megapixels)
        modes = {"facetag, in-process runner": [],
                 "facetag, 2 worker processes": ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]}
        results = {}
        for name, extra in modes.items():
            runs = [run_facetag(work, extra, f"{len(results)}-{r}") for r in range(args.reps)]
            results[name] = {"enroll": statistics.median(r[0] for r in runs),
                             "tag": statistics.median(r[1] for r in runs),
                             "tag_one": statistics.median(r[2] for r in runs), "answers": runs[-1][3]}
        runs = [run_face_recognition(work) for _ in range(args.reps)]
        results["face_recognition --cpus 2"] = {"seconds": statistics.median(r[0] for r in runs), "answers": runs[-1][1]}
    lines = [f"# End to end, {args.photos} photos", "", *machine, "",
             f"{len(gallery)} enrolled photos of {len({who for _, who in gallery})} people; {len(truth)} photos "
             f"tagged ({sum(w is not None for _, w in truth)} of enrolled people, "
             f"{sum(w is None for _, w in truth)} strangers"
             + (f"; tagged photos at {', '.join(f'{m:g}' for m in args.scene_megapixels)} MP in turn"
                if args.photos == "colour" else "") + f"); median of {args.reps} runs", "", "## Speed", ""]
    lines += speed_table(results, (len(gallery), len(truth)))
    lines += ["", "The tag step apart from its fixed cost (a run tagging one photo: start-up, models, writing):", ""]
    lines += steady_table(results, len(truth))
    lines += ["", "## Accuracy (facetag's answers from the in-process runs; both modes give the same)", ""]
    lines += accuracy_tables(truth, results["facetag, in-process runner"]["answers"],
                             results["face_recognition --cpus 2"]["answers"])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
