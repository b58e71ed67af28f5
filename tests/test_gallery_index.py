"""The Annoy gallery index against exact search, and its metadata."""

import json
import os

import numpy as np
import pytest

from facetag.identity.gallery_index import build_index, default_settings, open_index
from facetag.identity.matching import UNKNOWN, pairwise_distances


def normalised(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered_encodings(people=1500, per_person=3, dim=128, spread=0.35, seed=0):
    """Identities with nearby samples, on a spectrum that decays like real face encodings'."""
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(np.arange(1, dim + 1))  # most variance in few directions
    centres = rng.normal(size=(people, dim)) * scale
    samples = centres[:, None, :] + spread * rng.normal(size=(people, per_person, dim)) * scale
    return normalised(samples.reshape(-1, dim)), np.repeat(np.arange(people), per_person), centres, rng, scale


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    gallery, people, centres, rng, scale = clustered_encodings()
    out = str(tmp_path_factory.mktemp("index"))
    meta = build_index(gallery, face_ids=[f"f{i}" for i in range(len(gallery))], identities=[f"p{p}" for p in people],
                       sources=[f"photo{i}.jpg" for i in range(len(gallery))], model_id="test-model:1:2:3", out_dir=out)
    queries = normalised(centres[:500] + 0.35 * rng.normal(size=(500, centres.shape[1])) * scale)
    return out, meta, gallery, people, queries


def test_annoy_agrees_with_exact_search_at_the_default_settings(index):
    out, meta, gallery, people, queries = index
    exact = pairwise_distances(queries, gallery)
    opened = open_index(out)
    agree = 0
    for q, row in zip(queries, exact):
        match = opened.identify(q, threshold=2.0)
        agree += match.identity == f"p{people[row.argmin()]}" and abs(match.distance - row.min()) < 1e-4
    assert (meta["trees"], meta["search_k"]) == default_settings(len(gallery))
    assert agree / len(queries) >= 0.99, f"Annoy's nearest face agrees with exact search for {agree} of {len(queries)}"


def test_threshold_and_candidates(index):
    out, _, gallery, people, _ = index
    opened = open_index(out)
    match = opened.identify(gallery[0], threshold=0.5, k=3)
    assert match.identity == f"p{people[0]}" and match.distance == pytest.approx(0.0, abs=1e-5)
    assert len(match.candidates) == 3 and len({c[0] for c in match.candidates}) == 3
    assert opened.identify(-gallery[0], threshold=0.5).identity == UNKNOWN


def test_metadata_describes_the_index(index):
    out, meta, gallery, _, _ = index
    with open(os.path.join(out, "index.json")) as f:
        on_disk = json.load(f)
    assert on_disk == meta
    assert meta["items"] == len(gallery) and meta["encoding_size"] == 128 and meta["metric"] == "euclidean"
    assert meta["identities"] == 1500 and meta["model_id"] == "test-model:1:2:3"
