"""Clustering on synthetic encodings, with no data set needed: people are random points on the unit sphere with
their photos scattered around them, strangers are lone points far from everyone. The library
(facetag.identity.clustering.FaceClustering, default settings but the threshold: facetag-128's, whose scale these
encodings have) and its Beam transform (facetag.pipeline.cluster)."""

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline  # not "Test...": pytest would collect it
from apache_beam.testing.util import assert_that, equal_to

from facetag.identity.clustering import FaceClustering, stable_cluster_ids
from facetag.pipeline.cluster import ClusterFaces
from facetag.vision.models import CLUSTER_THRESHOLDS

PEOPLE, PHOTOS_EACH, STRANGERS, DIM = 6, 8, 6, 128
STRANGER = "stranger"
THRESHOLD = CLUSTER_THRESHOLDS["facetag-128"]  # 0.975


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_faces(seed=0):
    """[{face_id, person, encoding}]: PHOTOS_EACH faces of each of PEOPLE people ("p0"...), then STRANGERS strangers.

    A face is its person's centre plus Gaussian noise of its own scale, 0.01 to 0.07 per dimension: photos
    differ in quality, a sharp frontal one lies near the centre, a blurred or turned one further out. A
    person's faces are then 0.3 to 0.85 apart (0.71 on average), under facetag-128's threshold 0.975;
    different people's, and strangers', about 1.41 (random directions in 128 dimensions). (Photos all of one
    quality would be a degenerate case: every pair of a person's faces equally far apart, so that no pair
    stands out from its neighbourhood, the rule that lets two lone faces pair up, average_linkage's
    ``lone_ratio``, never starts the cluster of a person with more than LONE_RANK photos.) The defaults
    group these people exactly for each of the seeds 0 to 19.
    """
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(PEOPLE, DIM)))
    scale = rng.uniform(0.01, 0.07, size=(PEOPLE, PHOTOS_EACH, 1))
    faces = unit(centres[:, None, :] + rng.normal(size=(PEOPLE, PHOTOS_EACH, DIM)) * scale)
    strangers = unit(rng.normal(size=(STRANGERS, DIM)))
    return ([{"face_id": f"p{p}-{i}", "person": f"p{p}", "encoding": faces[p, i].astype(np.float32)}
             for p in range(PEOPLE) for i in range(PHOTOS_EACH)]
            + [{"face_id": f"s{i}", "person": STRANGER, "encoding": strangers[i].astype(np.float32)}
               for i in range(STRANGERS)])


@pytest.fixture(scope="module")
def faces():
    return make_faces()


def encodings(faces):
    return np.array([f["encoding"] for f in faces], np.float32)


def assert_people_grouped(faces, labels):
    """Each person's faces all in one cluster, a different one for each person, every stranger in none.
    Returns {person: cluster}."""
    people = np.array([f["person"] for f in faces])
    cluster_of = {}
    for person in sorted(set(people) - {STRANGER}):
        mine = labels[people == person]
        assert (mine != -1).all() and len(set(mine)) == 1, f"{person} not grouped whole: {mine}"
        cluster_of[person] = mine[0]
    assert len(set(cluster_of.values())) == len(cluster_of), cluster_of
    assert (labels[people == STRANGER] == -1).all(), labels[people == STRANGER]
    return cluster_of


def test_each_person_is_one_cluster_and_strangers_stay_alone(faces):
    clustering = FaceClustering(threshold=THRESHOLD).fit(encodings(faces))
    labels = clustering.labels_
    assert len(assert_people_grouped(faces, labels)) == PEOPLE
    assert clustering.n_clusters_ == PEOPLE and set(labels) == set(range(PEOPLE)) | {-1}
    assert (clustering.sizes_ == np.where(labels >= 0, PHOTOS_EACH, 0)).all()


def test_strangers_alone_are_all_left_unclustered(faces):
    strangers = [f for f in faces if f["person"] == STRANGER]
    clustering = FaceClustering(threshold=THRESHOLD).fit(encodings(strangers))
    assert (clustering.labels_ == -1).all() and clustering.n_clusters_ == 0 and (clustering.sizes_ == 0).all()


def test_two_faces_of_one_photo_never_share_a_cluster(faces):
    """p0's first two faces are in one photo: one of them leaves p0's cluster. p1, p2 and p3 are together
    in a group photo: faces of one photo but of different people, so each stays in its person's cluster."""
    photos = [f["face_id"] for f in faces]
    photos[1] = photos[0]
    for person in (1, 2, 3):
        photos[person * PHOTOS_EACH + 2] = "group photo"
    labels = FaceClustering(threshold=THRESHOLD).fit_predict(encodings(faces), photos)
    assert sorted([labels[0] == -1, labels[1] == -1]) == [False, True], labels[:2]
    p0 = labels[:PHOTOS_EACH]
    assert (p0 == -1).sum() == 1 and len(set(p0) - {-1}) == 1, p0  # the other seven still together
    assert len(assert_people_grouped(faces[PHOTOS_EACH:], labels[PHOTOS_EACH:])) == PEOPLE - 1
    assert p0.max() not in labels[PHOTOS_EACH:]
    for label in set(labels) - {-1}:
        members = [photos[i] for i in np.flatnonzero(labels == label)]
        assert len(set(members)) == len(members), members


def test_cluster_ids_survive_a_re_run_with_new_faces(faces):
    """Run 1: five photos of p0..p3 and three strangers. Run 2: every photo, p4 and p5 new. The four keep
    their run-1 ids (offset by 100, as a store's ids are after many runs); the new people get fresh ids,
    past every earlier one."""
    first = [f for f in faces if f["person"] in ("p0", "p1", "p2", "p3") and int(f["face_id"].split("-")[1]) < 5]
    first += [f for f in faces if f["person"] == STRANGER][:3]
    labels = FaceClustering(threshold=THRESHOLD).fit_predict(encodings(first))
    previous = {f["face_id"]: int(label) + 100 for f, label in zip(first, labels) if label != -1}
    assert len(assert_people_grouped(first, labels)) == 4 and len(previous) == 4 * 5

    labels = FaceClustering(threshold=THRESHOLD).fit_predict(encodings(faces))
    assert_people_grouped(faces, labels)
    new = {f["face_id"]: int(label) for f, label in zip(faces, labels) if label != -1}
    ids = stable_cluster_ids(new, previous)
    id_of = {f["person"]: ids[new[f["face_id"]]] for f in faces if f["face_id"] in new}
    for person in ("p0", "p1", "p2", "p3"):
        assert id_of[person] == previous[f"{person}-0"], person
    fresh = {id_of["p4"], id_of["p5"]}
    assert len(fresh) == 2 and min(fresh) > max(previous.values())


#: The previous run's ids for the test below: the first five photos of p0..p3, and a face since gone that
#: held the highest id so far (a fresh id must go past it: a name once given to an id stays with its faces).
PREVIOUS = {**{f"p{p}-{i}": 100 + 3 * p for p in range(4) for i in range(5)}, "gone-0": 120}


def test_the_cluster_transform_keeps_ids_across_a_re_run(faces, tmp_path):
    """ClusterFaces with the previous run's ids, in Beam's in-process runner: p0..p3 keep theirs, p4 and p5 get
    two fresh ones past 120, strangers none; cluster sizes as grouped."""
    person_of = {f["face_id"]: f["person"] for f in faces}
    rows = [{"face_id": f["face_id"], "path": f"/archive/{f['face_id']}.jpg", "encoding": f["encoding"].tolist()}
            for f in faces]

    def person_and_id(record):  # ids past 120 are fresh ones: which new person gets which is the transform's choice
        cluster_id = record["cluster_id"]
        return person_of[record["face_id"]], "fresh" if cluster_id is not None and cluster_id > 120 else cluster_id

    with BeamTestPipeline(runner=FnApiRunner()) as p:
        previous = p | "Previous run" >> beam.Create([{"face_id": k, "cluster_id": v} for k, v in PREVIOUS.items()])
        records = (p | "Faces" >> beam.Create(rows)
                   | "Cluster" >> ClusterFaces(work_dir=str(tmp_path), threshold=THRESHOLD, previous=previous))
        ids = records | "Id by person" >> beam.Map(person_and_id) | "Distinct ids" >> beam.Distinct()
        assert_that(ids, equal_to([("p0", 100), ("p1", 103), ("p2", 106), ("p3", 109), ("p4", "fresh"),
                                   ("p5", "fresh"), (STRANGER, None)]), label="Check ids")
        fresh = (records
                 | "Fresh ids" >> beam.Map(lambda r: r["cluster_id"]) | beam.Filter(lambda i: i is not None and i > 120)
                 | "Distinct fresh" >> beam.Distinct() | beam.combiners.Count.Globally())
        assert_that(fresh, equal_to([2]), label="Check p4 and p5 apart")
        sizes = (records | "Size by person" >> beam.Map(lambda r: (person_of[r["face_id"]], r["cluster_size"]))
                 | "Distinct sizes" >> beam.Distinct())
        assert_that(sizes, equal_to([(f"p{p}", PHOTOS_EACH) for p in range(PEOPLE)] + [(STRANGER, None)]),
                    label="Check sizes")
