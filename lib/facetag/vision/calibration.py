"""The face chips dlib's ResNet is calibrated on for full-integer int8 (facetag.vision.conversion).

Full-integer quantisation needs the range of every activation, measured on inputs like the real ones:
aligned face chips. They are made from photos every facetag machine has, so that every machine converts
the same network: the sample photos (facetag.io.samples: Obama and Biden from face_recognition's tests, MIT;
NASA's astronaut, public domain; fetched by ``make setup``) and matplotlib's Grace Hopper (a dependency's
sample data, public domain), each checked by its SHA-256. Each face is aligned by the five landmarks MTCNN
found on it (kept here, so that calibrating needs no detector) and varied as archive faces vary (landmarks
shifted a little, mirrored, grey, darker or brighter, cut to a tight crop), with a fixed seed. Measured
against chips of 6,922 lfw_dev faces (weights/README.md, "dlib's ResNet in int8"): these few faces give the
same accuracy as float32 within 0.1 point.
"""

import hashlib
import os

import numpy as np

from facetag.io.checksums import file_sha256
from facetag.io.samples import SOURCES

#: Chips made of each face (the first as it is).
VARIANTS = 24
SEED = 0
#: Bumped when the way chips are varied changes, so that the network is converted again.
VERSION = 2

#: (where the photo is: a path under the samples folder, or ``matplotlib:`` and one under its data folder, the
#: face's five landmarks as MTCNN finds them: eyes, nose, mouth corners, x and y in pixels).
FACES = (
    ("gallery/biden/biden.jpg",
     ((534.2344450856194, 321.07046217572093), (652.0882142498352, 345.8692382524722),
      (593.4666986710893, 403.51897006256166), (518.2988114825955, 457.19507238389804),
      (623.5379705628455, 477.2296558835888))),
    ("gallery/obama/obama.jpg",
     ((441.9544256366538, 213.78709037523203), (549.5316421045321, 212.26295408016045),
      (497.69873085287315, 275.6581577299696), (434.2867334502039, 317.7309493408541),
      (555.3654699608483, 316.07690371921746))),
    ("gallery/obama/obama3.jpg",
     ((736.2754819817901, 382.18510372732726), (858.4702548609458, 396.4782963956808),
      (806.808249040103, 440.2198110802514), (731.5727135553, 508.0439823209292),
      (844.147838557035, 522.7007152438133))),
    ("photos/astronaut.png",
     ((203.54084145093225, 100.1034988873927), (245.40858605465343, 102.23814072100936),
      (224.2243539876727, 126.41957476379258), (201.78951128565103, 138.5869945382369),
      (244.38939033994328, 140.3769461233535))),
    ("photos/obama2.jpg",
     ((250.75131394620388, 362.6649718721979), (365.7050384178408, 378.73347008021653),
      (277.84653505486506, 445.975088585335), (244.14151078009144, 517.5053179027682),
      (344.65835182386996, 526.330616180545))),
    ("matplotlib:sample_data/grace_hopper.jpg",
     ((220.42066866377766, 190.1644217536215), (308.1850769350473, 186.047969153642),
      (268.2858699829246, 237.36724759163513), (231.71336511619558, 277.0237720059031),
      (303.63707031605054, 272.9138459944828))),
)


#: Each photo's SHA-256: the samples' as facetag.io.samples checks them, and matplotlib's Grace Hopper.
SHA256 = {**{dest: sha for _, _, files in SOURCES for dest, sha in files.values()},
          "matplotlib:sample_data/grace_hopper.jpg": "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"}


def calibration_key():
    """What the calibration chips are made from (photos, landmarks, variation settings), without reading a
    photo: the network's file name in the cache says it (facetag.vision.conversion.source_key)."""
    faces = tuple((where, SHA256[where], landmarks) for where, landmarks in FACES)
    return hashlib.sha256(repr((VARIANTS, SEED, VERSION, faces)).encode()).hexdigest()[:12]


def photo_path(where):
    """Where a calibration photo (:data:`FACES`) is on this machine, if it is there."""
    if where.startswith("matplotlib:"):
        import matplotlib

        return os.path.join(matplotlib.get_data_path(), where.split(":", 1)[1])
    from facetag.io.samples import samples_dir

    return os.path.join(samples_dir(), where)


def _photo(where):
    """The photo's path, checked: this machine's copy, or the one a staged sdist carries (setup.py). The samples
    are not fetched here: a job downloads nothing."""
    from importlib import resources

    path = photo_path(where)
    bundled = resources.files("facetag.weights").joinpath("calibration", os.path.basename(where))
    if not os.path.exists(path) and bundled.is_file():
        path = str(bundled)
    if not os.path.exists(path):
        raise RuntimeError(f"dlib's int8 network is calibrated on the sample photos, and {path} is missing: "
                           "run 'python -m facetag.io.samples' once (make setup does)")
    if file_sha256(path) != SHA256[where]:
        raise RuntimeError(f"{path} is not the photo dlib's int8 network is calibrated on (another SHA-256)")
    return path


def calibration_chips():
    """float32 (N, CHIP_SIZE, CHIP_SIZE, 3) face chips in dlib's input range (0-255)."""
    from facetag.io.images import load_image
    from facetag.vision.alignment import CHIP_SIZE, align_face

    rng = np.random.default_rng(SEED)
    chips = []
    for where, landmarks in FACES:
        image = load_image(_photo(where))
        landmarks = np.array(landmarks)
        spread = landmarks[:, 0].max() - landmarks[:, 0].min()
        for k in range(VARIANTS):
            moved = landmarks + rng.normal(0, 0.03 * spread, landmarks.shape) if k else landmarks
            chip = align_face(image, moved).astype(np.float32)
            if k % 2:
                chip = chip[:, ::-1]
            if k % 3 == 1:
                chip = np.repeat(chip.mean(axis=2, keepdims=True), 3, axis=2)
            if k % 4 == 3:  # a face from a tight crop: beyond the crop the chip is the photo's mean colour
                inside = np.zeros(chip.shape[:2], bool)
                margin = rng.integers(15, 40, 4)
                inside[margin[0]:CHIP_SIZE - margin[1], margin[2]:CHIP_SIZE - margin[3]] = True
                chip[~inside] = chip[inside].mean(axis=0)
            chips.append(np.clip(chip * rng.uniform(0.6, 1.3) + rng.uniform(-20, 20), 0, 255))
    return np.stack(chips)
