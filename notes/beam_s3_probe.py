"""Beam's FileSystems on s3:// against the local server, configured only by the standard AWS_* variables."""
import time

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

FileSystems.set_options(PipelineOptions([]))  # without it S3IO raises "Must provide one of client or options"

base = f"s3://facetag/beam-probe-{int(time.time())}"
for name, data in (("a/one.jpg", b"1" * 1000), ("a/b/two.jpg", b"2" * 2000), ("three.txt", b"3")):
    with FileSystems.create(f"{base}/{name}") as f:
        f.write(data)
print("write: ok")
for pattern in (f"{base}/**", f"{base}/a/*", f"{base}/a/**", base + "/*"):
    found = FileSystems.match([pattern])[0].metadata_list
    print(f"match {pattern.removeprefix(base)}: " + "; ".join(
        f"{m.path.removeprefix(base)} size={m.size_in_bytes} mtime={m.last_updated_in_seconds} "
        f"attrs={[a for a in vars(m) if a not in ('path', 'size_in_bytes', 'last_updated_in_seconds')]}"
        for m in found))
with FileSystems.open(f"{base}/a/one.jpg") as f:
    print("read:", len(f.read()), "bytes")
print("exists:", FileSystems.exists(f"{base}/a/one.jpg"), FileSystems.exists(f"{base}/nope"))
print("checksum (ETag?):", FileSystems.checksum(f"{base}/a/one.jpg"))
fs = FileSystems.get_filesystem(base)
print("filesystem:", type(fs).__name__, "client:", type(fs._s3client if hasattr(fs, "_s3client") else None).__name__)
FileSystems.rename([f"{base}/three.txt"], [f"{base}/four.txt"])
print("rename ok:", FileSystems.exists(f"{base}/four.txt"), not FileSystems.exists(f"{base}/three.txt"))
FileSystems.delete([f"{base}/a"])
print("delete folder prefix: remaining", [m.path.removeprefix(base) for m in FileSystems.match([f"{base}/**"])[0].metadata_list])
