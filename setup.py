"""facetag: face recognition for photo archives. Also what Beam ships to remote workers."""

from setuptools import setup

setup(
    name="facetag",
    version="0.1.0",
    description="Tag the faces in photo archives: FaceNet encodings, verification, identification, Beam jobs",
    license="MIT",
    python_requires=">=3.10",
    package_dir={"facetag": "lib/facetag", "beam_jobs": "beam_jobs"},
    packages=["facetag", "beam_jobs"],
    package_data={"facetag": ["weights/*"]},
    install_requires=[
        "apache-beam==2.77.0",
        "tensorflow-cpu==2.21.0",
        "protobuf==6.33.6",
        "numpy==2.4.6",
        "pyarrow==25.0.1",
        "annoy==1.17.3",
        "pillow==12.3.0",
        "opencv-python-headless==5.0.0.93",
        "mtcnn==1.0.0",
        "pyyaml",
        "matplotlib",
    ],
    extras_require={"test": ["pytest==9.0.3"]},
    entry_points={"console_scripts": ["facetag=facetag.cli:main"]},
)
