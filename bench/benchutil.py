"""What bench/encoder.py and bench/detector.py share: the photos, timing, and the report header.

Not a benchmark itself; the scripts import it as ``benchutil`` (they run as ``python bench/NAME.py``,
which puts bench/ on the import path).
"""

import datetime
import glob
import importlib.metadata
import os
import platform
import statistics
import time
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LFW_IMAGES = os.path.join(REPO, "..", "shared", "data", "lfw_dev", "images")
PACKAGES = ("facetag", "ai-edge-litert", "tensorflow", "tensorflow-cpu", "numpy", "pillow", "mtcnn", "annoy", "face_recognition",
            "face_recognition_models", "dlib", "dlib-bin")


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds
    cpu: float  # seconds of this process's CPU time, all threads

    @property
    def cores_busy(self):
        return self.cpu / self.wall


def photo_paths():
    """Real photos in a fixed order, and where they come from.

    lfw_dev's photos (sorted paths) when ../shared/data is present, else facetag's sample photos.
    """
    lfw = sorted(glob.glob(os.path.join(LFW_IMAGES, "*", "*.jpg")))
    if lfw:
        return lfw, f"lfw_dev ({os.path.normpath(LFW_IMAGES)})"
    from facetag.io.samples import fetch

    root = fetch()
    samples = sorted(glob.glob(os.path.join(root, "photos", "*")) + glob.glob(os.path.join(root, "gallery", "*", "*.jpg")))
    return samples, f"facetag's sample photos ({root}), lfw_dev being absent"


def timed(fn):
    """(Timing, fn's result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), result


def median_timing(fn, reps):
    """Median wall and CPU time of ``reps`` calls, and the last call's result."""
    timings, result = [], None
    for _ in range(reps):
        timing, result = timed(fn)
        timings.append(timing)
    return Timing(statistics.median(t.wall for t in timings), statistics.median(t.cpu for t in timings)), result


def package_versions():
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def machine_facts():
    """Markdown list items: CPU, memory, load, date, Python and package versions, dlib's build if installed."""

    with open("/proc/cpuinfo") as f:
        cpuinfo = f.read().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown")
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), []))
    with open("/proc/meminfo") as f:
        mem_kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
    vector = ", ".join(name for flag, name in (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_vnni", "AVX-512 VNNI"))
                       if flag in flags) or "no AVX2"
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return [f"- CPU: {cpu} ({vector}), {os.cpu_count()} cores, {mem_kib / 2**20:.1f} GiB RAM; load average {load} "
            "(1/5/15 min) at start",
            f"- Date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
            f"- Python {platform.python_version()}; {package_versions()}"] + _dlib_build()


def _dlib_build():
    try:
        import dlib
    except ImportError:
        return []
    return [f"- dlib built with AVX: {dlib.USE_AVX_INSTRUCTIONS}, BLAS: {dlib.DLIB_USE_BLAS}, "
            f"CUDA: {dlib.DLIB_USE_CUDA}; facetag's networks on LiteRT with XNNPACK, every core"]


def write_report(lines, out):
    report = "\n".join(lines)
    print(report)
    if out:
        with open(out, "w") as f:
            f.write(report + "\n")
