"""End to end: `facetag tag` against the `face_recognition` command line on the same photos.

    python bench/end_to_end.py [--people 60] [--strangers 60] [--reps 2]

The labelled set is the open-set protocol of beam_jobs.evaluate_identification
on ../shared/data/lfw_dev: the first N people with >= 4 photos enrol their
first 2 photos, their other photos are tagged, plus one-photo strangers.

- facetag: `facetag enroll` then `facetag tag` (Beam, in-process runner, and
  with 2 worker processes), both steps timed, each a fresh process as a user runs them.
- face_recognition: `face_recognition --cpus 2 KNOWN UNKNOWN` (its default
  tolerance 0.6, HOG detector, dlib encoder), timed as a whole: it encodes the
  known folder and then the unknown photos in one run.

Both sides run in this invocation, on the same photos, `--reps` times;
medians and the ratio are printed with each side's accuracy (rank-1 of the
known, identified within the threshold, strangers rejected).
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import pyarrow.parquet as pq

from facetag.evaluation import identification_split, score_identification
from facetag.models import IDENTIFY_THRESHOLDS, DEFAULT_MODEL

VENV_BIN = os.path.dirname(sys.executable)


def lay_out(images, work, people, strangers):
    """Folders both tools read: known/<Name>/..., known_flat/<Name>__i.jpg (face_recognition's layout), probes/."""
    gallery, probes = identification_split(images, people=people, strangers=strangers)
    for path, who in gallery:
        os.makedirs(os.path.join(work, "known", who), exist_ok=True)
        shutil.copy(path, os.path.join(work, "known", who))
        os.makedirs(os.path.join(work, "known_flat"), exist_ok=True)
        shutil.copy(path, os.path.join(work, "known_flat", f"{who}__{os.path.basename(path)}"))
    os.makedirs(os.path.join(work, "probes"))
    for path, _ in probes:
        shutil.copy(path, os.path.join(work, "probes"))
    truth = [(os.path.join(work, "probes", os.path.basename(p)), who) for p, who in probes]
    return gallery, truth


def run_facetag(work, extra, rep):
    """enroll + tag, timed together like face_recognition's one run over the known and unknown photos."""
    index, out = os.path.join(work, f"index{rep}"), os.path.join(work, f"tagged{rep}")
    start = time.perf_counter()
    subprocess.run([os.path.join(VENV_BIN, "facetag"), "enroll", os.path.join(work, "known"), "--out", index, *extra],
                   check=True, capture_output=True)
    subprocess.run([os.path.join(VENV_BIN, "facetag"), "tag", os.path.join(work, "probes"), "--index", index,
                    "--out", out, "--threshold", "2.0", *extra], check=True, capture_output=True)
    seconds = time.perf_counter() - start
    answers = {}
    for row in pq.read_table([os.path.join(out, f) for f in os.listdir(out) if f.startswith("matches-")]).to_pylist():
        answer = (row["candidates"][0]["identity"], row["distance"])
        if row["source"] not in answers or answer[1] < answers[row["source"]][1]:
            answers[row["source"]] = answer
    return seconds, answers


def run_face_recognition(work):
    start = time.perf_counter()
    out = subprocess.run([os.path.join(VENV_BIN, "face_recognition"), "--cpus", "2", "--show-distance", "true",
                          os.path.join(work, "known_flat"), os.path.join(work, "probes")],
                         check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    answers = {}
    for line in out.stdout.splitlines():
        if line.count(",") < 2:  # its warnings ("More than one face found in ...") share stdout
            continue
        path, name, distance = line.rsplit(",", 2)
        if name in ("no_persons_found",):
            continue
        who = None if name == "unknown_person" else name.split("__")[0]
        dist = float(distance) if distance not in ("None", "") else 9.0
        if path not in answers or dist < answers[path][1]:
            answers[path] = (who, dist)
    return seconds, answers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default="../shared/data/lfw_dev/images")
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--strangers", type=int, default=60)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args(argv)
    if not os.path.isdir(args.images):
        sys.exit(f"{args.images} is absent: this benchmark needs the shared lfw_dev photos")
    with tempfile.TemporaryDirectory() as work:
        gallery, truth = lay_out(os.path.abspath(args.images), work, args.people, args.strangers)
        photos = len(truth)
        sides = {
            "facetag tag (in-process runner)": lambda r: run_facetag(work, [], r),
            "facetag tag (2 worker processes)": lambda r: run_facetag(
                work, ["--direct_num_workers=2", "--direct_running_mode=multi_processing"], f"w{r}"),
            "face_recognition --cpus 2": lambda r: run_face_recognition(work),
        }
        results = {}
        for name, side in sides.items():
            runs = [side(r) for r in range(args.reps)]
            results[name] = (statistics.median(s for s, _ in runs), runs[-1][1])
    print(f"# End to end ({platform.node()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')})\n")
    print(f"{len(gallery)} enrolled photos of {args.people} people; {photos} photos tagged "
          f"({sum(w is not None for _, w in truth)} of enrolled people, {args.strangers} strangers); "
          f"median of {args.reps} runs\n")
    print("| tool | seconds | photos/s | ratio to face_recognition | rank-1 | identified | strangers rejected |")
    print("|---|---|---|---|---|---|---|")
    baseline = photos / results["face_recognition --cpus 2"][0]
    for name, (seconds, answers) in results.items():
        if name.startswith("facetag"):
            score = score_identification(truth, answers, IDENTIFY_THRESHOLDS[DEFAULT_MODEL])
        else:  # face_recognition already applied its own tolerance (0.6): unknown_person is its "unknown"
            named = {p: (w if w is not None else "unknown", d) for p, (w, d) in answers.items()}
            score = score_identification(truth, named, threshold=0.6)
        print(f"| {name} | {seconds:.1f} | {photos / seconds:.2f} | {photos / seconds / baseline:.2f}x | "
              f"{100 * score['rank1_accuracy']:.1f}% | {100 * score['identified_at_threshold']:.1f}% | "
              f"{100 * score['strangers_rejected']:.1f}% |")


if __name__ == "__main__":
    main()
