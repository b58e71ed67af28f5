"""A small tagged archive for the review and XMP tests: the Beam tests' photo folder, tagged by 'facetag tag'."""

import os

from facetag.archive.results import MATCH_COLUMNS, PHOTO_COLUMNS, open_store, read_results
from tests.beam_fixtures import make_archive


def tag_archive(samples, root):
    """Enrol the sample gallery, tag ``make_archive``'s photos into an archive store under ``root``.

    Returns ``(photo folder, store path, Results, photos table, matches table)``.
    """
    from facetag.cli import main

    folder, index, store_path = (os.path.join(root, name) for name in ("archive", "index", "store"))
    make_archive(samples, folder)
    for argv in (["enroll", os.path.join(samples, "gallery"), "--out", index],
                 ["tag", folder, "--index", index, "--out", store_path, "--json"]):
        if main(argv) != 0:
            raise RuntimeError(f"facetag {' '.join(argv)} failed")
    store = open_store(store_path)
    return (folder, store_path, read_results(store), store.read("photos", columns=PHOTO_COLUMNS),
            store.read("matches", columns=MATCH_COLUMNS))


