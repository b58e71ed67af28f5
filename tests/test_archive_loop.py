"""The archive loop on real faces: tag, cluster the unknown, name a cluster, tag again (issue: unknown faces
become people). lfw_dev people nobody enrolled play the archive's unknown people."""

import os
import shutil

import pyarrow.parquet as pq
import pytest
from PIL import Image

from beam_jobs import cluster, enroll, tag
from facetag.archive.naming import Word, name_faces, named_faces
from facetag.archive.store import ArchiveStore
from facetag.errors import FaceTagError
from facetag.identity.words import IS_NOT
from tests.tagged_fixtures import STRANGERS
from tests.tagged_fixtures import UNKNOWN_PEOPLE as PEOPLE
from tests.tagged_fixtures import unknown_people_archive


@pytest.fixture(scope="module")
def loop(lfw_dev, samples, tmp_path_factory):
    """An archive of 4 unknown people (their first 6 photos) and 3 strangers, tagged and clustered."""
    work = tmp_path_factory.mktemp("loop")
    images = os.path.join(lfw_dev, "images")
    archive = work / "archive"
    unknown_people_archive(images, archive)
    # One photo with two faces of one person: they must never share a cluster.
    a, b = (Image.open(os.path.join(images, "Colin_Farrell", n)) for n in sorted(
        os.listdir(os.path.join(images, "Colin_Farrell")))[6:8])
    pair = Image.new("L", (500, 250))
    pair.paste(a, (0, 0))
    pair.paste(b, (250, 0))
    pair.save(archive / "Colin_Farrell_twice.jpg")
    index, store = str(work / "index"), str(work / "store")
    enroll.run(["--gallery", os.path.join(samples, "gallery"), "--out", index])
    tag.run(["--input", str(archive), "--index", index, "--store", store])
    first = cluster.run(["--store", store])
    return {"work": work, "archive": str(archive), "index": index, "store": store, "images": images,
            "first": first}


def clusters_by_person(store):
    """{person: cluster ids of the main face of each of their photos} and {face_id: cluster} of all faces.

    A photo's main face is its largest: LFW photos show their person in the middle, bystanders smaller.
    """
    s = ArchiveStore(store)
    main_face = {}
    for f in s.read("faces", ["face_id", "path", "box"]).to_pylist():
        area = (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1])
        if f["path"] not in main_face or area > main_face[f["path"]][0]:
            main_face[f["path"]] = (area, f["face_id"])
    rows = s.read("clusters").to_pylist()
    cluster_of = {r["face_id"]: r["cluster_id"] for r in rows}
    by_person = {}
    for path, (_, face_id) in main_face.items():
        if face_id in cluster_of and not path.endswith("_twice.jpg"):
            by_person.setdefault(os.path.basename(path).rsplit("_", 1)[0], []).append(cluster_of[face_id])
    return by_person, cluster_of


def main_cluster(ids):
    clustered = [i for i in ids if i is not None]
    return max(set(clustered), key=clustered.count) if clustered else None


def test_unknown_faces_are_grouped_by_person_and_strangers_stay_apart(loop):
    """Every photo of each person in one cluster, a cluster per person and no other, strangers in none."""
    by_person, cluster_of = clusters_by_person(loop["store"])
    for person in PEOPLE:
        assert len(by_person[person]) == 6 and len(set(by_person[person])) == 1 and None not in by_person[person], \
            (person, by_person[person])
    assert len({by_person[person][0] for person in PEOPLE}) == len(PEOPLE)  # no cluster mixes people
    for person in STRANGERS:
        assert by_person[person] == [None], person
    assert set(cluster_of.values()) - {None} == {by_person[person][0] for person in PEOPLE}
    assert loop["first"]["clusters"] == len(PEOPLE)
    with open(os.path.join(loop["store"], "clusters.csv")) as f:
        header, *rows = f.read().splitlines()
    assert header == "source,face,box,cluster,size" and len(rows) == len(cluster_of)


def test_two_faces_of_one_photo_never_share_a_cluster(loop):
    """The photo with Colin Farrell twice: one face joins his cluster, the other stays out of every cluster."""
    s = ArchiveStore(loop["store"])
    faces = [f for f in s.read("faces", ["face_id", "path"]).to_pylist() if f["path"].endswith("_twice.jpg")]
    assert len(faces) == 2
    by_person, cluster_of = clusters_by_person(loop["store"])
    clusters = [cluster_of[f["face_id"]] for f in faces]
    assert None in clusters and set(clusters) - {None} == {by_person["Colin_Farrell"][0]}, clusters


@pytest.fixture
def own(loop, tmp_path):
    """This test's own copy of the tagged and clustered store and of the gallery index, both of which naming
    writes to; the photos stay where they are (the store knows them by path). The copied store's last run
    still names the module's index as its gallery: ``name_faces`` is given the copy's, or a run with it
    makes it the store's."""
    store, index = str(tmp_path / "store"), str(tmp_path / "index")
    shutil.copytree(loop["store"], store)
    shutil.copytree(loop["index"], index)
    return {"archive": loop["archive"], "images": loop["images"], "store": store, "index": index}


def tag_again(own, *more_inputs):
    """``tag`` of the copy: the module's photos (and ``more_inputs`` folders) against the copied index."""
    return tag.run(["--input", own["archive"], *[a for folder in more_inputs for a in ("--input", folder)],
                    "--index", own["index"], "--store", own["store"]])


def name_brodys_cluster(own):
    """Name the cluster holding Adrien Brody's photos, into the copied index; returns name_faces' summary."""
    by_person, _ = clusters_by_person(own["store"])
    return name_faces(own["store"], [Word("Adrien Brody", cluster=main_cluster(by_person["Adrien_Brody"]))],
                      own["index"])


def test_naming_a_cluster_tags_its_faces_and_new_photos_of_that_person(own, tmp_path):
    store = own["store"]
    # A run over the same photos with the copied index makes it the store's gallery, reading nothing again.
    again = tag_again(own)
    assert again["unchanged"] == again["photos_listed"] == 28 and again["faces_encoded"] == 0
    assert not again["rematched_all"]  # the same index content
    by_person, _ = clusters_by_person(store)
    brody = main_cluster(by_person["Adrien_Brody"])
    summary = name_faces(store, [Word("Adrien Brody", cluster=brody)])  # into the gallery of the store's last run
    assert summary["faces_named"] == 6 and summary["index"] == os.path.abspath(own["index"])
    with pytest.raises(FaceTagError, match="no cluster 999"):
        name_faces(store, [Word("Nobody", cluster=999)])

    # New photos arrive, in a folder of their own: two more of Brody, one more of Bill Frist.
    new = tmp_path / "new"
    new.mkdir()
    for person, names in (("Adrien_Brody", slice(6, 8)), ("Bill_Frist", slice(6, 7))):
        for name in sorted(os.listdir(os.path.join(own["images"], person)))[names]:
            shutil.copy(os.path.join(own["images"], person, name), new)
    summary = tag_again(own, str(new))
    assert summary["rematched_all"] and summary["new"] == 3 and summary["faces_encoded"] >= 3
    matches = ArchiveStore(store).read("matches", ["path", "identity"]).to_pylist()
    brody_photos = {m["path"] for m in matches if os.path.basename(m["path"]).startswith("Adrien_Brody")}
    named = {m["path"] for m in matches if m["identity"] == "Adrien Brody"}
    assert named == brody_photos and len(named) == 8

    # Clustering again: the people already clustered keep their cluster ids, the new photo joins its person's.
    before, _ = clusters_by_person(store)
    cluster.run(["--store", store])
    after, _ = clusters_by_person(store)
    assert "Adrien_Brody" not in after  # named: no longer unknown
    for person in ("Bill_Frist", "Catherine_Zeta-Jones"):
        assert set(after[person]) == {main_cluster(before[person])}, (person, after[person])
    assert len(after["Bill_Frist"]) == 7


def test_a_single_face_correction_survives_re_runs(own):
    store = own["store"]
    name_brodys_cluster(own)
    tag_again(own)  # the grown gallery: every face matched again, Brody's as him
    s = ArchiveStore(store)
    before = {m["face_id"]: m["identity"] for m in s.read("matches").to_pylist()}
    brody = next(m for m in s.read("matches").to_pylist() if m["identity"] == "Adrien Brody")
    # (Words are timed to the second, the latest winning: the run above puts this one seconds after the first.)
    name_faces(store, [Word("Adrien Brody", face=brody["face_id"], verdict=IS_NOT)], own["index"])
    first, second = tag_again(own), tag_again(own)
    assert first["rematched_all"] and not second["rematched_all"]
    identity = {m["face_id"]: m["identity"] for m in ArchiveStore(store).read("matches").to_pylist()}
    assert identity[brody["face_id"]] != "Adrien Brody"
    assert sum(i == "Adrien Brody" for i in identity.values()) == sum(i == "Adrien Brody" for i in before.values()) - 1


def test_re_enrolling_with_the_store_keeps_the_named_faces(own, samples, tmp_path):
    store = own["store"]
    assert name_brodys_cluster(own)["faces_named"] == 6
    tag_again(own)  # as a person would before correcting a face; and it puts the next word seconds later
    brody = next(m for m in ArchiveStore(store).read("matches").to_pylist() if m["identity"] == "Adrien Brody")
    name_faces(store, [Word("Adrien Brody", face=brody["face_id"], verdict=IS_NOT)], own["index"])
    index = str(tmp_path / "index-again")
    enroll.run(["--gallery", os.path.join(samples, "gallery"), "--out", index, "--store", store])
    identities = pq.read_table(os.path.join(index, "items.parquet")).column("identity").to_pylist()
    named, _ = named_faces(ArchiveStore(store))  # the cluster, less the face said not to be him
    assert sorted(set(identities)) == ["Adrien Brody", "biden", "obama"]
    assert sum(i == "Adrien Brody" for i in identities) == len(named) == 5
