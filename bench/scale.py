"""How each stage of the archive loop grows with the archive: 10k, 100k and 1M photos (issue 29).

    python bench/scale.py [--sizes 10000,100000,1000000] [--stages cluster,xmp] [--out report.md]

(--stages: unchanged, new, name, rematch, cluster, exports, review, served, xmp; default all.)

Each size is a synthetic archive (bench/synthetic_store.py): tiny distinct JPEGs on disk (they hold no
face, so only what a stage does with the store is measured, not detection) and a store of their
rows, one face a photo on average (photos of 0, 1 and 2 faces), random 128-number encodings grouped into
people (Pareto sizes; 30% of them enrolled in a gallery index, the rest unknown, clustered), written
by the store's own commit. The archive is generated once and kept under facetag's cache folder
(``bench-scale/``); every run works on a copy of its store and gallery. The stages, each the user's
command in a fresh process (so its time includes Python's and Beam's start, about 2 s):

- ``tag, unchanged``: the nightly re-run when nothing changed (listing and comparing every photo);
- ``tag, 1% new``: the same with 1% new photos (read, hashed, searched: no face);
- ``name``: ``facetag name --cluster`` of the biggest cluster (labels written, gallery rebuilt);
- ``tag, re-match all``: the run after it, which matches every stored face again;
- ``cluster``: ``facetag cluster``;
- ``exports``: matches.csv and clusters.csv written from the tables (what every commit that changes
  them does);
- ``review, static``: ``facetag review --out`` with every thumbnail already written (the page's
  data; thumbnails are cropped once per face, timed apart at the smallest size);
- ``review, served``: ``facetag review --serve`` until its address is printed, and the page's data;
- ``xmp``: ``facetag xmp --out`` (sidecars of the photos with a named face).

For each: seconds, the peak memory of the process that holds the most (the stage's process or any it
waited for: Linux's wait4), the growth exponent between sizes (seconds ~ n^k), and the archive one 24-GiB
machine takes at that stage's memory growth (a line through the two biggest sizes).
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

import benchutil
from synthetic_store import make_store

from facetag.io.cachedir import default_cache_dir

sys.path.insert(0, benchutil.REPO)  # for tests.review_server: the served stage talks to the server as the tests do
MACHINE_GIB = 24
FACES_PER_PHOTO = (1, 2, 0, 1)
GENERATOR = "v1"  # bump when synthetic_store changes what it writes


def archive(n):
    """The cached synthetic archive of ``n`` photos: ``(photos folder, pristine folder)``, made if needed."""
    root = os.path.join(default_cache_dir(), "bench-scale", f"{GENERATOR}-{n}")
    pristine = os.path.join(root, "pristine")
    if not os.path.exists(os.path.join(pristine, "done")):
        shutil.rmtree(pristine, ignore_errors=True)
        started = time.perf_counter()
        # In a process of its own: this one stays small (see LAUNCHER).
        subprocess.run([sys.executable, __file__, "--make", str(n), pristine, os.path.join(root, "photos")], check=True)
        open(os.path.join(pristine, "done"), "w").close()
        print(f"made the {n:,}-photo archive in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return os.path.join(root, "photos"), pristine


def working_copy(pristine, work):
    """A copy of the pristine store and gallery at ``work`` (store.json pointed at the copied gallery)."""
    shutil.rmtree(work, ignore_errors=True)
    for name in ("store", "index"):
        shutil.copytree(os.path.join(pristine, name), os.path.join(work, name))
    manifest_path = os.path.join(work, "store", "store.json")
    manifest = json.load(open(manifest_path))
    manifest["index_dir"] = os.path.join(work, "index")
    json.dump(manifest, open(manifest_path, "w"))
    return os.path.join(work, "store"), os.path.join(work, "index")


#: Runs a command as its child and prints the child's peak RSS. Linux carries a process's peak RSS over fork
#: and exec, so a command started by this (big) benchmark process would report at least the benchmark's
#: own: the small launcher in between keeps that floor at a few MiB.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(f"\\nPEAK_RSS_KIB {usage.ru_maxrss}", file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measured(args, command=None):
    """Run ``facetag ARGS`` (or ``command``); ``(seconds, peak RSS in MiB of its biggest process, stdout)``."""
    command = command or [sys.executable, "-m", "facetag.cli", *args]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *command], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-3000:]}")
    peak = int(done.stderr.rsplit("PEAK_RSS_KIB", 1)[1]) / 1024
    return seconds, peak, done.stdout


def json_of(out):
    """The JSON a command printed with --json (after its summary line, if it prints one)."""
    return json.loads(out[out.index("{"):])


def served(store):
    """``facetag review --serve``: ``(seconds to its address, peak MiB, MiB of /api/page, seconds of it)``."""
    from tests.review_server import Server

    started = time.perf_counter()
    server = Server(store)
    try:
        ready = time.perf_counter() - started
        started = time.perf_counter()
        page = server.get("/api/page", timeout=3600)
        page_seconds = time.perf_counter() - started
        with open(f"/proc/{server.process.pid}/status") as f:
            peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    finally:
        server.stop(timeout=120)
    return ready, peak, len(page.content) / 2**20, page_seconds


EXPORTS = """
import sys
from facetag.archive.store import ArchiveStore
store = ArchiveStore(sys.argv[1])
store._write_exports(store.manifest(), {"matches", "clusters"})
"""


def new_photos(photos, n):
    """Write ``n`` new tiny JPEGs under ``photos/new``; returns the folder (deleted by the caller)."""
    from PIL import Image

    folder = os.path.join(photos, "new")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for i in range(n):
        Image.new("L", (8, 8), 7).save(os.path.join(folder, f"new_{i:07d}.jpg"), "JPEG", comment=f"new {i}".encode())
    return folder


#: --stages names -> the stages' labels in the table.
STAGES = {"unchanged": "tag, unchanged", "new": "tag, 1% new", "name": "name", "rematch": "tag, re-match all",
          "cluster": "cluster", "exports": "exports", "review": "review, static", "served": "review, served",
          "xmp": "xmp"}


def stages(n, work, wanted=tuple(STAGES.values())):
    """The ``wanted`` stages on the archive of ``n`` photos: ``{stage: (seconds, peak MiB, note)}``."""
    photos, pristine = archive(n)
    store, index = working_copy(pristine, os.path.join(work, f"work-{n}"))
    tag = ["tag", photos, "--index", index, "--out", store, "--json"]
    results = {}

    def stage(name, args, check=None):
        if name not in wanted:
            return
        seconds, peak, out = measured(args)
        results[name] = (seconds, peak, check(out) if check else "")
        print(f"{n:>9,} {name:<22} {seconds:8.1f} s {peak:8.0f} MiB  {results[name][2]}", file=sys.stderr)
        return out

    def tag_summary(out):
        summary = json_of(out)
        return (f"{summary['unchanged']:,} unchanged, {summary['new']:,} new, {summary['faces_matched']:,} "
                f"faces matched")

    try:
        stage("tag, unchanged", tag, tag_summary)
        if "tag, 1% new" in wanted:
            new_photos(photos, n // 100)
        stage("tag, 1% new", tag, tag_summary)
        stage("name", ["name", store, "--cluster", "0", "--as", "Named Person", "--json"],
              lambda out: f"{json_of(out)['labels']:,} faces, gallery {json_of(out)['gallery_faces']:,}")
        stage("tag, re-match all", tag, tag_summary)
        stage("cluster", ["cluster", store, "--json"],
              lambda out: f"{json_of(out)['clusters']:,} clusters")
        if "exports" in wanted:
            seconds, peak, _ = measured(None, [sys.executable, "-c", EXPORTS, store])
            results["exports"] = (seconds, peak, "matches.csv and clusters.csv")
        review = os.path.join(work, f"review-{n}")
        if "review, static" in wanted:
            lay_out_thumbnails(store, review)
        stage("review, static", ["review", store, "--out", review, "--json"],
              lambda out: f"data.js {os.path.getsize(os.path.join(review, 'data.js')) / 2**20:.0f} MiB")
        if "review, served" in wanted:
            ready, peak, page_mib, page_seconds = served(store)
            results["review, served"] = (ready, peak, f"/api/page {page_mib:.0f} MiB in {page_seconds:.1f} s")
        stage("xmp", ["xmp", store, "--out", os.path.join(work, f"xmp-{n}"), "--json"],
              lambda out: f"{json_of(out)['written']:,} sidecars")
    finally:
        shutil.rmtree(os.path.join(photos, "new"), ignore_errors=True)
        for name in (f"work-{n}", f"review-{n}", f"xmp-{n}"):
            shutil.rmtree(os.path.join(work, name), ignore_errors=True)
    return results


def lay_out_thumbnails(store, review):
    """Every face's thumbnail as a hard link to a small JPEG (the review stage then crops none)."""
    from PIL import Image

    from facetag.archive.review import thumb_name
    from facetag.archive.store import ArchiveStore

    os.makedirs(review, exist_ok=True)
    for i, face_id in enumerate(ArchiveStore(store).read("matches", ["face_id"]).column("face_id").to_pylist()):
        source = os.path.join(review, f"grey-{i // 60_000}.jpg")  # ext4 allows 65,000 links to a file
        if i % 60_000 == 0:
            Image.new("RGB", (112, 112), (128, 128, 128)).save(source, "JPEG")
        target = os.path.join(review, thumb_name(face_id))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.link(source, target)


def thumbnail_seconds(n=2000):
    """Seconds per face of the review's thumbnail cropping, on real lfw_dev photos (or the samples)."""
    import tempfile

    from facetag.archive.results import Results, TaggedFace, TaggedPhoto
    from facetag.archive.review import write_thumbnails

    sources, _ = benchutil.photo_paths()
    sources = (sources * (n // len(sources) + 1))[:n]
    photos = [TaggedPhoto(path, "faces", "", 250, 250, [TaggedFace(f"{i:016x}", path, 0, (70, 70, 180, 180), "x", 0.5)])
              for i, path in enumerate(sources)]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        write_thumbnails(Results(photos, "m", False), tmp)
        return (time.perf_counter() - started) / n


def exponent(a, b, n_a, n_b):
    return math.log(b / a) / math.log(n_b / n_a) if a > 0 and b > 0 else float("nan")


def ceiling(sizes, peaks):
    """Photos one 24-GiB machine takes at a stage, from the line through the two biggest sizes' peaks."""
    (n1, m1), (n2, m2) = (sizes[-2], peaks[-2]), (sizes[-1], peaks[-1])
    per_photo = (m2 - m1) / (n2 - n1)
    if per_photo <= 0:
        return "no growth measured"
    fixed = m2 - per_photo * n2
    photos = (MACHINE_GIB * 1024 * 0.8 - fixed) / per_photo  # 80%: what the system and the page cache keep
    return f"{photos / 1e6:,.0f}M ({1024 / per_photo / 1e6:.2f}M photos/GiB)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="archive sizes in photos, comma-separated")
    parser.add_argument("--stages", default=",".join(STAGES), help="the stages to run, comma-separated (default: all)")
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--make", nargs=3, metavar=("PHOTOS", "STORE_ROOT", "PHOTO_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make:
        from facetag.vision.models import describe_model

        n, root, photo_dir = args.make
        make_store(root, int(n), faces_per_photo=FACES_PER_PHOTO, photo_dir=photo_dir, model_id=describe_model()[0])
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    lines = ["# How the stages grow (bench/scale.py)", "", *benchutil.machine_facts(),
             f"- Synthetic archives (bench/synthetic_store.py): faces a photo {FACES_PER_PHOTO}, 128-number encodings",
             f"- Thumbnails: {thumbnail_seconds() * 1000:.1f} ms a face to crop (lfw_dev photos, 250x250), written "
             "once per face; not in the review rows below", ""]
    work = os.path.join(default_cache_dir(), "bench-scale", "work")
    unknown = set(args.stages.split(",")) - set(STAGES)
    if unknown:
        parser.error(f"no stage {', '.join(sorted(unknown))}; the stages: {', '.join(STAGES)}")
    measured_sizes = {n: stages(n, work, [STAGES[name] for name in args.stages.split(",")]) for n in sizes}
    names = list(measured_sizes[sizes[0]])
    header = " | ".join(f"{n:,} photos: s, MiB" for n in sizes)
    growth = " | ".join(f"k {a:,}→{b:,}" for a, b in zip(sizes, sizes[1:]))
    lines += [f"| stage | {header} | {growth} | one {MACHINE_GIB}-GiB machine takes | at the biggest |",
              "|---|" + "---|" * (len(sizes) + len(sizes) - 1 + 2)]
    for name in names:
        cells = [f"{measured_sizes[n][name][0]:.1f}, {measured_sizes[n][name][1]:,.0f}" for n in sizes]
        ks = [f"{exponent(measured_sizes[a][name][0], measured_sizes[b][name][0], a, b):.2f}"
              for a, b in zip(sizes, sizes[1:])]
        limit = ceiling(sizes, [measured_sizes[n][name][1] for n in sizes]) if len(sizes) > 1 else ""
        lines.append(f"| {name} | {' | '.join(cells)} | {' | '.join(ks)} | {limit} | {measured_sizes[sizes[-1]][name][2]} |")
    benchutil.write_report(lines, args.out)


if __name__ == "__main__":
    main()
