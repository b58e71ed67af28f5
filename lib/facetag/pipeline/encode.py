"""Photos -> faces: decode, detect, crop, then encode the crops in batches with RunInference.

The encoder runs through Beam's RunInference with a facetag model handler:
RunInference batches the crops (BatchElements) and keeps one loaded model per
worker process, shared by that process's threads, which is exactly what a
90 MB network needs. Detection is a DoFn of its own: photos come in
every size, so one detector call takes one photo; the DoFn takes small batches
of photos and runs them on a few threads, because one call on a small photo
keeps only about 1.5 of 2 cores busy (measured on 250x250 photos: 150 photos/s
on one thread, 190 on two). The detector is loaded once per process
(facetag.vision.detection.shared_detector).
"""

import hashlib
import logging

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import (
    KeyedModelHandler,
    ModelHandler,
    PredictionResult,
    RunInference,
)
from apache_beam.transforms.window import GlobalWindows

from facetag._testing.faults import kill_point, maybe_fail, maybe_stall
from facetag.errors import ImageError
from facetag.io.limits import DEFAULT_LIMITS, too_small_for_faces
from facetag.pipeline.budget import InFlight
from facetag.pipeline.notices import hide_beam_notices
from facetag.pipeline.options import limit_model_threads
from facetag.pipeline.outcomes import FACES, FAILED, NO_FACE, failure
from facetag.pipeline.progress import flush, folder, note, report_to
from facetag.pipeline.records import face_id
from facetag.vision.alignment import DEFAULT_MARGIN
from facetag.vision.detection import (
    DEFAULT_MIN_FACE_SIZE,
    DEFAULT_MIN_SCORE,
    main_face,
    shared_detector,
)
from facetag.vision.models import load_model, uses_chips
from facetag.vision.photo import Photo
from facetag.vision.quality import face_quality


class _LoadedOnFirstBatch:
    """The encoder, loaded (once per process, facetag.vision.models) when the first batch comes: RunInference loads
    its model in setup, and a re-run with no new face need not load it."""

    def __init__(self, model_name, model_threads):
        self.model_name = model_name
        self.model_threads = model_threads
        self.model = None

    def encode(self, crops, chips):
        if self.model is None:
            limit_model_threads(self.model_threads)
            self.model = load_model(self.model_name)
        return self.model.encode(crops, chips)


class FaceModelHandler(ModelHandler):
    """RunInference handler: a batch of faces, each ``(crop, chip)`` (uint8 (160, 160, 3) and (150, 150, 3); the
    chip None for a model that does not use it, facetag.vision.models.uses_chips) -> their encodings."""

    def __init__(self, model_name, max_batch_size=32, model_threads=0):
        super().__init__()
        self.model_name = model_name
        self.max_batch_size = max_batch_size
        self.model_threads = model_threads

    def load_model(self):
        hide_beam_notices()  # on a worker: RunInference warns at every model load
        return _LoadedOnFirstBatch(self.model_name, self.model_threads)

    def run_inference(self, batch, model, inference_args=None):
        maybe_fail("encode", [hashlib.sha256(crop.tobytes()).digest() for crop, _ in batch])
        chips = np.stack([chip for _, chip in batch]) if batch[0][1] is not None else None
        encodings = model.encode(np.stack([crop for crop, _ in batch]), chips)
        return [PredictionResult(None, e) for e in encodings]

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": self.max_batch_size}

    def get_metrics_namespace(self):
        return "facetag_encoder"


#: Photos handed to DetectFaces at once, and the most left in flight when its ``process`` returns.
DETECTION_BATCH = 8

_reported = set()
log = logging.getLogger("facetag")


#: DetectFaces output: one summary per photo, whatever its outcome (for the archive store's photos table).
PHOTOS = "photos"


def _unexpected(error, source):
    """The failed reason for an exception facetag did not expect; its traceback is logged once per type and process."""
    name = type(error).__name__
    if name not in _reported:
        _reported.add(name)
        log.error("facetag: unexpected %s on %s (logged once per worker; please report it with the photo)",
                  name, source, exc_info=error)
    return f"facetag failed on this photo with an unexpected {name}: please report it as a bug, with the photo"


class DetectFaces(beam.DoFn):
    """A batch of :class:`facetag.pipeline.records.PhotoBytes` -> ``(face record without encoding, (crop, chip))`` per
    face; ``chips``: whether the model needs each face's aligned chip (else None).

    Photos without a face (or too small to hold one) go to the ``no_face``
    output and undecodable ones, or ones over a limit (facetag.io.limits), to
    ``failed``, each with its reason; every photo also gets a summary on the
    ``photos`` output (outcome, reason, faces, displayed size, content
    sha256, plus the photo's ``info``). A photo still being decoded and searched
    after ``limits.time_budget_s`` is given up (``failed``, facetag.pipeline.budget),
    so one pathological file cannot stall the worker. A gallery
    photo's identity goes to its main face only (the largest, most central):
    the other faces in it are bystanders.

    Photos are decoded, searched and cropped on the detection threads, and up to
    DETECTION_BATCH of them stay in flight when ``process`` returns: while Beam's
    thread encodes the faces already found (RunInference, downstream), the
    threads go on with the next photos. ``finish_bundle`` emits the rest.
    """

    def __init__(self, min_score=DEFAULT_MIN_SCORE, margin=DEFAULT_MARGIN, model_threads=0, limits=DEFAULT_LIMITS,
                 chips=False):
        self.min_score = min_score
        self.margin = margin
        self.chips = chips
        self.model_threads = model_threads
        self.limits = limits
        self.faces_found = Metrics.counter("facetag", "faces_found")
        self.images_with_faces = Metrics.counter("facetag", "images_with_faces")
        self.images_without_face = Metrics.counter("facetag", "images_without_face")
        self.images_failed = Metrics.counter("facetag", "images_failed")
        self.progress = folder()  # the progress line's folder travels with the DoFn (facetag.pipeline.progress)

    def setup(self):
        self._detector = None
        report_to(self.progress)

    @property
    def detector(self):
        # Loaded for the first photo, not in setup: a re-run with nothing new never loads the networks.
        if self._detector is None:
            limit_model_threads(self.model_threads)
            self._detector = shared_detector(self.min_score)
        return self._detector

    def start_bundle(self):
        self.bundle_sources = []
        self.in_flight = InFlight(self._detect, self.limits.time_budget_s)

    def process(self, photos):
        self.bundle_sources += [photo.source.encode() for photo in photos]
        for photo in photos:
            self.in_flight.submit(photo)
        # Counters and outputs stay on Beam's thread; the photos still in flight go on meanwhile.
        while len(self.in_flight) > DETECTION_BATCH:
            yield from self._next_outcome()

    def finish_bundle(self):
        while self.in_flight:
            for output in self._next_outcome():
                if isinstance(output, beam.pvalue.TaggedOutput):
                    yield beam.pvalue.TaggedOutput(output.tag, GlobalWindows.windowed_value(output.value))
                else:
                    yield GlobalWindows.windowed_value(output)
        flush()
        maybe_fail("detect", self.bundle_sources)  # test-only: fails the whole bundle, after its outputs

    def _next_outcome(self):
        photo, result, in_time = self.in_flight.next()
        if not in_time:
            result = None, None, (FAILED, f"decoding and searching this photo took over {self.limits.time_budget_s:g} "
                                          "s, the per-photo time budget: given up so the job goes on")
        return self._outcome(photo, *result)

    def _detect(self, photo):
        """(width, height), [(detection, (crop, chip))] and None, or None, None and (outcome, reason)."""
        try:
            maybe_stall(photo.source)
            decoded = Photo(photo.data, photo.source, self.limits)
            size = (decoded.width, decoded.height)
            tiny = too_small_for_faces(decoded.width, decoded.height, DEFAULT_MIN_FACE_SIZE)
            if tiny:
                return size, None, (NO_FACE, tiny)
            return size, [(d, (decoded.crop(d.box, self.margin), decoded.chip(d.landmarks) if self.chips else None))
                          for d in decoded.detect(self.detector)], None
        except ImageError as e:
            return None, None, (FAILED, e.reason)
        except Exception as e:  # noqa: BLE001 - a photo that breaks facetag is that photo's outcome, reported
            return None, None, (FAILED, _unexpected(e, photo.source))

    def _outcome(self, photo, size, found, problem):
        """The photo's outputs, sorted by outcome, and the counters that go with them."""
        kill_point("detect")
        note(done=1, faces=len(found or ()), failed=1 if problem and problem[0] == FAILED else 0)
        sha256 = hashlib.sha256(photo.data).hexdigest()
        width, height = size or (None, None)
        summary = {"source": photo.source, "sha256": sha256, "faces": len(found or ()), "width": width,
                   "height": height, **photo.info}
        if not problem and not found:
            problem = (NO_FACE, "no face found")
        if problem:
            kind, reason = problem
            (self.images_failed if kind == FAILED else self.images_without_face).inc()
            yield beam.pvalue.TaggedOutput(PHOTOS, {**summary, "outcome": kind, "reason": reason})
            yield beam.pvalue.TaggedOutput(kind, failure(photo.source, reason))
            return
        self.images_with_faces.inc()
        self.faces_found.inc(len(found))
        yield beam.pvalue.TaggedOutput(PHOTOS, {**summary, "outcome": FACES, "reason": None})
        yield from face_records(photo, sha256, found, (height, width))


def face_records(photo, sha256, found, shape):
    """``(face record, (crop, chip))`` for each ``(detection, (crop, chip))`` found in the photo, whose displayed
    size is ``shape`` (height, width): a gallery photo's identity goes to its main face only."""
    labelled = main_face([d for d, _ in found], shape) if photo.identity else None
    for index, (d, (crop, chip)) in enumerate(found):
        record = {
            "face_id": face_id(photo.source, index),
            "source": photo.source,
            "photo_sha256": sha256,
            "face_index": index,
            "box": list(d.box),
            "landmarks": [c for point in d.landmarks for c in point],
            "score": d.score,
            "quality": face_quality(d.box, d.score, d.landmarks, crop),
            "identity": photo.identity if d is labelled else None,
        }
        yield record, (crop, chip)


def _with_encoding(keyed_result):
    record, result = keyed_result
    return {**record, "encoding": result.inference.tolist()}


class EncodePhotos(beam.PTransform):
    """:class:`facetag.pipeline.records.PhotoBytes` -> outputs ``faces`` (records with encodings), ``no_face``,
    ``failed``, and ``photos`` (a summary of every photo, see DetectFaces)."""

    def __init__(self, model_name, min_score=DEFAULT_MIN_SCORE, margin=DEFAULT_MARGIN, max_batch_size=32,
                 model_threads=0, limits=DEFAULT_LIMITS):
        super().__init__()
        self.limits = limits
        self.model_name = model_name
        self.min_score = min_score
        self.margin = margin
        self.max_batch_size = max_batch_size
        self.model_threads = model_threads

    def expand(self, photos):
        detected = (
            photos
            | "Batch photos" >> beam.BatchElements(min_batch_size=1, max_batch_size=DETECTION_BATCH)
            | "Detect faces" >> beam.ParDo(
                DetectFaces(self.min_score, self.margin, self.model_threads, self.limits,
                            chips=uses_chips(self.model_name))).with_outputs(
                FAILED, NO_FACE, PHOTOS, main="faces"))
        faces = (
            detected.faces
            | "Encode faces" >> RunInference(KeyedModelHandler(
                FaceModelHandler(self.model_name, self.max_batch_size, self.model_threads)))
            | "Attach encodings" >> beam.Map(_with_encoding)
        )
        return {"faces": faces, NO_FACE: detected[NO_FACE], FAILED: detected[FAILED], PHOTOS: detected[PHOTOS]}
