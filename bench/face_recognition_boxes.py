"""face_recognition's command line, printing where each face is.

    python bench/face_recognition_boxes.py KNOWN_FOLDER UNKNOWN_FOLDER [--cpus 2] [--tolerance 0.6]

This is the ``face_recognition`` command (face_recognition 1.3.0's ``face_recognition_cli.main``),
run unchanged except for one function: its per-photo step, ``test_image``, is replaced by
:func:`test_image` below, which makes the same calls in the same order (load the photo, shrink it
to 1,600 px if larger, find the faces with the default HOG detector and one upsampling, encode
them, compare with the known faces) and prints each face's box in the photo's pixels after
what the command prints (``--show-distance`` is always on)::

    path,name,distance,left,top,right,bottom

The command prints names only, so faces of several people in one photo (bench/end_to_end.py's
scenes) cannot be told apart without this. Finding the faces first and handing them to
``face_encodings`` is what ``face_encodings`` does itself when given none, so the work is the same.
"""

import sys

import face_recognition.api as face_recognition
import face_recognition.face_recognition_cli as cli
import numpy as np
import PIL.Image

#: The command's size limit for the photos it checks (face_recognition_cli.test_image).
SHRUNK_TO = 1600


def test_image(image_to_check, known_names, known_face_encodings, tolerance=0.6, show_distance=False):
    unknown_image = face_recognition.load_image_file(image_to_check)
    scale = 1.0
    if max(unknown_image.shape) > SHRUNK_TO:
        pil_img = PIL.Image.fromarray(unknown_image)
        pil_img.thumbnail((SHRUNK_TO, SHRUNK_TO), PIL.Image.LANCZOS)
        scale = unknown_image.shape[1] / pil_img.size[0]
        unknown_image = np.array(pil_img)

    locations = face_recognition.face_locations(unknown_image)
    unknown_encodings = face_recognition.face_encodings(unknown_image, known_face_locations=locations)

    lines = []
    for (top, right, bottom, left), unknown_encoding in zip(locations, unknown_encodings):
        box = ",".join(str(round(v * scale)) for v in (left, top, right, bottom))
        distances = face_recognition.face_distance(known_face_encodings, unknown_encoding)
        matched = [(name, distance) for name, distance in zip(known_names, distances) if distance <= tolerance]
        for name, distance in matched or [("unknown_person", None)]:
            lines.append(f"{image_to_check},{name},{distance},{box}")
    if not unknown_encodings:
        lines.append(f"{image_to_check},no_persons_found,None,,,,")
    # One write per photo: the pool's processes share the pipe, and the command's own line-by-line
    # prints interleave (bench/end_to_end.py parses those by pattern).
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.flush()


if __name__ == "__main__":
    cli.test_image = test_image
    cli.main(sys.argv[1:] + ["--show-distance", "true"])
