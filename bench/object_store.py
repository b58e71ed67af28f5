"""The archive on object storage: `facetag tag` from and into a local S3 server, against a local folder.

    python bench/object_store.py [--photos 1000] [--out FILE]

``--photos`` lfw_dev photos (../shared/data) are tagged twice, each run `facetag tag` in a fresh
process as a scheduler runs it: once with photos, gallery index and archive store in a local folder,
once with all three on the S3 server of `make s3-up` (scripts/s3_server.py: moto's server, on this
machine, so the figures show facetag's requests and bytes, not a network's latency). Each is run
first on an empty store, then again with nothing changed. Requests and bytes come from the server's
counters, per photo listed; the gallery is the sample photos' (three faces).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

import benchutil

VENV_BIN = os.path.dirname(sys.executable)
SERVER = os.path.join(benchutil.REPO, "scripts", "s3_server.py")
BUCKET = "facetag"


def facetag(*args, env=None):
    start = time.perf_counter()
    out = subprocess.run([os.path.join(VENV_BIN, "facetag"), *args], check=True, capture_output=True, text=True,
                         env=env)
    return time.perf_counter() - start, out.stdout


def server_stats(endpoint):
    with urllib.request.urlopen(f"{endpoint}/_facetag_s3/stats", timeout=30) as r:
        return json.load(r)


def upload(paths, prefix):
    import boto3

    client = boto3.client("s3")
    for path in paths:
        rel = os.path.relpath(path, os.path.dirname(os.path.dirname(path)))  # Person/Person_0001.jpg
        client.upload_file(path, BUCKET, f"{prefix}/{rel}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--out", help="also write the report here (markdown)")
    args = parser.parse_args(argv)
    facts = benchutil.machine_facts()
    paths, origin = benchutil.photo_paths()
    if not origin.startswith("lfw_dev") or len(paths) < args.photos:
        raise SystemExit(f"needs {args.photos} lfw_dev photos: is ../shared/data there?")
    paths = paths[: args.photos]
    from facetag.io.samples import fetch

    gallery = os.path.join(fetch(), "gallery")
    with tempfile.TemporaryDirectory() as work:
        up = subprocess.run([sys.executable, SERVER, "up", "--dir", os.path.join(work, "s3"), "--port", "0",
                             "--bucket", BUCKET], check=True, capture_output=True, text=True)
        settings = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines())
        os.environ.update(settings)
        try:
            local = os.path.join(work, "local")
            os.makedirs(os.path.join(local, "photos"))
            for path in paths:
                target = os.path.join(local, "photos", os.path.relpath(path, os.path.dirname(os.path.dirname(path))))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.symlink(path, target)
            upload(paths, "photos")
            rows = []
            for where, root in (("local folder", local), ("S3 server", f"s3://{BUCKET}")):
                facetag("enroll", gallery, "--out", f"{root}/gallery")
                for label in ("first run", "unchanged re-run"):
                    before = server_stats(settings["AWS_ENDPOINT_URL"])
                    seconds, out = facetag("tag", f"{root}/photos", "--index", f"{root}/gallery", "--out",
                                           f"{root}/archive", "--json")
                    after = server_stats(settings["AWS_ENDPOINT_URL"])
                    summary = json.loads(out.strip().splitlines()[-1])
                    listed = summary["photos_listed"]
                    requests = {m: after["requests"].get(m, 0) - before["requests"].get(m, 0)
                                for m in after["requests"]}
                    total = sum(requests.values())
                    bytes_moved = (after["bytes_in"] - before["bytes_in"]) + (after["bytes_out"] - before["bytes_out"])
                    rows.append((where, label, listed, summary["new"], summary["unchanged"], seconds,
                                 total, requests, bytes_moved))
        finally:
            subprocess.run([sys.executable, SERVER, "down", "--dir", os.path.join(work, "s3")], capture_output=True)
    lines = [f"## Archive on object storage (`python bench/object_store.py --photos {args.photos}`)", "", *facts,
             f"- Photos: {args.photos} of {origin}; gallery: the sample photos' 3 faces; the S3 server is "
             "scripts/s3_server.py (moto) on this machine, so there is no network latency in these figures",
             "", "| store | run | photos listed | new | unchanged | seconds | ms per photo | requests per photo "
             "| requests by method | bytes per photo (in + out) |", "| --- | --- | ---: | ---: | ---: | ---: | ---: "
             "| ---: | --- | ---: |"]
    for where, label, listed, new, unchanged, seconds, total, requests, bytes_moved in rows:
        by_method = ", ".join(f"{m} {n}" for m, n in sorted(requests.items()) if n) if total else "none"
        lines.append(f"| {where} | {label} | {listed} | {new} | {unchanged} | {seconds:.1f} | "
                     f"{1000 * seconds / listed:.1f} | {total / listed:.2f} | {by_method} | "
                     f"{bytes_moved / listed:,.0f} |")
    benchutil.write_report(lines, args.out)


if __name__ == "__main__":
    main()
