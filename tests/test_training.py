"""Training views (colour, grey copy, tight crop) and the head's initialisation, on real photos."""

import os

import numpy as np
import pytest

from facetag.io.datasets import is_grey
from facetag.learn.training import VIEWS, HeadTrainer, training_views


@pytest.fixture(scope="module")
def photos():
    from tests.conftest import shared

    grey, colour = shared("lfw_dev"), shared("lfw_dev_colour")
    return [os.path.join(grey, "images", "Tony_Blair", "Tony_Blair_0001.jpg"),
            os.path.join(colour, "images", "Tony_Blair", "Tony_Blair_0002.jpg"),
            os.path.join(colour, "images", "Colin_Powell", "Colin_Powell_0001.jpg")]


def test_views_of_colour_and_grey_photos(photos, tmp_path):
    assert [is_grey(p) for p in photos] == [True, False, False]
    views, detected, names, grey = training_views(photos, [0.25], cache_dir=str(tmp_path))
    assert views.shape == (3, len(VIEWS), 512) and detected.all() and grey == 1
    assert names == [f"margin 0.25 {name}" for name, _ in VIEWS]
    colour, grey_copy, tight = (names.index(f"margin 0.25 {v}") for v in ("colour", "grey copy", "tight 112"))
    assert np.array_equal(views[0, colour], views[0, grey_copy])  # a grey photo is its own grey copy
    for i in (1, 2):
        similarity = views[i, colour] @ views[i, grey_copy]
        assert 0.6 < similarity < 0.9999, similarity  # the same face, not the same encoding
        assert views[i, colour] @ views[i, tight] > 0.5
    assert views[1, colour] @ views[2, colour] < views[1, colour] @ views[1, grey_copy]


def test_whitened_initialisation_gives_unit_variance_components():
    rng = np.random.default_rng(0)
    views = (rng.normal(size=(200, 2, 16)) * np.linspace(5, 0.5, 16)).astype(np.float32)
    labels = np.repeat(np.arange(100), 2)
    head = HeadTrainer(dim=4, init="whiten", steps=0, identities_per_batch=8).fit(views, labels).head_
    projected = views.reshape(-1, 16) @ head["w_out"] + head["b_out"]
    assert np.allclose(projected.mean(axis=0), 0, atol=1e-3)
    spread = projected.std(axis=0)
    assert np.allclose(spread / spread[0], 1, atol=1e-3)


def test_lda_initialisation_ignores_the_loudest_within_person_direction():
    # Dimension 0 varies most but only between one person's views (as colour against grey copy
    # does); dimension 1 tells the people apart. PCA keeps the first, LDA the second.
    rng = np.random.default_rng(0)
    people = rng.normal(size=(50, 1))
    views = np.zeros((50, 2, 8), np.float32)
    views[:, :, 0] = [[-5, 5]] + rng.normal(scale=0.1, size=(50, 2))
    views[:, :, 1] = people + rng.normal(scale=0.1, size=(50, 2))
    views[:, :, 2:] = rng.normal(scale=0.1, size=(50, 2, 6))
    labels = np.arange(50)
    for init, kept in (("pca", 0), ("lda", 1)):
        head = HeadTrainer(dim=1, init=init, shrinkage=0.1, steps=0, identities_per_batch=8).fit(views, labels).head_
        assert np.argmax(np.abs(head["w_out"][:, 0])) == kept, init


def test_training_record_names_each_photos_data_set(tmp_path):
    from facetag.learn.training import _source

    for layout in ("flat/labels.csv", "flat/subject01.happy", "folders/s1/1.pgm", "lfw/images/Ada/Ada_0001.jpg"):
        (tmp_path / layout).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / layout).touch()
    assert _source(str(tmp_path / "flat/subject01.happy")) == "flat"
    assert _source(str(tmp_path / "folders/s1/1.pgm")) == "folders"
    assert _source(str(tmp_path / "lfw/images/Ada/Ada_0001.jpg")) == "lfw"
