"""A year of nightly runs on one store, with and without the store's maintenance (issue 29).

    python bench/years.py [--nights 365] [--per-night 3] [--name-every 30] [--out report.md]

Each "night" a few new photos arrive (lfw_dev's, in a fixed order; facetag's samples without ../shared/data)
and `facetag tag` runs on the archive (in this process: `beam_jobs.tag.run`, so a night's seconds are the
run's own, not Python's start-up); every `--name-every` nights a person names a face (`facetag name`), so
the next run matches every stored face again and rewrites `matches` whole. The same nights run twice, into
two stores: with the maintenance every run now does, and with `--no_maintenance` (the store as it grew
before). Per night: the run's seconds, its commit's seconds, the tables' active files (those the versions
store.json names), the files and bytes on disk. At the end both are compared with a fresh store of the
same photos tagged at once: with maintenance, night N within 1.3x of night 10 and bytes within 2x of the
fresh store is the goal. The nights here are a second or two apart, so the maintained store vacuums with
`--retain_hours 0`; a real one keeps a week (the default) of replaced files on top of what is shown. For the
same reason Delta's log retention (30 days, by the clock) never expires here: the log is shown apart, and a
real store's holds about 30 nights of it.
"""

import argparse
import os
import shutil
import tempfile
import time

import benchutil

from facetag.archive.naming import Word, name_faces
from facetag.archive.store import ArchiveStore


def store_figures(path):
    """(active files, data files on disk, their bytes, log files, their bytes) of the store at ``path``; the log
    is Delta's ``_delta_log`` folders (commits and checkpoints)."""
    from deltalake import DeltaTable

    store = ArchiveStore(path)
    active = sum(len(DeltaTable(store.join(name), version=v).file_uris())
                 for name, v in store.manifest()["versions"].items())
    data = [0, 0]
    log = [0, 0]
    for where, _, names in os.walk(path):
        counted = log if "_delta_log" in where else data
        for name in names:
            counted[0] += 1
            counted[1] += os.path.getsize(os.path.join(where, name))
    return active, data[0], data[1], log[0], log[1]


def a_year(photos, index, root, nights, per_night, name_every, maintenance, log):
    """Run the nights into a store under ``root``; a list of per-night rows."""
    from beam_jobs import tag

    folder, store = os.path.join(root, "photos"), os.path.join(root, "store")
    os.makedirs(folder)
    rows = []
    for night in range(1, nights + 1):
        for path in photos[(night - 1) * per_night: night * per_night]:
            shutil.copy(path, os.path.join(folder, os.path.basename(path)))
        if name_every and night % name_every == 0:
            face = ArchiveStore(store).read("faces", ["face_id"]).column("face_id")[0].as_py()
            name_faces(store, [Word(f"Person {night}", face=face)])
        started = time.perf_counter()
        summary = tag.run(["--input", folder, "--index", index, "--store", store, "--model", "facenet-512",
                           *(["--retain_hours", "0"] if maintenance else ["--no_maintenance"])])
        seconds = time.perf_counter() - started
        active, files, sizes, log_files, log_bytes = store_figures(store)
        rows.append({"night": night, "seconds": seconds, "commit": summary["commit_seconds"], "active": active,
                     "files": files, "bytes": sizes, "log_files": log_files, "log_bytes": log_bytes})
        if night in (1, 10) or night % 30 == 0 or night == nights:
            log(f"  {'with' if maintenance else 'without'} maintenance, night {night}: {seconds:.2f} s, commit "
                f"{summary['commit_seconds']:.2f} s, {active} active files, {files} data files, {sizes / 1e6:.2f} MB, "
                f"log {log_files} files {log_bytes / 1e6:.2f} MB")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--per-night", type=int, default=3)
    parser.add_argument("--name-every", type=int, default=30)
    parser.add_argument("--out", help="also write the report here (markdown)")
    args = parser.parse_args(argv)
    facts = benchutil.machine_facts()
    photos, origin = benchutil.photo_paths()
    needed = args.nights * args.per_night
    if len(photos) < needed:
        raise SystemExit(f"{origin} has {len(photos)} photos; {args.nights} nights of {args.per_night} need {needed}")
    from beam_jobs import enroll, tag
    from facetag.io.samples import fetch

    work = tempfile.mkdtemp(prefix="facetag-years-")
    lines = [f"# A year of nightly runs ({args.nights} nights, {args.per_night} photos a night, a name every "
             f"{args.name_every} nights; photos from {origin})", "", *facts, ""]
    print("\n".join(lines), flush=True)
    try:
        index = os.path.join(work, "index")
        enroll.run(["--gallery", os.path.join(fetch(), "gallery"), "--out", index, "--model", "facenet-512"])
        runs = {}
        for maintenance in (True, False):
            runs[maintenance] = a_year(photos, index, os.path.join(work, str(maintenance)), args.nights,
                                       args.per_night, args.name_every, maintenance, print)
        fresh = os.path.join(work, "fresh")
        tag.run(["--input", os.path.join(work, "True", "photos"), "--index", index, "--store", fresh, "--model",
                 "facenet-512"])
        fresh_figures = store_figures(fresh)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    shown = sorted({1, 10, *range(30, args.nights + 1, 30), args.nights} & set(range(1, args.nights + 1)))
    table = ["| night | with: run s | commit s | active files | data files | MB | log files | log MB | "
             "without: run s | commit s | active files | data files | MB | log files | log MB |", "|" + "---|" * 15]
    for night in shown:
        cells = [str(night)]
        for row in (runs[True][night - 1], runs[False][night - 1]):
            cells += [f"{row['seconds']:.2f}", f"{row['commit']:.2f}", str(row["active"]), str(row["files"]),
                      f"{row['bytes'] / 1e6:.2f}", str(row["log_files"]), f"{row['log_bytes'] / 1e6:.2f}"]
        table.append("| " + " | ".join(cells) + " |")
    ten = min(10, args.nights) - 1
    summary = []
    for maintenance, rows in runs.items():
        last, early = rows[-1], rows[ten]
        summary.append(f"- {'with' if maintenance else 'without'} maintenance: night {last['night']} / night "
                       f"{early['night']}: run {last['seconds'] / early['seconds']:.2f}x, commit "
                       f"{last['commit'] / max(early['commit'], 1e-3):.2f}x, active files {last['active']} / "
                       f"{early['active']}; data bytes {last['bytes'] / fresh_figures[2]:.2f}x a fresh store of the "
                       f"same photos ({fresh_figures[2] / 1e6:.2f} MB in {fresh_figures[1]} files), log "
                       f"{last['log_files']} files, {last['log_bytes'] / 1e6:.2f} MB")
    report = lines + table + [""] + summary
    print("\n".join(table + [""] + summary))
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
