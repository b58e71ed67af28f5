"""A small tagged archive for the review and XMP tests: the Beam tests' photo folder, tagged by 'facetag tag'."""

import os
import shutil

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


#: lfw_dev people nobody enrolled: the archive's unknown people (their first 6 photos) and strangers (one photo).
UNKNOWN_PEOPLE = ("Adrien_Brody", "Bill_Frist", "Catherine_Zeta-Jones", "Colin_Farrell")
STRANGERS = ("AJ_Cook", "Aaron_Patterson", "Abba_Eban")


def unknown_people_archive(images, folder):
    """Copy the photos of UNKNOWN_PEOPLE and STRANGERS from lfw_dev's ``images`` into ``folder`` (made)."""
    os.makedirs(folder)
    for person in UNKNOWN_PEOPLE:
        for name in sorted(os.listdir(os.path.join(images, person)))[:6]:
            shutil.copy(os.path.join(images, person, name), folder)
    for person in STRANGERS:
        shutil.copy(os.path.join(images, person, sorted(os.listdir(os.path.join(images, person)))[0]), folder)
