"""The review page, rendered by headless Chromium; the review and xmp commands on a real archive store."""

import json
import os
import subprocess
import sys

import pyarrow as pa

from facetag.archive.results import results_from_tables
from facetag.archive.review import thumb_name, write_review
from tests.browser import chromium, wait_ready


def facetag(*args):
    return subprocess.run([sys.executable, "-m", "facetag.cli", *args], capture_output=True, text=True)


def with_clusters(tagged_archive):
    """The results with a clusters table shaped like 'facetag cluster' writes: the unknown face in cluster 0."""
    _, _, res, photos, matches = tagged_archive
    unknown = [f.face_id for f in res.faces if not f.known]
    clusters = pa.table({"face_id": unknown, "cluster_id": pa.array([0] * len(unknown), pa.int64()),
                         "cluster_size": pa.array([len(unknown)] * len(unknown), pa.int32()),
                         "distance": pa.array([0.0] * len(unknown), pa.float32())})
    return results_from_tables(photos, matches, res.model_id, clusters)


def dom_sections(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('section.faces')].map(s => [s.dataset.kind, s.dataset.name,"
        " +s.dataset.count, s.querySelectorAll('.tile img').length])")


def test_review_page_in_chromium_matches_the_store(tagged_archive, tmp_path):
    res = with_clusters(tagged_archive)
    out = tmp_path / "review"
    threshold = res.identify_threshold()
    summary = write_review(res, str(out), "/data/store", threshold)
    assert summary["thumbnails_written"] == len(res.faces) == 7
    assert all((out / thumb_name(f.face_id)).stat().st_size > 1000 for f in res.faces)

    with chromium() as driver:
        driver.get((out / "index.html").as_uri())
        wait_ready(driver)
        known = {}
        for face in res.faces:
            if face.known:
                known[face.identity] = known.get(face.identity, 0) + 1
        expected = [["identity", name, n, n] for name, n in sorted(known.items())] + [["cluster", "0", 1, 1]]
        assert dom_sections(driver) == expected == [["identity", "biden", 1, 1], ["identity", "obama", 5, 5],
                                                    ["cluster", "0", 1, 1]]
        cards = driver.execute_script("return Object.fromEntries([...document.querySelectorAll('.card')]"
                                      ".map(c => [c.dataset.key, c.querySelector('.v').textContent]))")
        assert cards == {"photos": "10", "faces": "7", "identified": "6", "unknown": "1", "people": "2",
                         "clusters": "1", "without a face": "1", "failed": "3"}
        failed = driver.execute_script("return [...document.querySelectorAll('#failed td')].map(t => t.textContent)")
        assert any(t.endswith("empty.jpg") for t in failed) and "the file is empty" in failed
        assert driver.execute_script("return [...document.images].filter(i => i.closest('.tile'))"
                                     ".every(i => i.complete && i.naturalWidth > 0)")
        # The obama faces are sorted most doubtful first: distance closest to the threshold.
        shown = driver.execute_script("return [...document.querySelectorAll('#s1 .dist')].map(d => +d.textContent)")
        assert [abs(d - threshold) for d in shown] == sorted(abs(d - threshold) for d in shown)
        driver.save_screenshot(str(tmp_path / "review.png"))

        # The cluster's command follows the name typed for it.
        driver.execute_script("const i = document.querySelector('#s2 input'); i.value = \"Eileen O'Collins\";"
                              "i.dispatchEvent(new Event('input'))")
        assert driver.execute_script("return document.querySelector('#s2 .cmd').textContent") == \
            "facetag name /data/store --cluster 0 --as 'Eileen O'\\''Collins'"

        # Clicking a face shows its photo with the face's box.
        two = next(f for f in res.faces if f.identity == "biden")
        driver.find_element("css selector", f'.tile[data-face="{two.face_id}"] img').click()
        driver.implicitly_wait(5)
        box = driver.execute_script(
            "const b = document.getElementById('box'), i = document.getElementById('photo');"
            "return i.complete && i.naturalWidth ? [b.hidden, i.naturalWidth, i.naturalHeight, b.style.left, b.style.width] : null")
        photo = next(p for p in res.photos if p.path == two.path)
        assert box[:3] == [False, photo.width, photo.height]
        assert abs(float(box[3].rstrip("%")) - 100 * two.box[0] / photo.width) < 1e-3
        assert abs(float(box[4].rstrip("%")) - 100 * (two.box[2] - two.box[0]) / photo.width) < 1e-3
        commands = driver.execute_script("return [...document.querySelectorAll('#details .cmd')].map(c => c.textContent)")
        assert f"facetag name /data/store --face {two.face_id} --not biden" in commands
        driver.save_screenshot(str(tmp_path / "review-photo.png"))
    print(f"screenshots in {tmp_path}")


def test_review_page_lists_faces_too_unsure_to_group(tagged_archive, tmp_path):
    """A face the last clustering left out for its quality (facetag cluster --min-quality) has a section of its own."""
    _, _, res, photos, matches = tagged_archive
    unknown = [f.face_id for f in res.faces if not f.known]
    no_clusters = pa.table({"face_id": pa.array([], pa.string()), "cluster_id": pa.array([], pa.int64()),
                            "cluster_size": pa.array([], pa.int32()), "distance": pa.array([], pa.float32())})
    gated = results_from_tables(photos, matches, res.model_id, no_clusters,
                                quality=dict.fromkeys(unknown, 0.2), min_quality=0.5)
    out = tmp_path / "review"
    summary = write_review(gated, str(out), "/data/store", gated.identify_threshold())
    assert summary["too_unsure"] == len(unknown) == 1
    with chromium() as driver:
        driver.get((out / "index.html").as_uri())
        wait_ready(driver)
        assert dom_sections(driver)[-1] == ["unsure", "too unsure to group", 1, 1]
        heading = driver.execute_script("return document.querySelector('section[data-kind=unsure] h2').textContent")
        assert "Too unsure to group" in heading


def test_rerun_writes_only_new_thumbnails(tagged_archive, tmp_path):
    res = tagged_archive[2]
    assert write_review(res, str(tmp_path), "s", 0.95)["thumbnails_written"] == 7
    first = res.faces[0]
    os.remove(tmp_path / thumb_name(first.face_id))
    assert write_review(res, str(tmp_path), "s", 0.95)["thumbnails_written"] == 1


def test_review_and_xmp_commands_on_the_store(tagged_archive, tmp_path):
    _, store, res, _, _ = tagged_archive
    out = facetag("review", store, "--out", str(tmp_path / "review"), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert (summary["faces"], summary["identified"], summary["clusters"]) == (7, 6, None)
    assert os.path.exists(tmp_path / "review" / "index.html")

    out = facetag("xmp", store, "--out", str(tmp_path / "xmp"), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["written"] == 5
    out = facetag("xmp", store, "--out", str(tmp_path / "xmp"))
    assert out.returncode == 0 and "0 written, 5 unchanged" in out.stdout
    assert facetag("xmp", store, "--out", "x", "--embed").returncode == 2
    out = facetag("review", str(tmp_path / "nothing"), "--out", str(tmp_path / "r"))
    assert out.returncode == 1 and "is not a facetag archive store" in out.stderr
