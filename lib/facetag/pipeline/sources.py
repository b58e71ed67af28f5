"""Where the photos come from: files (any Beam FileSystems path) or TFRecord shards.

Every source yields ``(source, data, identity)``: a name for the photo (its
URI, or the key stored in the TFRecord), its encoded bytes, and the person it
shows when known (gallery photos), else None. A file that cannot be read
becomes a failure record, never a failed job.
"""

import hashlib
import os

import apache_beam as beam
from apache_beam.io import fileio, tfrecordio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from facetag.errors import FaceTagError
from facetag.pipeline.outcomes import FAILED, failure

IMAGE_FEATURE = "image"  # tf.train.Example feature holding the encoded image bytes
KEY_FEATURE = "key"  # ... the photo's name
IDENTITY_FEATURE = "identity"  # ... optional: who it shows


def is_tfrecord(pattern):
    return any(pattern.endswith(s) for s in (".tfrecord", ".tfrecords", ".tfrecord.gz", ".tfrecords.gz"))


class ReadPhotoFiles(beam.DoFn):
    """``(uri, identity)`` -> ``(uri, bytes, identity)``; unreadable files go to the failed output."""

    def __init__(self):
        self.read = Metrics.counter("facetag", "images_read")
        self.failed = Metrics.counter("facetag", "images_failed")

    def process(self, element):
        uri, identity = element
        self.read.inc()
        try:
            with FileSystems.open(uri) as f:
                yield uri, f.read(), identity
        except Exception as e:  # noqa: BLE001 - any I/O error is this file's outcome, not the job's
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(FAILED, failure(uri, f"cannot open the file: {e}"))


class ParseExamples(beam.DoFn):
    """``(shard, serialized tf.train.Example)`` -> ``(key, image bytes, identity)``.

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
        yield name, image, identity


class ReadPhotos(beam.PTransform):
    """Photos to process -> ``(source, bytes, identity)``, plus a ``failed`` output.

    ``patterns``: files, folders (every file below), globs, or TFRecord shards
    (``*.tfrecord``) of tf.train.Examples with an ``image`` bytes feature, a
    ``key`` and optionally an ``identity``. ``labelled``: ``[(uri, identity)]``
    for gallery photos. The file list is matched on the workers and
    reshuffled, so reading, detection and encoding spread over all of them.
    """

    def __init__(self, patterns=(), labelled=()):
        super().__init__()
        self.patterns = [p.rstrip("/") + "/**" if _is_folder(p) else p for p in patterns]
        self.labelled = list(labelled)

    def expand(self, pbegin):
        files = [p for p in self.patterns if not is_tfrecord(p)]
        shards = [p for p in self.patterns if is_tfrecord(p)]
        outputs = []
        if files:
            outputs.append(
                pbegin
                | "List photo patterns" >> beam.Create(files)
                | "Match photo files" >> fileio.MatchAll()
                | "Unlabelled" >> beam.Map(lambda m: (m.path, None))
            )
        if self.labelled:
            outputs.append(pbegin | "List gallery photos" >> beam.Create(self.labelled))
        results = []
        if outputs:
            read = (
                outputs | "All photo files" >> beam.Flatten()
                | "Spread photos over workers" >> beam.Reshuffle()
                | "Read photo files" >> beam.ParDo(ReadPhotoFiles()).with_outputs(FAILED, main="photos")
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
        failed = [r[FAILED] for r in results] | "All read failures" >> beam.Flatten(pipeline=pbegin.pipeline)
        return {"photos": photos, FAILED: failed}


def _is_folder(path):
    if any(c in path for c in "*?["):
        return False
    if "://" not in path:
        return os.path.isdir(path)
    return path.endswith("/")


def check_patterns_match(patterns):
    """Fail before the job starts when an input matches no file: a typo should not give an empty result."""
    for pattern in patterns:
        expanded = pattern.rstrip("/") + "/**" if _is_folder(pattern) else pattern
        if not FileSystems.match([expanded])[0].metadata_list:
            raise FaceTagError(f"no photo matches {pattern}: check the path (folders, globs and gs:// paths work)")
