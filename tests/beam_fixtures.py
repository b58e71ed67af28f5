"""Photo folders for the Beam job tests, made from the fetched sample photos."""

import io
import os
import shutil

from PIL import Image


def make_archive(samples, folder):
    """A small archive with one photo of every kind; returns {file name: expected outcome}."""
    os.makedirs(folder, exist_ok=True)
    obama = Image.open(os.path.join(samples, "photos", "obama2.jpg")).convert("RGB")
    biden = Image.open(os.path.join(samples, "gallery", "biden", "biden.jpg")).convert("RGB")
    small = obama.resize((obama.width // 2, obama.height // 2))
    expected = {}

    shutil.copy(os.path.join(samples, "photos", "obama2.jpg"), os.path.join(folder, "obama2.jpg"))
    expected["obama2.jpg"] = "faces"
    shutil.copy(os.path.join(samples, "photos", "astronaut.png"), os.path.join(folder, "astronaut.png"))
    expected["astronaut.png"] = "faces"

    pair = Image.new("RGB", (small.width + biden.width, max(small.height, biden.height)), (128, 128, 128))
    pair.paste(small, (0, 0))
    pair.paste(biden, (small.width, 0))
    pair.save(os.path.join(folder, "two_people.jpg"), quality=92)
    expected["two_people.jpg"] = "faces:2"

    small.convert("L").save(os.path.join(folder, "grey.jpg"))
    expected["grey.jpg"] = "faces"
    small.convert("CMYK").save(os.path.join(folder, "cmyk.jpg"))
    expected["cmyk.jpg"] = "faces"
    exif = Image.Exif()
    exif[0x0112] = 8  # displayed rotated 90 degrees: stored on its side
    small.rotate(-90, expand=True).save(os.path.join(folder, "rotated.jpg"), exif=exif.tobytes())
    expected["rotated.jpg"] = "faces"

    Image.new("RGB", (300, 200), (90, 140, 220)).save(os.path.join(folder, "sky.png"))
    expected["sky.png"] = "no_face"
    buf = io.BytesIO()
    small.save(buf, "JPEG")
    with open(os.path.join(folder, "truncated.jpg"), "wb") as f:
        f.write(buf.getvalue()[: len(buf.getvalue()) // 3])
    expected["truncated.jpg"] = "failed"
    open(os.path.join(folder, "empty.jpg"), "wb").close()
    expected["empty.jpg"] = "failed"
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("not a photo\n")
    expected["notes.txt"] = "failed"
    return expected


def make_tfrecord(samples, path):
    """Two photos as tf.train.Examples (image bytes + key) and one record that is not an Example."""
    import tensorflow as tf

    with tf.io.TFRecordWriter(path) as writer:
        for key, rel in (("shard/obama2", "photos/obama2.jpg"), ("shard/biden", "gallery/biden/biden.jpg")):
            with open(os.path.join(samples, rel), "rb") as f:
                example = tf.train.Example(features=tf.train.Features(feature={
                    "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f.read()])),
                    "key": tf.train.Feature(bytes_list=tf.train.BytesList(value=[key.encode()])),
                }))
            writer.write(example.SerializeToString())
        writer.write(b"\x00 not an example")
    return path


