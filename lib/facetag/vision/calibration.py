"""The face chips dlib's ResNet is calibrated on for full-integer int8 (facetag.vision.conversion).

Full-integer quantisation needs the range of every activation, measured on inputs like the real ones:
aligned face chips. They are made from photos every facetag machine has, so that every machine converts
the same network: the sample photos (facetag.io.samples: Obama and Biden from face_recognition's tests, MIT;
NASA's astronaut, public domain; checked by SHA-256, fetched by ``make setup``) and matplotlib's Grace
Hopper (a dependency's sample data, public domain). Each face is aligned by the landmarks MTCNN finds and
varied as archive faces vary (landmarks shifted a little, mirrored, grey, darker or brighter, cut to a tight
crop), with a fixed seed. Measured against chips of 6,922 lfw_dev faces (weights/README.md, "dlib's ResNet in int8"):
these few faces give the same accuracy as float32 within 0.1 point.
"""

import hashlib
import os

import numpy as np

#: Chips made of each face (the first as it is).
VARIANTS = 24
SEED = 0
#: Bumped when the way chips are varied changes, so that the network is converted again.
VERSION = 2


def calibration_photos():
    """Paths of the photos the chips come from. The samples are not fetched here: a job downloads nothing."""
    import matplotlib

    from facetag.io.samples import SOURCES, samples_dir

    folder = samples_dir()
    samples = sorted(os.path.join(folder, dest) for _, _, files in SOURCES for dest, _ in files.values())
    missing = [p for p in samples if not os.path.exists(p)]
    if missing:
        raise RuntimeError(f"dlib's int8 network is calibrated on the sample photos, and {missing[0]} is missing: "
                           "run 'python -m facetag.io.samples' once (make setup does)")
    return samples + [os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")]


def calibration_key():
    """What the calibration chips are made from: the photos' SHA-256 and the variation settings."""
    digest = hashlib.sha256(f"{VARIANTS}|{SEED}|{VERSION}".encode())
    for path in calibration_photos():
        with open(path, "rb") as f:
            digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()[:12]


def calibration_chips():
    """float32 (N, 150, 150, 3) face chips in dlib's input range (0-255)."""
    from facetag.io.images import load_image
    from facetag.vision.alignment import align_face
    from facetag.vision.detection import FaceDetector

    rng = np.random.default_rng(SEED)
    detector = FaceDetector()
    chips = []
    for path in calibration_photos():
        image = load_image(path)
        for face in detector.detect(image):
            landmarks = np.array(face.landmarks)
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
                    inside[margin[0]:150 - margin[1], margin[2]:150 - margin[3]] = True
                    chip[~inside] = chip[inside].mean(axis=0)
                chips.append(np.clip(chip * rng.uniform(0.6, 1.3) + rng.uniform(-20, 20), 0, 255))
    return np.stack(chips)
