"""Real sample photos for the demo and the tests, fetched from PyPI with pip and checked.

No photo is committed to the repository: ``face_recognition==1.3.0``'s source
distribution (MIT) carries test photos of Obama and Biden, and the
``scikit-image==0.25.2`` wheel carries ``astronaut.png`` (public domain, NASA).
``python -m facetag.io.samples`` downloads both with the ordinary pip client into
the cache folder, extracts the photos and verifies their SHA-256.

Layout under ``<cache>/samples``: ``gallery/<Name>/*.jpg`` (people to enrol)
and ``photos/`` (photos to tag: another Obama photo and the astronaut).
"""

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

from facetag.io.cachedir import default_cache_dir

# file in the archive -> (where it goes under samples/, sha256)
_FACE_RECOGNITION = (
    "face_recognition==1.3.0",
    ["--no-binary=:all:"],
    {
        "face_recognition-1.3.0/tests/test_images/obama.jpg": (
            "gallery/obama/obama.jpg",
            "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
        ),
        "face_recognition-1.3.0/tests/test_images/obama3.jpg": (
            "gallery/obama/obama3.jpg",
            "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
        ),
        "face_recognition-1.3.0/tests/test_images/biden.jpg": (
            "gallery/biden/biden.jpg",
            "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
        ),
        "face_recognition-1.3.0/tests/test_images/obama2.jpg": (
            "photos/obama2.jpg",
            "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
        ),
    },
)
_SCIKIT_IMAGE = (
    "scikit-image==0.25.2",
    # One fixed wheel, whatever this machine is, so the checksum always matches.
    ["--only-binary=:all:", "--platform", "manylinux2014_x86_64", "--python-version", "3.11"],
    {"skimage/data/astronaut.png": (
            "photos/astronaut.png",
            "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        )},
)
SOURCES = (_FACE_RECOGNITION, _SCIKIT_IMAGE)


def samples_dir(cache_dir=None):
    return os.path.join(cache_dir or default_cache_dir(), "samples")


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _present(files, root):
    return all(os.path.exists(os.path.join(root, dest)) and _sha256(os.path.join(root, dest)) == sha
               for dest, sha in files.values())


def fetch(cache_dir=None):
    """Download and extract the sample photos unless they are already there; returns the folder."""
    root = samples_dir(cache_dir)
    for requirement, pip_options, files in SOURCES:
        if _present(files, root):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, *pip_options, requirement]
            subprocess.run(cmd, check=True)
            (archive,) = [os.path.join(tmp, f) for f in os.listdir(tmp)]
            for member, data in _members(archive, files):
                dest, sha = files[member]
                if hashlib.sha256(data).hexdigest() != sha:
                    raise RuntimeError(f"{member} from {requirement} has an unexpected checksum; refusing to use it")
                os.makedirs(os.path.dirname(os.path.join(root, dest)), exist_ok=True)
                with open(os.path.join(root, dest), "wb") as f:
                    f.write(data)
    return root


def _members(archive, files):
    if archive.endswith(".tar.gz"):
        with tarfile.open(archive) as tar:
            for member in files:
                yield member, tar.extractfile(member).read()
    else:
        with zipfile.ZipFile(archive) as z:
            for member in files:
                yield member, z.read(member)


if __name__ == "__main__":
    print(fetch())
