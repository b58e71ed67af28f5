"""Scheduled re-runs: a first `facetag tag` run, an unchanged re-run, and a re-run with 10% new photos.

    python bench/incremental.py [--photos 1000] [--new 100]

On lfw_dev (../shared/data): 100 people with >= 4 photos enrol their first 2
photos; `--photos` other lfw_dev photos are tagged into a fresh archive store,
then the same command runs again (nothing changed), then `--new` more photos
arrive and it runs again. Each run is `facetag tag` in a fresh process, timed as
a whole, as a scheduler runs it. The store is then read back with DuckDB over
deltalake's Arrow dataset, as any tool without facetag would.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import benchutil

from facetag.learn.evaluation import identification_split

VENV_BIN = os.path.dirname(sys.executable)


def facetag(*args):
    start = time.perf_counter()
    out = subprocess.run([os.path.join(VENV_BIN, "facetag"), *args], check=True, capture_output=True, text=True)
    return time.perf_counter() - start, out.stdout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--out", help="also write the report here (markdown)")
    args = parser.parse_args(argv)
    facts = benchutil.machine_facts()
    gallery, probes = identification_split(benchutil.LFW_IMAGES, people=100, strangers=0)
    others = sorted(set(benchutil.photo_paths()[0]) - {p for p, _ in gallery})
    if len(others) < args.photos + args.new:
        raise SystemExit(f"needs {args.photos + args.new} lfw_dev photos besides the gallery: is ../shared/data there?")
    with tempfile.TemporaryDirectory() as work:
        known, archive, store = (os.path.join(work, n) for n in ("known", "archive", "store"))
        for path, who in gallery:
            os.makedirs(os.path.join(known, who), exist_ok=True)
            os.symlink(path, os.path.join(known, who, os.path.basename(path)))
        os.makedirs(archive)

        def arrive(paths):
            for path in paths:
                os.symlink(path, os.path.join(archive, os.path.basename(path)))

        facetag("enroll", known, "--out", os.path.join(work, "index"))
        runs = []
        arrive(others[: args.photos])
        for label in ("first run", "unchanged re-run", f"{args.new} new photos ({100 * args.new // args.photos}%)"):
            if label.endswith("%)"):
                arrive(others[args.photos: args.photos + args.new])
            seconds, out = facetag("tag", archive, "--index", os.path.join(work, "index"), "--out", store, "--json")
            runs.append((label, seconds, json.loads(out.strip().splitlines()[-1])))
        readback = read_back(store)
    first = runs[0][1]
    lines = ["## Scheduled re-runs (`python bench/incremental.py`)", "", *facts, "",
             f"{len(gallery)} gallery photos of 100 lfw_dev people enrolled; `facetag tag` over {args.photos} other "
             f"lfw_dev photos, each run a fresh process timed as a whole (in-process runner).", "",
             "| run | photos listed | read (new + changed) | reused by content | faces encoded | seconds "
             "| of the first run's time | commit s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, seconds, s in runs:
        lines.append(f"| {label} | {s['photos_listed']} | {s['new'] + s['changed']} | {s['reused_by_content']} | "
                     f"{s['faces_encoded']} | {seconds:.1f} | {seconds / first:.0%} | {s['commit_seconds']:.2f} |")
    lines += ["", "Read back with DuckDB over `deltalake` (no facetag):", "", "```", readback, "```"]
    benchutil.write_report(lines, args.out)


def read_back(store):
    import duckdb
    from deltalake import DeltaTable

    photos = DeltaTable(os.path.join(store, "photos")).to_pyarrow_dataset()  # noqa: F841 - DuckDB reads it by name
    matches = DeltaTable(os.path.join(store, "matches")).to_pyarrow_dataset()  # noqa: F841
    query = ("SELECT p.outcome, count(DISTINCT p.path) AS photos, count(m.face_id) AS faces, "
             "count(m.face_id) FILTER (WHERE m.identity <> 'unknown') AS identified "
             "FROM photos p LEFT JOIN matches m ON m.path = p.path GROUP BY p.outcome ORDER BY p.outcome")
    return query + "\n" + str(duckdb.sql(query))


if __name__ == "__main__":
    main()
