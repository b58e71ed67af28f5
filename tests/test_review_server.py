"""The review server (facetag review --serve) on a real clustered store: naming in headless Chromium, the JSON
API's answers and errors, each security refusal over plain HTTP, and the server beside a 'facetag tag' run."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import requests
from deltalake import DeltaTable

from beam_jobs import cluster, enroll, tag
from facetag.archive.store import ArchiveStore
from tests.browser import chromium
from tests.review_server import Server
from tests.tagged_fixtures import unknown_people_archive

XSS = "<img src=x onerror=window.pwned=1>"


@pytest.fixture(scope="module")
def clustered(lfw_dev, samples, tmp_path_factory):
    """4 unknown people (6 photos each) and 3 strangers from lfw_dev, tagged against the sample gallery and
    clustered: ``(work folder, archive folder, index, store)``."""
    work = tmp_path_factory.mktemp("served")
    images, archive = os.path.join(lfw_dev, "images"), work / "archive"
    unknown_people_archive(images, archive)
    index, store = str(work / "index"), str(work / "store")
    enroll.run(["--gallery", os.path.join(samples, "gallery"), "--out", index])
    tag.run(["--input", str(archive), "--index", index, "--store", store])
    cluster.run(["--store", store])
    return work, str(archive), index, store


@pytest.fixture
def own(clustered, tmp_path):
    """A copy of the clustered store and its gallery for one test: ``{"archive", "index", "store"}``."""
    work, archive, index, store = clustered
    own_index, own_store = str(tmp_path / "index"), str(tmp_path / "store")
    shutil.copytree(index, own_index)
    shutil.copytree(store, own_store, ignore=shutil.ignore_patterns(".lock"))
    manifest = json.load(open(os.path.join(own_store, "store.json")))
    manifest["index_dir"] = own_index
    json.dump(manifest, open(os.path.join(own_store, "store.json"), "w"))
    return {"archive": archive, "index": own_index, "store": own_store}


@pytest.fixture
def server(own):
    s = Server(own["store"])
    yield s
    if s.process.poll() is None:
        s.stop()


def labels(store):
    rows = DeltaTable(os.path.join(store, "labels")).to_pyarrow_table().to_pylist()
    return sorted(rows, key=lambda r: r["labelled_at"])


def identities(store):
    return {m["face_id"]: m["identity"] for m in ArchiveStore(store).read("matches", ["face_id", "identity"]).to_pylist()}


def test_naming_in_the_browser_lands_in_the_store_and_survives_a_tag_run(own, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    clusters = server.get("/api/clusters").json()["clusters"]
    assert [c["size"] for c in clusters] == [6, 6, 6, 6]
    first, second, third, fourth = (c["id"] for c in clusters)
    with chromium() as driver:
        driver.get(server.url)
        WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.documentElement.dataset.ready"))
        assert "token" not in driver.current_url  # it went to an HttpOnly cookie
        assert driver.execute_script("return document.cookie") == ""
        updates = [0]

        def acted():
            updates[0] += 1
            WebDriverWait(driver, 60).until(
                lambda d: d.execute_script("return +document.documentElement.dataset.updates || 0") >= updates[0])

        def section(key):
            return driver.find_element(By.CSS_SELECTOR, f'section[data-key="{key}"]')

        # Name a cluster by typing and Enter.
        box = section(f"c:{first}").find_element(By.CSS_SELECTOR, "input.name")
        box.send_keys("Ada Lovelace", Keys.ENTER)
        acted()
        assert section("p:Ada Lovelace").get_attribute("data-count") == "6"
        assert not driver.find_elements(By.CSS_SELECTOR, f'section[data-key="c:{first}"]')
        nav = driver.execute_script("return [...document.querySelectorAll('#nav li')].map(li => li.textContent)")
        assert nav[:2] == ["People", "Ada Lovelace6"] and f"Cluster {first}6" not in nav
        # Reject one of her faces: select it, press r.
        rejected = section("p:Ada Lovelace").find_element(By.CSS_SELECTOR, ".tile").get_attribute("data-face")
        section("p:Ada Lovelace").find_element(By.CSS_SELECTOR, f'.tile[data-face="{rejected}"] img').click()
        driver.find_element(By.TAG_NAME, "body").send_keys("r")
        acted()
        assert section("p:Ada Lovelace").get_attribute("data-count") == "5"
        # Merge two clusters: select both, press m.
        for key in (f"c:{second}", f"c:{third}"):
            section(key).find_element(By.CSS_SELECTOR, "input.pick").click()
        driver.find_element(By.TAG_NAME, "body").send_keys("m")
        acted()
        merged_into = min(second, third)
        assert section(f"c:{merged_into}").get_attribute("data-count") == "12"
        # Hide the last cluster with its button, then undo that.
        section(f"c:{fourth}").find_element(By.XPATH, ".//button[text()='Hide']").click()
        acted()
        assert section("hidden").get_attribute("data-count") == "6"
        driver.execute_script("window.scrollTo(0, 0)")  # the summary in the picture too (docs/review-server.png)
        driver.save_screenshot(str(tmp_path / "review-server.png"))
        driver.find_element(By.TAG_NAME, "body").send_keys("u")
        acted()
        assert not driver.find_elements(By.CSS_SELECTOR, 'section[data-key="hidden"]')
        assert section(f"c:{fourth}").get_attribute("data-count") == "6"
        nav = driver.execute_script("return [...document.querySelectorAll('#nav li')].map(li => li.textContent)")
        assert "Hidden" not in nav and f"Cluster {fourth}6" in nav and f"Cluster {merged_into}12" in nav
        shortcuts = driver.find_element(By.ID, "keys").text
        assert all(k in shortcuts for k in ("name this cluster", "next/previous", "reject", "undo"))

    # The store's labels table, read with deltalake: each action's words, the undo's taking back the hide.
    rows = labels(own["store"])
    assert [r["verdict"] for r in rows].count("is") == 6 and {r["name"] for r in rows if r["verdict"] == "is"} == {
        "Ada Lovelace"}
    assert [(r["face_id"], r["name"]) for r in rows if r["verdict"] == "not"] == [(rejected, "Ada Lovelace")]
    assert sum(r["verdict"] == "same" for r in rows) == 6
    hide_action = {r["action"] for r in rows if r["verdict"] == "hide"}
    assert len(hide_action) == 1 and {r["action"] for r in rows if r["verdict"] == "undo"} == hide_action
    assert all(r["via"] == "review page" for r in rows)

    # The next facetag tag re-matches: her five faces carry the name, the rejected one does not.
    code, out, err = server.stop()
    assert code == 0 and "stopped" in out and err == "", err
    before = {c["id"]: c["faces"] for c in clusters}
    tag.run(["--input", own["archive"], "--index", own["index"], "--store", own["store"]])
    named = identities(own["store"])
    assert {f for f, i in named.items() if i == "Ada Lovelace"} == set(before[first]) - {rejected}
    # And facetag cluster keeps the merge and leaves named faces out.
    cluster.run(["--store", own["store"]])
    rows = ArchiveStore(own["store"]).read("clusters", ["face_id", "cluster_id"]).to_pylist()
    cluster_of = {r["face_id"]: r["cluster_id"] for r in rows}
    assert len({cluster_of[f] for f in before[second] + before[third]}) == 1
    assert not set(before[first]) - {rejected} & set(cluster_of)


def test_api_answers_and_errors(own, server):
    page = server.get("/api/page").json()
    assert page["summary"]["faces"] == 28 and page["summary"]["clusters"] == 4
    clusters = server.get("/api/clusters").json()["clusters"]
    a, b = clusters[0], clusters[1]

    r = server.post("/api/name", {"cluster": a["id"], "name": "  Grace Hopper "})
    assert r.status_code == 200 and r.json()["sections"]["p:Grace Hopper"]["faces"]
    assert r.json()["removed"] == [f"c:{a['id']}"]
    # The name exists: the same person? Only with "merge".
    r = server.post("/api/name", {"cluster": b["id"], "name": "Grace Hopper"})
    assert r.status_code == 409 and r.json()["exists"] is True
    assert server.post("/api/name", {"cluster": b["id"], "name": "Grace Hopper", "merge": True}).status_code == 200
    assert len(server.get("/api/page").json()["sections"]["p:Grace Hopper"]["faces"]) == 12
    r = server.post("/api/undo")
    assert r.status_code == 200 and r.json()["done"].startswith("undid: named cluster")
    assert len(r.json()["sections"]["p:Grace Hopper"]["faces"]) == 6
    # What 'facetag name' reads agrees at once.
    from facetag.archive.naming import named_faces

    assert set(named_faces(ArchiveStore(own["store"]))[0]) == set(a["faces"])
    face = a["faces"][0]
    assert server.post("/api/not", {"face": face}).json()["done"] == "1 face: not who the matcher said"
    assert server.post("/api/name", {"face": face, "name": "Grace Hopper"}).status_code == 200

    for body, status, word in [
            ({"cluster": 9999, "name": "X"}, 404, "9999"), ({"face": "0123456789abcdef", "name": "X"}, 404, "0123456789abcdef"),
            ({"faces": "notalist", "name": "X"}, 400, "list"), ({"cluster": b["id"]}, 400, "name"),
            ({"cluster": b["id"], "name": ""}, 400, "empty"), ({"cluster": b["id"], "name": XSS}, 400, "plain text"),
            ({"cluster": b["id"], "name": "a\nb"}, 400, "plain text")]:
        r = server.post("/api/name", body)
        assert r.status_code == status and word in r.json()["error"], (body, r.text)
    assert server.post("/api/name", {"cluster": 9999, "name": "X"}).json()["id"] == 9999
    r = requests.post(server.base + "/api/name", data=b"{not json", timeout=30,
                      headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    assert server.post("/api/merge", {"clusters": [b["id"]]}).status_code == 400
    assert server.post("/api/fly", {}).status_code == 404
    assert all(r["name"] != XSS for r in labels(own["store"]))


def test_each_refusal(server):
    token = {"Authorization": f"Bearer {server.token}"}
    # No token, a wrong one: 401, on the API, the page and the thumbnails alike.
    for path in ("/api/clusters", "/", "/app.js", "/thumbs/0123.jpg"):
        assert requests.get(server.base + path, timeout=30).status_code == 401, path
    assert requests.get(server.base + "/api/clusters", headers={"Authorization": "Bearer wrong"},
                        timeout=30).status_code == 401
    assert requests.post(server.base + "/api/undo", json={}, timeout=30).status_code == 401
    # A foreign Host (DNS rebinding), even with the token.
    for host in ("evil.example", f"evil.example:{server.port}", "127.0.0.1:1", f"192.168.1.5:{server.port}"):
        r = requests.get(server.base + "/api/clusters", headers={**token, "Host": host}, timeout=30)
        assert r.status_code == 403 and "Host" in r.json()["error"], host
    assert server.get("/api/clusters", headers={"Host": f"localhost:{server.port}"}).status_code == 200
    # A write from another origin (CSRF), or not JSON (what a form can send).
    assert server.post("/api/undo", {}, headers={"Origin": "http://evil.example"}).status_code == 403
    assert server.post("/api/undo", {}, headers={"Origin": f"http://127.0.0.1:{server.port + 1}"}).status_code == 403
    assert server.post("/api/undo", {}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    r = requests.post(server.base + "/api/undo", data="{}", headers={**token, "Content-Type": "text/plain"}, timeout=30)
    assert r.status_code == 415
    assert server.post("/api/undo", {}, headers={"Origin": server.base}).status_code == 409  # allowed; nothing to undo
    # The token in the address becomes an HttpOnly, SameSite=Strict cookie, and the address loses it.
    r = requests.get(server.url, timeout=30, allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and server.token in cookie
    assert requests.get(server.base + "/api/clusters", cookies={"facetag_token": server.token}, timeout=30).ok
    # Every answer carries the policy; the page's script is its own file.
    for r in (server.get("/"), server.get("/api/page"), requests.get(server.base + "/api/page", timeout=30)):
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in server.get("/").text
    # Only loopback: the machine's other addresses do not answer.
    for address in {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}:
        with pytest.raises(OSError):
            socket.create_connection((address, server.port), timeout=2).close()


def test_names_with_markup_show_as_text(own, server):
    """A name written before names were checked (or by another tool) is shown as text, never run as HTML."""
    import pyarrow as pa

    from facetag.archive.tables import LABELS_SCHEMA

    face = server.get("/api/clusters").json()["clusters"][0]["faces"][0]
    store = ArchiveStore(own["store"])
    with store.lock():
        store.append_rows("test", "labels", pa.Table.from_pylist([{
            "face_id": face, "name": XSS, "verdict": "is", "via": "face", "labelled_at": "2026-12-06T00:00:00+00:00"}],
            LABELS_SCHEMA))
    with chromium() as driver:
        driver.get(server.url)
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.documentElement.dataset.ready"))
        heading = driver.execute_script(f"return document.querySelector('section[data-key=\"p:' + {json.dumps(XSS)} "
                                        "+ '\"] h2').textContent")
        assert heading == XSS
        assert driver.execute_script("return window.pwned === undefined && !document.querySelector('img[src=x]')")


def test_the_server_beside_a_tag_run(own, server, samples):
    """A name sent while 'facetag tag' writes the same store is refused with a clear message, or the tag run is;
    neither corrupts the store, and the page then shows the tag run's results."""
    extra = os.path.join(os.path.dirname(own["store"]), "more")
    shutil.copytree(own["archive"], extra)
    for name in os.listdir(os.path.join(samples, "photos")):
        shutil.copy(os.path.join(samples, "photos", name), extra)
    clusters = server.get("/api/clusters").json()["clusters"]
    photos_before = server.get("/api/page").json()["summary"]["photos"]
    run = subprocess.Popen([sys.executable, "-m", "facetag.cli", "tag", extra, "--index", own["index"], "--out",
                            own["store"]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    answers = []
    while run.poll() is None:
        for c in clusters:
            r = server.post("/api/hide", {"cluster": c["id"]})
            answers.append((r.status_code, r.json().get("error", "")))
            if r.status_code == 200:
                server.post("/api/undo")
        time.sleep(0.1)
    out, err = run.communicate()
    busy = [e for code, e in answers if code == 409]
    assert {code for code, _ in answers} <= {200, 409}
    assert all("another facetag run is writing the store" in e for e in busy)
    assert run.returncode == 0 or "another facetag run is writing the store" in err, err
    assert busy or run.returncode != 0  # they did meet
    if run.returncode != 0:  # refused: the store is as before; run it again now
        run = subprocess.run([sys.executable, "-m", "facetag.cli", "tag", extra, "--index", own["index"], "--out",
                              own["store"]], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    page = server.get("/api/page").json()  # read afresh: the tag run committed since
    assert page["summary"]["photos"] == photos_before + len(os.listdir(extra))
    assert page["summary"]["hidden"] == 0
    assert server.post("/api/name", {"cluster": clusters[0]["id"], "name": "After Tag"}).status_code == 200


def test_a_labels_table_of_an_older_facetag_takes_the_new_words(own):
    """A store named before hiding and merging existed (labels without 'action' and 'same_as') reads as before and
    gains the columns with its first new word."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from facetag.archive.naming import Word, name_faces, named_faces
    from facetag.identity.words import HIDE

    store = ArchiveStore(own["store"])
    faces = [r["face_id"] for r in store.read("clusters").to_pylist() if r["cluster_id"] is not None]
    old = pa.table({"face_id": faces[:2], "name": ["Old Name"] * 2, "verdict": ["is"] * 2, "via": ["face"] * 2,
                    "labelled_at": ["2026-01-01T00:00:00.000000+00:00"] * 2})
    write_deltalake(store.join("labels"), old)
    with store.lock():
        store.publish_versions("older", {"labels": 0})
    assert named_faces(ArchiveStore(own["store"]))[0] == dict.fromkeys(faces[:2], "Old Name")
    name_faces(own["store"], [Word(face=faces[2], verdict=HIDE)], action="a-1")
    rows = labels(own["store"])
    assert [(r["name"], r["action"], r["same_as"]) for r in rows[:2]] == [("Old Name", None, None)] * 2
    assert (rows[2]["verdict"], rows[2]["action"]) == ("hide", "a-1")
    assert named_faces(ArchiveStore(own["store"]))[0] == dict.fromkeys(faces[:2], "Old Name")
