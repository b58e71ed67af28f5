"""The layout holds: import contracts (.importlinter), no import cycle, no global state changed by importing
facetag, and every benchmark and script still starts after a move."""

import glob
import importlib.util
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import grimp
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_import_contracts_are_kept():
    lint = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    out = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_no_import_cycle_between_facetag_modules():
    """Imports inside functions count too: they are how the last cycle (backbone <-> litert_models) hid."""
    graph = grimp.build_graph("facetag")
    cycles = sorted(
        f"{importer} -> {imported}"
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if not importer.startswith(imported + ".")  # a package's __init__ importing its own modules is no cycle
        and graph.chain_exists(imported, importer))
    assert not cycles, "import cycles through these imports:\n" + "\n".join(cycles)


GLOBAL_STATE = """
import json, logging, os, sys, warnings
import PIL.Image
# The libraries facetag imports change some global state themselves (Beam logs through the root logger at
# import, which gives it a handler; NumPy, SciPy and Beam add warning filters): imported first, they are
# not counted against facetag.
for library in ("numpy", "scipy.sparse", "pyarrow.dataset", "pyarrow.parquet", "pillow_heif", "cv2", "annoy",
                "yaml", "deltalake", "apache_beam", "apache_beam.ml.inference.base", "apache_beam.io.tfrecordio",
                "ai_edge_litert.interpreter", "rawpy", "matplotlib"):
    __import__(library)
def state():
    return {"root_filters": len(logging.getLogger().filters), "root_handlers": len(logging.getLogger().handlers),
            "root_level": logging.getLogger().level, "pil_max_pixels": PIL.Image.MAX_IMAGE_PIXELS,
            "pil_openers": sorted(PIL.Image.OPEN), "environ": sorted(os.environ.items()),
            "warning_filters": len(warnings.filters)}
before = state()
import pkgutil, facetag
for module in pkgutil.walk_packages(facetag.__path__, "facetag."):
    if not module.name.startswith(("facetag.learn.training", "facetag.learn.triplet", "facetag.cli.__main__")):
        __import__(module.name)
after = state()
print(json.dumps({k: [before[k], after[k]] for k in before if before[k] != after[k]}))
"""


def test_importing_facetag_changes_no_global_state():
    """Every module but those that import TensorFlow (training, which changes much) and the CLI's __main__."""
    out = subprocess.run([sys.executable, "-c", GLOBAL_STATE], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == {}


ENTRY_POINTS = sorted(glob.glob(os.path.join(REPO, "bench", "*.py")) + glob.glob(os.path.join(REPO, "scripts", "*.py")))
#: Modules the benchmarks import, with no command of their own.
HELPERS = {"benchutil.py", "cluster_quality.py", "synthetic_store.py"}


def _needs_face_recognition(path):
    """The peer's benchmarks import face_recognition at the top: only `make bench-setup` installs it."""
    with open(path) as f:
        return any(line.startswith(("import face_recognition", "from face_recognition")) for line in f)


def _start(path):
    name = os.path.basename(path)
    if name in HELPERS:
        command = [sys.executable, "-c", f"import sys; sys.path.insert(0, {os.path.dirname(path)!r}); import {name[:-3]}"]
    else:
        command = [sys.executable, path, "--help"]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)


def test_every_benchmark_and_script_starts():
    """Each one's --help (helpers: imported), two at a time: a moved or renamed name breaks it here."""
    paths = [p for p in ENTRY_POINTS if not _needs_face_recognition(p)]
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(paths, pool.map(_start, paths)))
    broken = {os.path.relpath(p, REPO): r.stderr[-2000:] for p, r in results.items() if r.returncode != 0}
    assert not broken, broken
    for path, result in results.items():
        if os.path.basename(path) not in HELPERS:
            assert "usage:" in result.stdout, f"{path} printed no usage"
    assert len(paths) >= 16


def test_the_benchmarks_of_face_recognition_start():
    if not importlib.util.find_spec("face_recognition"):
        pytest.skip("bench/detector.py, encoder.py, cluster_data.py and face_recognition_boxes.py import "
                    "face_recognition: run make bench-setup")
    for path in filter(_needs_face_recognition, ENTRY_POINTS):
        result = _start(path)
        assert result.returncode == 0 and "usage:" in result.stdout.lower(), f"{path}: {result.stderr}"
