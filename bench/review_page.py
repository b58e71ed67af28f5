"""How long the review page takes to open in headless Chromium, static and served, and how long an action on
the served page takes: 1,000 faces and 100,000 faces, one run.

    python bench/review_page.py [--faces 100000] [--out report.md]

The served page (facetag review STORE --serve) runs on a synthetic store of the same number of faces
(bench/synthetic_store.py: written by the store's own commit, with a gallery index), its thumbnails laid
out as for the static page. Measured: the server's start (the command's launch to its address line,
reading the store), the page's first render in a fresh Chromium (three times), a cluster named in the page
by typing and Enter until the page has redrawn, and through the API alone (name a cluster, undo it: the
median of five each; each writes the labels table and rebuilds the gallery index).

The results are made up to the page's scale (people with 1 to 600 faces, clusters of 2 to 80 unknown faces,
unknown faces in no cluster, photos without a face and failed ones); the thumbnails are real faces
(lfw_dev's photos when ../shared/data is there, else the sample photos), hard-linked so that 100,000
of them take seconds to lay out. The page is then built by facetag.archive.review (data.js, assets; the
thumbnails exist, so none is cropped) and opened three times in a fresh headless Chromium each:
"ready" is the page's own time from navigation start to its first render (window.FACETAG_READY_MS),
"open" the wall time from the browser's request to then.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

from PIL import Image, ImageOps

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, "lib"), REPO]

from benchutil import machine_facts, photo_paths, write_report  # noqa: E402
from synthetic_store import make_store  # noqa: E402

from facetag.archive.results import Results, TaggedFace, TaggedPhoto  # noqa: E402
from facetag.archive.review import THUMB_SIZE, thumb_name, write_review  # noqa: E402
from tests.browser import chromium, wait_ready  # noqa: E402
from tests.review_server import Server  # noqa: E402


def made_up_results(n_faces, seed=0):
    rng = random.Random(seed)
    photos, faces = [], 0
    sizes = [min(600, int(rng.paretovariate(1.1))) for _ in range(max(1, n_faces // 100))]
    clusters = [rng.randint(2, 80) for _ in range(max(1, n_faces // 100))]
    plan = [(f"Person {i:04d}", None) for i, n in enumerate(sizes) for _ in range(n)]
    plan += [("unknown", f"c{i:05d}") for i, n in enumerate(clusters) for _ in range(n)]
    plan = plan[: int(n_faces * 0.85)]
    plan += [("unknown", "")] * (n_faces - len(plan))
    rng.shuffle(plan)
    for start in range(0, len(plan), 2):
        path = f"/archive/{start // 2000:03d}/IMG_{start:07d}.jpg"
        photo = TaggedPhoto(path, "faces", "", 4000, 3000)
        for index, (identity, cluster) in enumerate(plan[start:start + 2]):
            photo.faces.append(TaggedFace(f"{faces:016x}", path, index, (1000 + 900 * index, 800, 1400 + 900 * index,
                                                                         1300), identity, rng.uniform(0.3, 1.4),
                                          cluster or ""))
            faces += 1
        photos.append(photo)
    photos += [TaggedPhoto(f"/archive/none/{i:06d}.jpg", "no_face", "no face found", 4000, 3000) for i in range(n_faces // 50)]
    photos += [TaggedPhoto(f"/archive/bad/{i:06d}.jpg", "failed", "corrupt or truncated image data", None, None)
               for i in range(n_faces // 500)]
    return Results(photos, "facetag-128:bench", True)


def lay_out_thumbnails(face_ids, out_dir, sources):
    os.makedirs(os.path.join(out_dir, "thumbs"), exist_ok=True)
    pool = []
    for i, src in enumerate(sources[:300]):
        path = os.path.join(out_dir, f"pool-{i}.jpg")
        ImageOps.fit(Image.open(src).convert("RGB"), (THUMB_SIZE, THUMB_SIZE)).save(path, quality=82)
        pool.append(path)
    for i, face_id in enumerate(face_ids):
        target = os.path.join(out_dir, thumb_name(face_id))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.link(pool[i % len(pool)], target)


def results_sections(results):
    return {f.identity if f.known else f.cluster_id for f in results.faces}


def open_page(index_html):
    with chromium() as driver:
        start = time.perf_counter()
        driver.get("file://" + index_html)
        ready_ms = wait_ready(driver)
        opened = time.perf_counter() - start
        sections = driver.execute_script("return document.querySelectorAll('section.faces').length")
        tiles = driver.execute_script("return document.querySelectorAll('.tile').length")
    return ready_ms / 1000, opened, sections, tiles


def served(n, sources, tmp):
    """The served page on a synthetic store of ``n`` faces: a table row's figures."""
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from facetag.archive.store import ArchiveStore

    info = make_store(os.path.join(tmp, "synthetic"), n // 2, faces_per_photo=(2,))
    thumbs = os.path.join(tmp, "served")
    lay_out_thumbnails(ArchiveStore(info["store"]).read("matches", ["face_id"]).column("face_id").to_pylist(),
                       thumbs, sources)
    start = time.perf_counter()
    server = Server(info["store"], "--out", thumbs)
    try:
        started = time.perf_counter() - start
        page_mb = len(server.get("/api/page", timeout=120).content) / 2**20
        opens, typed = [], None
        for attempt in range(3):
            with chromium() as driver:
                start = time.perf_counter()
                driver.get(server.url)
                ready_ms = wait_ready(driver, timeout=300)
                opens.append((ready_ms / 1000, time.perf_counter() - start))
                if attempt == 0:
                    driver.find_element("xpath", "//nav//a[span[starts-with(text(), 'Cluster')]]").click()
                    box = driver.find_element("css selector", "section[data-kind=cluster] input.name")
                    start = time.perf_counter()
                    box.send_keys("Typed Name", Keys.ENTER)
                    WebDriverWait(driver, 120).until(
                        lambda d: d.execute_script("return document.documentElement.dataset.updates"))
                    typed = time.perf_counter() - start
        named, undone = [], []
        for _ in range(5):
            cluster = server.get("/api/clusters", timeout=120).json()["clusters"][0]["id"]
            for path, body, times in (("/api/name", {"cluster": cluster, "name": "Bench Name"}, named),
                                      ("/api/undo", {}, undone)):
                start = time.perf_counter()
                answer = server.post(path, body, timeout=120)
                times.append(time.perf_counter() - start)
                assert answer.ok, answer.text
    finally:
        server.stop(timeout=60)
    ready = sorted(opens)
    return (f"| {n:,} | {info['clusters']:,} | {page_mb:.1f} MiB | {started:.2f} | {ready[1][0]:.2f} "
            f"(runs {', '.join(f'{r[0]:.2f}' for r in opens)}) | {ready[1][1]:.2f} | {typed:.2f} | "
            f"{statistics.median(named):.2f} | {statistics.median(undone):.2f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args(argv)
    sources, source_name = photo_paths()
    lines = ["# Review page open time (bench/review_page.py)", "", *machine_facts(),
             f"- Thumbnails: real faces from {source_name}", "",
             "| faces | sections | data.js | write_review (s) | ready, median of 3 (s) | open (s) | sections, tiles rendered |",
             "|---|---|---|---|---|---|---|"]
    for n in (1000, args.faces):
        with tempfile.TemporaryDirectory() as tmp:
            results = made_up_results(n)
            lay_out_thumbnails([f.face_id for f in results.faces], tmp, sources)
            start = time.perf_counter()
            summary = write_review(results, tmp, "/archive/store", 0.95)
            built = time.perf_counter() - start
            assert summary["thumbnails_written"] == 0
            runs = sorted(open_page(os.path.join(tmp, "index.html")) for _ in range(3))
            ready, opened, rendered, tiles = runs[1]
            size = os.path.getsize(os.path.join(tmp, "data.js")) / 2**20
            lines.append(f"| {n:,} | {len(results_sections(results)):,} | {size:.1f} MiB | {built:.2f} | {ready:.2f} "
                         f"(runs {', '.join(f'{r[0]:.2f}' for r in runs)}) | {opened:.2f} | {rendered}, {tiles} |")
    lines += ["", "Served (facetag review --serve) on a synthetic store:", "",
              "| faces | clusters | /api/page | server start (s) | ready, median of 3 (s) | open (s) | "
              "name typed + Enter to redrawn (s) | POST /api/name, median of 5 (s) | POST /api/undo (s) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for n in (1000, args.faces):
        with tempfile.TemporaryDirectory() as tmp:
            lines.append(served(n, sources, tmp))
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
