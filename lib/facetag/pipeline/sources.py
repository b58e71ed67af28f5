"""Where the photos come from: files (any Beam FileSystems path) or TFRecord shards.

Every source yields a :class:`facetag.pipeline.records.PhotoBytes`: a name for
the photo (its URI, or the key stored in the TFRecord), its encoded bytes, and
the person it shows when known (gallery photos), else None. A file that cannot be read
becomes a failure record, never a failed job.
"""

import hashlib

import apache_beam as beam
from apache_beam.io import tfrecordio
from apache_beam.metrics import Metrics

from facetag.errors import FaceTagError, ImageError
from facetag.io.files import filesystems
from facetag.io.images import read_file
from facetag.io.limits import MAX_FILE_BYTES
from facetag.io.listing import list_paths
from facetag.pipeline.encode import EncodePhotos
from facetag.pipeline.outcomes import FAILED, NO_FACE, failure
from facetag.pipeline.records import PhotoBytes

IMAGE_FEATURE = "image"  # tf.train.Example feature holding the encoded image bytes
KEY_FEATURE = "key"  # ... the photo's name
IDENTITY_FEATURE = "identity"  # ... optional: who it shows


def is_tfrecord(pattern):
    return any(pattern.endswith(s) for s in (".tfrecord", ".tfrecords", ".tfrecord.gz", ".tfrecords.gz"))


class ReadPhotoFiles(beam.DoFn):
    """``(uri, identity)`` -> :class:`PhotoBytes`; unreadable files go to the failed output."""

    def __init__(self, max_file_bytes=MAX_FILE_BYTES):
        self.max_file_bytes = max_file_bytes
        self.read = Metrics.counter("facetag", "images_read")
        self.failed = Metrics.counter("facetag", "images_failed")

    def process(self, element):
        uri, identity = element
        self.read.inc()
        try:
            data = read_file(uri, self.max_file_bytes)
        except ImageError as e:
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(FAILED, failure(uri, e.reason))
            return
        yield PhotoBytes(uri, data, identity)


class ParseExamples(beam.DoFn):
    """``(shard, serialized tf.train.Example)`` -> :class:`PhotoBytes` (key, image bytes, identity).

    A record without a ``key`` is named ``<shard>#<sha1 of the record>``, which
    is stable across re-runs.
    """

    def __init__(self):
        self.read = Metrics.counter("facetag", "images_read")
        self.failed = Metrics.counter("facetag", "images_failed")

    def process(self, element):
        from tensorflow.train import Example

        shard, record = element
        self.read.inc()
        name = f"{shard}#{hashlib.sha1(record).hexdigest()[:16]}"
        try:
            features = Example.FromString(record).features.feature
            if IMAGE_FEATURE not in features:
                raise ValueError(f"it has no '{IMAGE_FEATURE}' bytes feature")
            image = features[IMAGE_FEATURE].bytes_list.value[0]
            if KEY_FEATURE in features:
                name = features[KEY_FEATURE].bytes_list.value[0].decode()
            identity = (features[IDENTITY_FEATURE].bytes_list.value[0].decode()
                        if IDENTITY_FEATURE in features else None)
        except Exception as e:  # noqa: BLE001 - a bad record is this record's outcome, not the job's
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(FAILED, failure(name, f"not a facetag tf.train.Example: {e}"))
            return
        yield PhotoBytes(name, image, identity)


class ListPhotos(beam.PTransform):
    """Patterns -> outputs ``files`` (``{"path", "size", "mtime"}`` per regular file) and ``failed``.

    Each pattern is listed on a worker (facetag.io.listing: every path accounted
    for); paths that are no photo file (broken links, pipes...) go to
    ``failed`` with the reason, and are never opened.
    """

    def __init__(self, patterns):
        super().__init__()
        self.patterns = list(patterns)

    def expand(self, pbegin):
        return (
            pbegin
            | "List patterns" >> beam.Create(self.patterns)
            | "List paths" >> beam.FlatMap(list_paths)
            | "Sort out special files" >> beam.ParDo(_SortListed()).with_outputs(FAILED, main="files")
        )


class _SortListed(beam.DoFn):
    def __init__(self):
        self.read = Metrics.counter("facetag", "images_read")
        self.failed = Metrics.counter("facetag", "images_failed")

    def process(self, listed):
        if listed.problem:
            self.read.inc()
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(FAILED, failure(listed.path, listed.problem))
        else:
            yield {"path": listed.path, "size": listed.size, "mtime": listed.mtime}


class ReadPhotos(beam.PTransform):
    """Photos to process -> :class:`PhotoBytes`, plus a ``failed`` output.

    ``patterns``: files, folders (every file below), globs, or TFRecord shards
    (``*.tfrecord``) of tf.train.Examples with an ``image`` bytes feature, a
    ``key`` and optionally an ``identity``. ``labelled``: ``[(uri, identity)]``
    for gallery photos. The file list is made on the workers and
    reshuffled, so reading, detection and encoding spread over all of them.
    """

    def __init__(self, patterns=(), labelled=(), max_file_bytes=MAX_FILE_BYTES):
        super().__init__()
        self.patterns = list(patterns)
        self.labelled = list(labelled)
        self.max_file_bytes = max_file_bytes

    def expand(self, pbegin):
        files = [p for p in self.patterns if not is_tfrecord(p)]
        shards = [p for p in self.patterns if is_tfrecord(p)]
        outputs, failures = [], []
        if files:
            listed = pbegin | "List photo files" >> ListPhotos(files)
            failures.append(listed[FAILED])
            outputs.append(listed.files | "Unlabelled" >> beam.Map(lambda f: (f["path"], None)))
        if self.labelled:
            outputs.append(pbegin | "List gallery photos" >> beam.Create(self.labelled))
        results = []
        if outputs:
            read = (
                outputs | "All photo files" >> beam.Flatten()
                | "Spread photos over workers" >> beam.Reshuffle()
                | "Read photo files" >> beam.ParDo(ReadPhotoFiles(self.max_file_bytes)).with_outputs(
                    FAILED, main="photos")
            )
            results.append(read)
        if shards:
            parsed = (
                pbegin
                | "List TFRecord shards" >> beam.Create(shards)
                | "Read TFRecords" >> tfrecordio.ReadAllFromTFRecord(with_filename=True)
                | "Spread records over workers" >> beam.Reshuffle()
                | "Parse examples" >> beam.ParDo(ParseExamples()).with_outputs(FAILED, main="photos")
            )
            results.append(parsed)
        photos = [r.photos for r in results] | "All photos" >> beam.Flatten(pipeline=pbegin.pipeline)
        failed = [r[FAILED] for r in results] + failures | "All read failures" >> beam.Flatten(
            pipeline=pbegin.pipeline)
        return {"photos": photos, FAILED: failed}


def check_patterns_match(patterns):
    """Fail before the job starts when an input names no file: a typo should not give an empty result."""
    for pattern in patterns:
        if is_tfrecord(pattern):
            found = filesystems().match([pattern])[0].metadata_list
        else:
            found = next(iter(list_paths(pattern)), None)
        if not found:
            raise FaceTagError(f"no photo matches {pattern}: check the path (folders, globs and gs:// paths work)")


def read_and_encode(pipeline, inputs, labelled, settings):
    """Read photos (``inputs`` patterns and ``labelled`` ``[(uri, identity)]``), detect, encode.

    Returns ``(faces, no_face, failed)``; ``settings`` are EncodePhotos' (options.encoder_settings).
    """
    check_patterns_match(inputs)
    photos = pipeline | "Read photos" >> ReadPhotos(inputs, labelled, settings["limits"].max_file_bytes)
    encoded = photos["photos"] | "Encode photos" >> EncodePhotos(**settings)
    failed = (photos[FAILED], encoded[FAILED]) | "All failures" >> beam.Flatten()
    return encoded["faces"], encoded[NO_FACE], failed
