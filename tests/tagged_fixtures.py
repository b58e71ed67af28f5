"""A small tagged archive for the review and XMP tests: the Beam tests' photo folder, tagged for real."""

import os

import pyarrow as pa

from facetag.errors import ImageError
from facetag.images import load_image
from facetag.pipeline.records import face_id
from facetag.tagged import results_from_tables
from tests.beam_fixtures import make_archive


def tag_archive(samples, folder):
    """Detect, encode and identify every photo of ``make_archive`` against the sample gallery.

    Returns ``(Results, photos table, matches table)``, the tables shaped like the archive store's.
    """
    from facetag.analyzer import FaceAnalyzer
    from facetag.gallery import Gallery

    make_archive(samples, folder)
    analyzer = FaceAnalyzer()
    gallery = Gallery.from_folder(os.path.join(samples, "gallery"), analyzer)
    model_id = analyzer.face_model.model_id
    photos, matches = [], []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        row = {"path": path, "outcome": "faces", "reason": None, "faces": 0, "width": None, "height": None}
        try:
            image = load_image(path)
        except ImageError as e:
            photos.append({**row, "outcome": "failed", "reason": e.reason})
            continue
        faces = analyzer.analyze(image)
        row.update(width=image.shape[1], height=image.shape[0], faces=len(faces))
        if not faces:
            row.update(outcome="no_face", reason="no face found")
        photos.append(row)
        found = gallery.identify_encodings([f.encoding for f in faces], model_id) if faces else []
        for index, (face, match) in enumerate(zip(faces, found)):
            matches.append({"face_id": face_id(path, index), "path": path, "face_index": index,
                            "box": [int(v) for v in face.box], "identity": match.identity,
                            "distance": float(match.distance)})
    photos_t = pa.Table.from_pylist(photos, pa.schema([("path", pa.string()), ("outcome", pa.string()),
                                                      ("reason", pa.string()), ("faces", pa.int32()),
                                                      ("width", pa.int32()), ("height", pa.int32())]))
    matches_t = pa.Table.from_pylist(matches, pa.schema([("face_id", pa.string()), ("path", pa.string()),
                                                        ("face_index", pa.int32()), ("box", pa.list_(pa.int32())),
                                                        ("identity", pa.string()), ("distance", pa.float32())]))
    return results_from_tables(photos_t, matches_t, model_id), photos_t, matches_t
