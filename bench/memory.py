"""Peak resident memory of one facetag worker process, models loaded and working.

    python bench/memory.py [WORD...]     # WORD: run only the cases whose name holds it

Each case runs in a fresh Python process (so nothing is shared or already
loaded) and reports the process's peak resident set (ru_maxrss) after doing
the work: this is what one Beam worker process needs. The README's "Memory"
section quotes the table.
"""

import argparse
import json
import os
import platform
import subprocess
import sys

CASES = {
    "python + facetag imported": "import facetag",
    "detector loaded, one photo detected": (
        "import numpy as np, facetag\n"
        "from facetag.vision.detection import FaceDetector\n"
        "FaceDetector().detect(np.full((480, 640, 3), 128, np.uint8))"
    ),
    "encoder loaded (facetag-128), batch of 32 encoded": (
        "import numpy as np, facetag\n"
        "facetag.load_model('facetag-128').encode(np.zeros((32, 160, 160, 3), np.uint8))"
    ),
    "encoder loaded (facetag-256, the default: FaceNet and dlib's ResNet), batch of 32 encoded": (
        "import numpy as np, facetag\n"
        "facetag.load_model('facetag-256').encode(np.zeros((32, 160, 160, 3), np.uint8),"
        " np.zeros((32, 150, 150, 3), np.uint8))"
    ),
    "both loaded, photo analysed, batch of 32 encoded (one worker)": (
        "import numpy as np, facetag\n"
        "from facetag.io.samples import fetch\n"
        "a = facetag.FaceAnalyzer()\n"
        "a.analyze(fetch() + '/photos/obama2.jpg')\n"
        "a.face_model.encode(np.zeros((32, 160, 160, 3), np.uint8), np.zeros((32, 150, 150, 3), np.uint8))"
    ),
    "a 99-megapixel JPEG decoded (the largest the default limit takes; made by a child process)": (
        "import subprocess, sys, tempfile, facetag\n"
        "path = tempfile.mktemp(suffix='.jpg')\n"
        "subprocess.run([sys.executable, '-c', 'import numpy as np, sys; from PIL import Image; '\n"
        "    'Image.fromarray(np.random.default_rng(0).integers(0, 255, (1000, 990, 3), dtype=np.uint8))'\n"
        "    '.resize((9900, 10000)).save(sys.argv[1], quality=85)', path], check=True)\n"
        "facetag.load_image(path)\n"
        "import os; os.remove(path)"
    ),
}

REPORT = "import resource, json; print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))"


def peak_mib(code):
    out = subprocess.run([sys.executable, "-c", code + "\n" + REPORT], capture_output=True, text=True,
                         env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin",  # a checkout's PYTHONPATH kept
                              **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def main(names=None):
    print(f"# Worker memory ({platform.node()}, Python {platform.python_version()})\n")
    print("| what one process has done | peak resident memory |")
    print("|---|---|")
    for name, code in CASES.items():
        if names and not any(n in name for n in names):
            continue
        print(f"| {name} | {peak_mib(code):,.0f} MiB |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("words", nargs="*", metavar="WORD", help="run only the cases whose name holds a WORD")
    main(parser.parse_args().words)
