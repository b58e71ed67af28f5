"""Synthetic archive stores for the benchmarks: made-up people as random 128-number encodings, written by the
store's own commit (facetag.archive.store), with a gallery index of the people "enrolled".

    make_store(root, photos=50_000, faces_per_photo=(2,)) -> {"store", "index", "faces", "people", "clusters", ...}

Each person is a random unit vector; their faces are that vector plus noise (distances of about 0.5-0.8
within a person, about 1.4 between two), normalised as the encoders' are. Person sizes follow a Pareto
law (a few people in hundreds of photos, most in a few), as in news and family archives. A share of the
people are known (in the gallery index, 3 encodings each); their faces are matched to them, the others'
are unknown and grouped into one cluster per person (people with one face in none), as 'facetag cluster'
would. Photos hold faces in the repeating pattern ``faces_per_photo`` (a photo of none is stored as
"no_face"); the photo files themselves do not exist unless ``photo_dir`` is given, where each photo is
written as a tiny JPEG (so that listing and comparing them is real; they hold no face).
"""

import os
import secrets
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from facetag.archive.store import ArchiveStore
from facetag.archive.tables import CLUSTERS_SCHEMA, MATCHES_SCHEMA, PHOTOS_SCHEMA, faces_schema
from facetag.identity.gallery_index import build_index, index_id, read_index_metadata

MODEL_ID = "facetag-128:synthetic"
DIM = 128


def people_sizes(faces, rng):
    """Faces per person, summing to ``faces``: Pareto-distributed, 1 to 600."""
    sizes = []
    while sum(sizes) < faces:
        sizes.append(int(min(600, rng.pareto(1.1) + 1)))
    sizes[-1] -= sum(sizes) - faces
    return [s for s in sizes if s > 0]


def make_encodings(sizes, rng, noise=0.055):
    """``(encodings (N, DIM) float32, person of each row)`` for people of ``sizes``."""
    person = np.repeat(np.arange(len(sizes)), sizes)
    centres = rng.standard_normal((len(sizes), DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    encodings = centres[person] + noise * rng.standard_normal((len(person), DIM)).astype(np.float32)
    encodings /= np.linalg.norm(encodings, axis=1, keepdims=True)
    return encodings, person, centres


def make_store(root, photos, *, faces_per_photo=(2,), known_share=0.3, seed=0, photo_dir=None,
               archive_root="/archive", model_id=MODEL_ID):
    """A store of ``photos`` photos under ``root`` (``root/store``, ``root/index``); see the module docstring."""
    rng = np.random.default_rng(seed)
    counts = np.resize(np.asarray(faces_per_photo, np.int64), photos)
    sizes = people_sizes(int(counts.sum()), rng)
    encodings, person, centres = make_encodings(sizes, rng)
    order = rng.permutation(len(person))  # photos mix people
    encodings, person = encodings[order], person[order]
    known = rng.random(len(sizes)) < known_share
    names = [f"Person {i:06d}" for i in range(len(sizes))]

    index_dir = os.path.join(root, "index")
    gallery_people = np.flatnonzero(known)
    gallery = (centres[np.repeat(gallery_people, 3)]
               + 0.055 * rng.standard_normal((3 * len(gallery_people), DIM)).astype(np.float32))
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    build_index(gallery, face_ids=[f"g{i:07d}" for i in range(len(gallery))],
                identities=[names[p] for p in np.repeat(gallery_people, 3)],
                sources=[f"/gallery/{i}.jpg" for i in range(len(gallery))], model_id=model_id, out_dir=index_dir)
    idx_id = index_id(read_index_metadata(index_dir))

    photo_of = np.repeat(np.arange(photos), counts)
    face_index = np.arange(len(person)) - np.repeat(np.cumsum(counts) - counts, counts)
    photo_paths = [_photo_path(archive_root, p) for p in range(photos)]
    if photo_dir:
        sizes_on_disk, mtimes = _write_photos(photo_dir, photo_paths, archive_root)
        photo_paths = [os.path.join(photo_dir, os.path.relpath(p, archive_root)) for p in photo_paths]
    else:
        sizes_on_disk, mtimes = [20_000] * len(photo_paths), [1.7e9] * len(photo_paths)
    face_ids = [f"{i:016x}" for i in range(len(person))]
    boxes = [[100 + 300 * int(i), 80, 260 + 300 * int(i), 260] for i in face_index]
    shas = [f"{p:064x}" for p in range(len(photo_paths))]

    photos = pa.table({
        "path": photo_paths, "size": pa.array(sizes_on_disk, pa.int64()), "mtime": pa.array(mtimes, pa.float64()),
        "sha256": shas, "outcome": np.where(counts > 0, "faces", "no_face").tolist(),
        "reason": [None if c else "no face found" for c in counts], "faces": pa.array(counts.astype(np.int32)), "width": pa.array([640] * len(photo_paths), pa.int32()),
        "height": pa.array([480] * len(photo_paths), pa.int32()), "run_id": ["synthetic"] * len(photo_paths)},
        schema=PHOTOS_SCHEMA)
    flat = pa.array(encodings.reshape(-1))
    face_table = pa.table({
        "face_id": face_ids, "path": [photo_paths[p] for p in photo_of], "photo_sha256": [shas[p] for p in photo_of],
        "face_index": pa.array(face_index.astype(np.int32)), "box": pa.array(boxes, pa.list_(pa.int32())),
        "landmarks": pa.array([[0.0] * 10] * len(person), pa.list_(pa.float32())),
        "score": pa.array(np.full(len(person), 0.99, np.float32)),
        "quality": pa.array(np.full(len(person), 0.9, np.float32)),
        "encoding": pa.ListArray.from_arrays(pa.array(np.arange(0, len(flat) + 1, DIM, dtype=np.int32)), flat)},
        schema=faces_schema(model_id))
    distance = np.where(known[person], rng.uniform(0.3, 0.9, len(person)), rng.uniform(1.0, 1.4, len(person)))
    nearest = [names[gallery_people[p % len(gallery_people)]] if len(gallery_people) else "nobody" for p in person]
    identity = [names[p] if known[p] else "unknown" for p in person]
    matches = pa.table({
        "face_id": face_ids, "path": face_table.column("path"), "face_index": face_table.column("face_index"),
        "box": face_table.column("box"), "identity": identity, "distance": pa.array(distance.astype(np.float32)),
        "candidates": [[{"identity": i if i != "unknown" else n, "distance": float(d)}]
                       for i, n, d in zip(identity, nearest, distance)],
        "index_id": [idx_id] * len(person)}, schema=MATCHES_SCHEMA)
    unknown_sizes = {p: s for p, s in enumerate(sizes) if not known[p] and s > 1}
    cluster_of_person = {p: c for c, p in enumerate(sorted(unknown_sizes, key=lambda p: (-unknown_sizes[p], p)))}
    cluster = [cluster_of_person.get(p) for p in person]
    unknown_rows = [i for i, p in enumerate(person) if not known[p]]
    clusters = pa.table({
        "face_id": [face_ids[i] for i in unknown_rows],
        "cluster_id": pa.array([cluster[i] for i in unknown_rows], pa.int64()),
        "cluster_size": pa.array([unknown_sizes.get(person[i]) for i in unknown_rows], pa.int32()),
        "distance": pa.array([0.3 if cluster[i] is not None else None for i in unknown_rows], pa.float32())},
        schema=CLUSTERS_SCHEMA)

    store_path = os.path.join(root, "store")
    store = ArchiveStore(store_path)
    run_id = "synthetic-" + secrets.token_hex(3)
    with store.lock(), tempfile.TemporaryDirectory() as tmp:
        staged = {}
        for name, table in (("photos", photos), ("faces", face_table), ("matches", matches), ("clusters", clusters)):
            staged[name] = [os.path.join(tmp, f"{name}.parquet")]
            pq.write_table(table, staged[name][0])
        store.commit(run_id=run_id, model_id=model_id, index_id=idx_id, staged=staged, rematched_all=False,
                     index_dir=index_dir)
        store.replace_table(run_id, "clusters", staged["clusters"], fields={"cluster_min_quality": 0.0})
    return {"store": store_path, "index": index_dir, "photos": len(photo_paths), "faces": len(person),
            "people": len(sizes), "known": int(known.sum()), "clusters": len(cluster_of_person),
            "cluster_sizes": sorted(unknown_sizes.values(), reverse=True)}


def _photo_path(root, p):
    return f"{root}/{p // 1000:04d}/IMG_{p:08d}.jpg"


def _write_photos(photo_dir, paths, archive_root):
    """Tiny distinct JPEGs at ``photo_dir`` + each path below ``archive_root``; returns their sizes and mtimes."""
    from PIL import Image

    sizes, mtimes = [], []
    for p, path in enumerate(paths):
        target = os.path.join(photo_dir, os.path.relpath(path, archive_root))
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            Image.new("L", (8, 8), p % 251).save(target, "JPEG", comment=str(p).encode())
        st = os.stat(target)
        sizes.append(st.st_size)
        mtimes.append(st.st_mtime)
    return sizes, mtimes
