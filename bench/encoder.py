"""Benchmark of the face encoder: facetag-128 (FaceNet Inception-ResNet-v1 on LiteRT) against dlib's.

What is measured, on the same real faces: the main face (facetag.vision.detection.main_face) of each of the
first photos of ../shared/data/lfw_dev in sorted order, found by facetag's detector; photos without a
face are skipped. Without lfw_dev, the faces of facetag's sample photos, repeated to fill the count.

* facetag: ``facetag.load_model("facetag-128").encode(crops)`` on uint8 (N, 160, 160, 3) crops
  (facetag.vision.alignment.crop_face, default margin), in faces/s, at each batch size: every face is
  encoded once per repetition, in calls of that many crops. The backbone's ``batch_size`` is set to
  the batch size, so that each call is one network run (by default it splits inputs into runs of 8).
  Cropping is not timed; the projection head is.
* The model's arithmetic: float operations per face, counted by TensorFlow's profiler on the frozen
  graph as the file holds it (exported for a batch of one; a multiply-add counts as 2). Hence the
  GFLOP/s achieved at each batch size and its share of the machine's float32 peak, measured in the
  same run as the best of several n x n matrix products, 2 n^3 / seconds (TensorFlow's matmul under
  tf.function, and numpy's); the larger of the two is the peak.
* dlib: ``face_recognition.face_encodings(photo, known_face_locations=[box])`` on the original photos
  with the same boxes in dlib's (top, right, bottom, left) order, one face per call. This includes
  dlib's 5-point landmarks and face chip, which are cheap beside its network.
* Cores busy: the process's CPU time over wall time during the timed calls.

Every timing is the median of --reps repetitions after one untimed warm-up repetition (the
interpreter's memory plan for each batch shape). Ratios are against dlib measured in the same run.

Run from the repository root (the default run takes a couple of minutes)::

    python bench/encoder.py                 # 64 faces, batch sizes 1 8 32 64, 5 repetitions
    python bench/encoder.py --reps 9 --out bench/encoder_results.md
    python bench/encoder.py --quick         # 8 faces, batch sizes 1 and 8, 1 repetition: a smoke test

The Markdown report goes to stdout (and to --out); TensorFlow's messages to stderr.
"""

import argparse
import contextlib

import benchutil
import face_recognition
import numpy as np
import tensorflow as tf

import facetag
from facetag.vision.alignment import DEFAULT_MARGIN, crop_face
from facetag.vision.detection import main_face
from facetag.vision.weight_files import graph_path

BATCH_SIZES = (1, 8, 32, 64)
FACES = 64
MATRIX_SIDE = 4096
PEAK_TRIES = 5
QUICK = {"faces": 8, "batch_sizes": (1, 8), "matrix_side": 1024}


# ---- faces ----

def real_faces(count):
    """``count`` (photo, box) pairs: the main face of successive photos, box (left, top, right, bottom)."""
    paths, source = benchutil.photo_paths()
    analyzer = facetag.FaceAnalyzer()
    faces = []
    for path in paths:
        image = facetag.load_image(path)
        face = main_face(analyzer.detect(image), image.shape)
        if face is not None:
            faces.append((image, face.box))
        if len(faces) == count:
            break
    if not faces:
        raise SystemExit(f"no face found in {source}")
    distinct = len(faces)
    return [faces[i % distinct] for i in range(count)], f"{distinct} distinct faces from {source}"


def crops_of(faces):
    return np.stack([crop_face(image, box, margin=DEFAULT_MARGIN) for image, box in faces])


def dlib_location(box):
    left, top, right, bottom = box
    return top, right, bottom, left


# ---- arithmetic ----

def flops_per_face():
    """Float operations of one forward pass, by TensorFlow's profiler on the batch-of-one frozen graph."""
    graph_def = tf.compat.v1.GraphDef()
    with open(graph_path(), "rb") as f:
        graph_def.ParseFromString(f.read())
    # The profiler needs static shapes: the file's graph was exported with batch 1 (backbone.py makes it free).
    (batch,) = [n.attr["shape"].shape.dim[0].size for n in graph_def.node if n.name == "input"]
    assert batch == 1, f"graph_final.pb's input has batch {batch}, not 1"
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    options = tf.compat.v1.profiler.ProfileOptionBuilder(
        tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()).with_empty_output().build()
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


def best_seconds(fn, tries):
    fn()  # warm-up: tracing, thread pools, page faults
    return min(benchutil.timed(fn)[0].wall for _ in range(tries))


def matmul_gflops(n, tries):
    """float32 GFLOP/s of an n x n matrix product: {"TensorFlow": ..., "numpy": ...}, best of ``tries``."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    ta, tb = tf.constant(a), tf.constant(b)
    # Summed inside the graph so that fetching the result copies a scalar, not n x n floats.
    tf_product = tf.function(lambda x, y: tf.reduce_sum(tf.linalg.matmul(x, y)))
    seconds = {"TensorFlow": best_seconds(lambda: tf_product(ta, tb).numpy(), tries),
               "numpy": best_seconds(lambda: a @ b, tries)}
    return {name: 2 * n**3 / s / 1e9 for name, s in seconds.items()}


# ---- encoders ----

@contextlib.contextmanager
def backbone_batch_size(model, size):
    saved = model.backbone.batch_size
    model.backbone.batch_size = size
    try:
        yield
    finally:
        model.backbone.batch_size = saved


def encode_all(model, crops, batch_size):
    for start in range(0, len(crops), batch_size):
        model.encode(crops[start:start + batch_size])


def facetag_timing(model, crops, batch_size, reps):
    """Median Timing of encoding all crops in calls of ``batch_size``."""
    with backbone_batch_size(model, batch_size):
        encode_all(model, crops, batch_size)  # warm-up
        timing, _ = benchutil.median_timing(lambda: encode_all(model, crops, batch_size), reps)
    return timing


def dlib_encode_all(faces):
    for image, box in faces:
        if len(face_recognition.face_encodings(image, known_face_locations=[dlib_location(box)])) != 1:
            raise RuntimeError("dlib returned no encoding for a given face box")


def dlib_timing(faces, reps):
    dlib_encode_all(faces[:1])  # warm-up: loads the shape predictor and the network
    timing, _ = benchutil.median_timing(lambda: dlib_encode_all(faces), reps)
    return timing


# ---- report ----

def results_table(rows, dlib, faces, flops, peak):
    """rows: (batch size, Timing of encoding ``faces`` faces) of facetag; dlib: its Timing."""
    dlib_rate = faces / dlib.wall
    lines = ["| encoder | faces per call | faces/s | ms per face | GFLOP/s | share of peak | cores busy | speed vs dlib |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for batch_size, timing in rows:
        rate = faces / timing.wall
        gflops = rate * flops / 1e9
        lines.append(f"| facetag-128 | {batch_size} | {rate:.1f} | {1000 / rate:.1f} | {gflops:.1f} "
                     f"| {gflops / peak:.0%} | {timing.cores_busy:.2f} | {rate / dlib_rate:.2f}x |")
    lines.append(f"| dlib (face_recognition) | 1 | {dlib_rate:.1f} | {1000 / dlib_rate:.1f} | — | — "
                 f"| {dlib.cores_busy:.2f} | 1.00x |")
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions; medians are reported")
    parser.add_argument("--faces", type=int, default=FACES, help="faces encoded per repetition")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES))
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK['faces']} faces, batch sizes {QUICK['batch_sizes']}, "
                             f"{QUICK['matrix_side']}-side matrix product, 1 repetition")
    parser.add_argument("--out", help="also write the report to this Markdown file")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.faces, args.batch_sizes = 1, QUICK["faces"], list(QUICK["batch_sizes"])
    args.matrix_side = QUICK["matrix_side"] if args.quick else MATRIX_SIDE
    return args


def main(argv=None):
    args = parse_args(argv)
    faces, source = real_faces(args.faces)
    crops = crops_of(faces)
    model = facetag.load_model("facetag-128")
    flops = flops_per_face()
    peaks = matmul_gflops(args.matrix_side, PEAK_TRIES)
    peak = max(peaks.values())
    rows = [(size, facetag_timing(model, crops, size, args.reps)) for size in args.batch_sizes]
    dlib = dlib_timing(faces, args.reps)

    lines = ["# Face encoder benchmark: facetag-128 against dlib (face_recognition)", ""] + benchutil.machine_facts()
    lines += [f"- Faces: {args.faces} per repetition, {source}; crops 160x160, margin as facetag's default",
              f"- Medians of {args.reps} repetitions after a warm-up",
              "", "## Arithmetic", "",
              f"- facetag's network: {flops / 1e9:.3f} GFLOP per face (TensorFlow profiler, frozen graph, "
              "batch 1, multiply-add = 2)",
              f"- float32 peak measured now, best of {PEAK_TRIES} {args.matrix_side}x{args.matrix_side} matrix products: "
              + ", ".join(f"{name} {gflops:.1f} GFLOP/s" for name, gflops in peaks.items())
              + f"; shares below are of {peak:.1f} GFLOP/s",
              "", "## Throughput", ""]
    lines += results_table(rows, dlib, args.faces, flops, peak)
    benchutil.write_report(lines, args.out)


if __name__ == "__main__":
    main()
