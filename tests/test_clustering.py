"""Clustering unknown faces into people: the library (facetag.identity.clustering) and its Beam transform, on lfw_dev people."""

import glob
import json
import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from facetag.api import main_face_of
from facetag.identity.clustering import FaceClustering, centre_distances, match_cluster_ids, stable_cluster_ids
from facetag.pipeline.cluster import ClusterFaces

# The first five people (alphabetically) of lfw_dev/pairs.txt (the facetag-128 head never saw them) with 6 to 8
# photos, and one-photo strangers. Of the first 16 such people, 14 are grouped whole by the defaults; Celine_Dion
# loses one photo and Bob_Hope (photos decades apart) splits in two.
PEOPLE = ("Al_Sharpton", "Albert_Costa", "Amelia_Vega", "Ana_Guevara", "Ana_Palacio")
PHOTOS_EACH = 6
STRANGERS = 8


@pytest.fixture(scope="module")
def faces(lfw_dev):
    """[{face_id, path, person, encoding}]: PHOTOS_EACH photos of each of PEOPLE, then STRANGERS one-photo people."""
    images = os.path.join(lfw_dev, "images")
    with open(os.path.join(lfw_dev, "pairs.txt")) as f:
        in_pairs = sorted({part for line in list(f)[1:] for part in line.split() if not part.isdigit()})
    strangers = [p for p in in_pairs if len(os.listdir(os.path.join(images, p))) == 1][:STRANGERS]
    paths = [p for person in PEOPLE for p in sorted(glob.glob(os.path.join(images, person, "*.jpg")))[:PHOTOS_EACH]]
    paths += [os.path.join(images, p, f"{p}_0001.jpg") for p in strangers]
    return [{"face_id": os.path.basename(p), "path": p, "person": p.split(os.sep)[-2],
             "encoding": main_face_of(p).encoding} for p in paths]


def encodings(faces):
    return np.array([f["encoding"] for f in faces], np.float32)


def test_people_grouped_and_strangers_apart(faces):
    """Each person's photos all in one cluster, a cluster per person, every stranger unclustered."""
    clustering = FaceClustering().fit(encodings(faces))
    labels, people = clustering.labels_, np.array([f["person"] for f in faces])
    cluster_of = {}
    for person in PEOPLE:
        mine = labels[people == person]
        assert (mine != -1).all() and len(set(mine)) == 1, f"{person} not grouped whole: {mine}"
        cluster_of[person] = mine[0]
    assert len(set(cluster_of.values())) == len(PEOPLE), cluster_of  # no two people in one cluster
    assert (labels[~np.isin(people, PEOPLE)] == -1).all()  # strangers stay unclustered
    assert clustering.n_clusters_ == len(PEOPLE) and set(labels) == set(range(len(PEOPLE))) | {-1}
    assert (clustering.sizes_ == np.where(labels >= 0, PHOTOS_EACH, 0)).all()
    assert np.allclose(clustering.distances_[labels >= 0],
                       np.linalg.norm(encodings(faces)[labels >= 0] - clustering.cluster_centers_[labels[labels >= 0]],
                                      axis=1), atol=1e-5)
    assert np.isnan(clustering.distances_[labels == -1]).all()


def test_two_faces_of_one_photo_never_share_a_cluster(faces):
    """Two faces of one person in one photo: one of them leaves the cluster, the person's other faces stay in it."""
    photos = [f["face_id"] for f in faces]
    pairs = ((0, 1), (PHOTOS_EACH + 2, PHOTOS_EACH + 3))  # of the first and of the second person
    for first, second in pairs:
        photos[second] = photos[first]
    labels = FaceClustering().fit_predict(encodings(faces), photos)
    for person, (first, second) in enumerate(pairs):
        mine = labels[person * PHOTOS_EACH:(person + 1) * PHOTOS_EACH]
        assert sorted([labels[first] == -1, labels[second] == -1]) == [False, True], mine
        assert (mine == -1).sum() == 1 and len(set(mine) - {-1}) == 1, mine  # the rest of the person still together
    assert len(set(labels) - {-1}) == len(PEOPLE)
    assert (labels == -1).sum() == STRANGERS + len(pairs)


def run_pipeline(faces, out_dir, previous=None):
    """ClusterFaces with Beam's in-process runner; its records by face id."""
    rows = [{k: (v.tolist() if k == "encoding" else v) for k, v in f.items() if k != "person"} for f in faces]
    with beam.Pipeline(runner=FnApiRunner()) as p:
        old = p | "Previous" >> beam.Create(previous or []) if previous is not None else None
        (p | "Faces" >> beam.Create(rows) | "Cluster" >> ClusterFaces(work_dir=str(out_dir), previous=old)
         | "Json" >> beam.Map(json.dumps) | "Write" >> beam.io.WriteToText(str(out_dir / "clusters")))
    records = [json.loads(line) for path in glob.glob(str(out_dir / "clusters*")) for line in open(path)]
    return {r["face_id"]: r for r in records}


def test_pipeline_clusters_like_the_library(faces, tmp_path):
    records = run_pipeline(faces, tmp_path)
    assert sorted(records) == sorted(f["face_id"] for f in faces)
    assert len({r["cluster_id"] for r in records.values()} - {None}) == len(PEOPLE)
    clustering = FaceClustering().fit(encodings(faces))
    for face, label, size, distance in zip(faces, clustering.labels_, clustering.sizes_, clustering.distances_):
        record = records[face["face_id"]]
        if label == -1:
            assert record["cluster_id"] is None and record["cluster_size"] is None and record["distance"] is None
        else:
            assert record["cluster_id"] == label and record["cluster_size"] == size
            assert record["distance"] == pytest.approx(float(distance), abs=1e-5)


def test_stable_ids_across_a_rerun_with_new_faces(faces, tmp_path):
    """Run 1: 4 photos of 3 people; run 2 adds 2 photos of each and 2 new people: the 3 keep their ids."""
    first = [f for i, f in enumerate(faces[:3 * PHOTOS_EACH]) if i % PHOTOS_EACH < 4] + faces[-STRANGERS:]
    run1 = run_pipeline(first, tmp_path / "run1")
    previous = [{"face_id": k, "cluster_id": r["cluster_id"]} for k, r in run1.items() if r["cluster_id"] is not None]
    assert len(previous) == 3 * 4  # every face of the 3 people clustered in run 1, no stranger
    # Ids of the previous run that are not 0..2, as a store's would be after many runs.
    previous = [dict(r, cluster_id=r["cluster_id"] + 40) for r in previous]
    run2 = run_pipeline(faces, tmp_path / "run2", previous)
    person_of = {f["face_id"]: f["person"] for f in faces}
    old_id = {person_of[r["face_id"]]: r["cluster_id"] for r in previous}
    assert len(old_id) == 3
    new_ids = {}
    for face_id, record in run2.items():
        if person_of[face_id] in PEOPLE:
            new_ids.setdefault(person_of[face_id], set()).add(record["cluster_id"])
        else:
            assert record["cluster_id"] is None, person_of[face_id]  # strangers stay unclustered
    assert set(new_ids) == set(PEOPLE)
    for person, ids in new_ids.items():
        assert len(ids) == 1 and None not in ids, (person, ids)  # every face of the person, in one cluster
        if person in old_id:
            assert ids == {old_id[person]}, person
        else:
            assert min(ids) > max(old_id.values())  # a new person gets a fresh id, never an old one
    assert len(set.union(*new_ids.values())) == len(PEOPLE)  # a cluster each


def test_stable_id_rules():
    previous = {"a": 7, "b": 7, "c": 7, "d": 9, "e": 9}
    # 7 split 2:1, the larger part keeps it; 9 merged into the new cluster 0 with a new face: keeps 9 too.
    new = {"a": 1, "b": 1, "c": 2, "d": 0, "e": 0, "f": 0}
    assert stable_cluster_ids(new, previous) == {0: 9, 1: 7, 2: 10}
    # A cluster that shares one face of ten keeps nothing of it.
    previous = {f"p{i}": 3 for i in range(10)}
    assert stable_cluster_ids({"p0": 0, "x": 0, **{f"p{i}": 1 for i in range(1, 10)}}, previous) == {1: 3, 0: 4}
    assert match_cluster_ids({5}, {}, {}, next_id=100) == {5: 100}


def test_centres_are_unit_length_means():
    x = np.array([[1, 0], [0, 1], [1, 0]], np.float32)
    centres, distances = centre_distances(x, np.array([0, 0, -1]))
    assert np.allclose(centres, [[2 ** -0.5, 2 ** -0.5]])
    assert np.isnan(distances[2]) and distances[0] == pytest.approx(np.linalg.norm([1 - 2 ** -0.5, -(2 ** -0.5)]))
