"""Start-up: what every facetag process pays before its first photo, now and at an earlier commit.

    python bench/startup.py [--before 6c0bda7] [--reps 5]

Each measurement is a fresh Python process (the same interpreter and packages
for both versions; ``--before`` names a commit, checked out into a temporary
git worktree, whose code is put first on the path):

- the interpreter alone, importing facetag's command line, importing Beam;
- the detector: loading it and finding the faces of one lfw_dev photo, and the
  encoder: loading it and encoding one crop, each in its own process;
- ``facetag tag`` of a folder holding one lfw_dev photo against a small gallery
  (the sample gallery, enrolled once beforehand), run as the console script
  runs it, with marks at the end of the first detection and of the first
  encoding (the time from the process's start at which the first photo has
  been searched and its face encoded), when the command returned, and when the
  process had exited (teardown included).

Medians of ``--reps`` runs, the two versions taking turns (the machine's speed drifts by a fifth
within minutes). The machine, date and load are printed with the tables.
"""

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import benchutil

REPO = benchutil.REPO

_MODELS = """
import json, os, sys, time
import numpy as np
start = time.perf_counter()
from PIL import Image
import facetag
photo = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
imported = time.perf_counter()
if sys.argv[2] == "detector":
    from facetag.vision.detection import shared_detector
    shared_detector().detect(photo)
else:
    from facetag.vision.models import load_model
    model = load_model()
    if getattr(model, "uses_chips", False):  # facetag-256 (an earlier commit's models have no chips)
        model.encode(np.zeros((1, 160, 160, 3), np.uint8), np.zeros((1, 150, 150, 3), np.uint8))
    else:
        model.encode(np.zeros((1, 160, 160, 3), np.uint8))
print(json.dumps({"first_call": time.perf_counter() - imported}), flush=True)
os._exit(0)  # the measurement is taken; TensorFlow's teardown may abort (see bench/startup.py's tag runs)
"""

# The console script's work, with marks: facetag's own functions are wrapped, nothing else changes. The
# command exits as that version's console script does (since this commit: without the interpreter's teardown).
_TAG = """
import json, sys, time
from facetag.vision.detection import FaceDetector
from facetag.vision.models import FaceModel
import facetag.cli
marks, marks_file = {}, sys.argv[1]
def marked(name, function):
    def call(*args, **kwargs):
        result = function(*args, **kwargs)
        marks.setdefault(name, time.time())
        return result
    return call
FaceDetector.detect = marked("first_photo_searched", FaceDetector.detect)
FaceModel.encode = marked("first_face_encoded", FaceModel.encode)
command = facetag.cli.main
def main(argv=None):
    code = command(argv)
    marks["command_returned"] = time.time()
    with open(marks_file, "w") as f:
        json.dump(marks, f)
    return code
facetag.cli.main = main
sys.argv = ["facetag", *sys.argv[2:]]
if hasattr(facetag.cli, "console"):
    facetag.cli.console()
sys.exit(main())
"""


def python(code_path, *args, check=True):
    """Run the interpreter with the version at ``code_path`` first on the path; returns
    (seconds, when it started, stdout, exit status)."""
    env = {**os.environ, "PYTHONPATH": f"{code_path}/lib:{code_path}"}
    start = time.time()
    out = subprocess.run([sys.executable, *args], env=env, check=check, capture_output=True, text=True)
    if out.returncode and not check:
        print(f"exit status {out.returncode}: {out.stderr[-2000:]}", file=sys.stderr)
    return time.time() - start, start, out.stdout, out.returncode


def measure_once(code_path, photo, index, work, rep, samples):
    """One fresh process per part for the version at ``code_path``; its seconds go into ``samples``."""

    def add(name, seconds):
        samples.setdefault(name, []).append(seconds)

    folder = os.path.join(work, "one")
    os.makedirs(folder, exist_ok=True)
    if not os.listdir(folder):
        os.symlink(photo, os.path.join(folder, os.path.basename(photo)))
    add("interpreter alone", python(code_path, "-c", "pass")[0])
    add("import facetag's command line", python(code_path, "-c", "import facetag.cli")[0])
    add("import Beam", python(code_path, "-c", "import apache_beam")[0])
    for model in ("detector", "encoder"):
        first = json.loads(python(code_path, "-c", _MODELS, photo, model)[2])["first_call"]
        add(f"{model}: load and first call (in a process that imported facetag)", first)
    marks_file, store = os.path.join(work, f"marks-{rep}.json"), os.path.join(work, f"store-{rep}")
    wall, started, _, status = python(code_path, "-c", _TAG, marks_file, "tag", folder, "--index", index,
                                      "--out", store, check=False)
    with open(marks_file) as f:
        marks = json.load(f)
    add("facetag tag, one photo: first photo searched", marks["first_photo_searched"] - started)
    add("facetag tag, one photo: its face encoded", marks["first_face_encoded"] - started)
    add("facetag tag, one photo: command returned (store committed)", marks["command_returned"] - started)
    add("facetag tag, one photo: process exited", wall)
    add("runs that aborted at exit (count)", int(status != 0))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="6c0bda7", help="commit to compare with ('none': only this checkout)")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    photo = sorted(glob.glob(os.path.join(benchutil.LFW_IMAGES, "*", "*.jpg")))[0]
    machine = benchutil.machine_facts()
    with tempfile.TemporaryDirectory() as work:
        versions = {"now": REPO}
        if args.before != "none":
            before = os.path.join(work, "before")
            subprocess.run(["git", "-C", REPO, "worktree", "add", "--detach", before, args.before], check=True,
                           capture_output=True)
            versions = {f"at {args.before}": before, **versions}
        try:
            sample_photos = subprocess.run([sys.executable, "-m", "facetag.io.samples"], check=True,
                                           capture_output=True, text=True).stdout.strip()
            indexes = {}  # each version enrols the gallery itself: their model ids may differ
            for name, path in versions.items():
                indexes[name] = os.path.join(work, f"index-{len(indexes)}")
                python(path, "-m", "facetag.cli", "enroll", os.path.join(sample_photos, "gallery"), "--out",
                       indexes[name])
            samples = {name: {} for name in versions}
            for rep in range(args.reps):  # the versions take turns, so that the machine's drift hits both alike
                for name, path in versions.items():
                    measure_once(path, photo, indexes[name], os.path.join(work, name.replace(" ", "-")), rep,
                                 samples[name])
            results = {name: {part: sum(values) if part.endswith("(count)") else statistics.median(values)
                              for part, values in parts.items()} for name, parts in samples.items()}
        finally:
            if args.before != "none":
                subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force", before], check=True)
    names = list(results)
    lines = ["## Start-up (`python bench/startup.py`)", "", *machine,
             f"- One lfw_dev photo ({os.path.basename(photo)}, 250x250); medians of {args.reps} fresh processes, "
             "the versions taking turns", "",
             "| part, seconds | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for part in results[names[-1]]:
        cells = (f"{results[n][part]}" if part.endswith("(count)") else f"{results[n][part]:.2f}" for n in names)
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    benchutil.write_report(lines, None)


if __name__ == "__main__":
    main()
