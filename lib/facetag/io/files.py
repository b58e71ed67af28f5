"""Files anywhere facetag reads and writes: local paths, or any Beam FileSystems URI (``gs://``, ``s3://``).

Local files are written to a temporary name beside the target and renamed over it, so a reader
sees the old file or the new one, never a part; an object store replaces an object whole on upload,
which gives the same guarantee.
"""

import contextlib
import os
import shutil
import threading
import uuid

_BLOCK = 1 << 20


def is_remote(path):
    """True for a URI with a scheme (``gs://b/x``, ``s3://b/x``); False for a local path."""
    return "://" in path


def filesystems(path=None):
    """Beam's ``FileSystems``, usable outside a pipeline too; ``path``, the one about to be used, is checked
    to be reachable (:func:`check_reachable`).

    A pipeline hands its options to FileSystems; before one runs (or in a command that runs none),
    ``s3://`` refuses to work without options ("Must provide one of client or options"), so empty ones are
    set: the endpoint and credentials come from the standard ``AWS_*`` variables either way.
    """
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.value_provider import RuntimeValueProvider

    if FileSystems._pipeline_options is None and RuntimeValueProvider.runtime_options is None:
        from apache_beam.options.pipeline_options import PipelineOptions

        FileSystems.set_options(PipelineOptions([]))
    _share_s3_clients()
    if path is not None:
        check_reachable(path)
    return FileSystems


_reached = set()


def check_reachable(path):
    """Raise FaceTagError at once when this process cannot reach the ``s3://`` bucket of ``path`` with its
    settings: one request, no retry, a short timeout, once per process and bucket. Beam's own S3 calls retry
    a refused connection or a missing credential with backoff for many minutes before they fail, and on a
    cluster's worker that is a job that hangs. Other paths pass."""
    if not path.startswith("s3://"):
        return
    from apache_beam.io.filesystems import FileSystems

    settings = _s3_settings(FileSystems._pipeline_options or {})
    bucket = path.removeprefix("s3://").split("/", 1)[0]
    key = (os.getpid(), bucket, settings)
    if key in _reached:
        return
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    from facetag.errors import FaceTagError

    access_key, secret, token, endpoint, region = settings[:5]
    client = boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key, aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=30))
    try:
        client.list_objects_v2(Bucket=bucket, MaxKeys=1)
    except (BotoCoreError, ClientError) as e:
        raise FaceTagError(f"cannot reach s3://{bucket} (at {endpoint or 'AWS'}) from {os.uname().nodename}: {e}. "
                           "Check the object store's address (--s3_endpoint_url, AWS_ENDPOINT_URL) and the "
                           "credentials of the machine that runs this (AWS_ACCESS_KEY_ID, ...)") from None
    _reached.add(key)


_shared_lock = threading.Lock()


def _share_s3_clients():
    """Make Beam's S3 file system reuse one boto3 client per process and settings.

    Beam 2.77 builds a new boto3 session and client for every call (every listing, every photo read),
    and botocore loads its service model anew for each: 0.1 s on a quiet machine, 0.5 s under load,
    more than half of an unchanged re-run's time. boto3 clients are thread-safe, so one serves all.
    """
    try:
        from apache_beam.io.aws.clients.s3 import boto3_client
    except ImportError:  # apache-beam without its aws extra: no s3://
        return
    original = boto3_client.Client.__init__
    if getattr(original, "facetag_shared", False):
        return
    shared = {}

    def __init__(self, options):
        key = (os.getpid(), _s3_settings(options))
        with _shared_lock:
            if key not in shared:
                original(self, options)
                shared[key] = {**vars(self)}  # the client, and the fresh state of a download
                return
        self.__dict__.update(shared[key])

    __init__.facetag_shared = True
    with _shared_lock:
        if not getattr(boto3_client.Client.__init__, "facetag_shared", False):
            boto3_client.Client.__init__ = __init__


def _s3_settings(options):
    from apache_beam.options.pipeline_options import PipelineOptions, S3Options

    names = ("s3_access_key_id", "s3_secret_access_key", "s3_session_token", "s3_endpoint_url", "s3_region_name",
             "s3_api_version", "s3_verify", "s3_disable_ssl")
    if isinstance(options, PipelineOptions):
        options = options.view_as(S3Options)
        values = tuple(getattr(options, name, None) for name in names)
    else:
        values = tuple(options.get(name) for name in names)
    return values + tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))


def join(base, *parts):
    """``base/part/...`` for local paths and URIs alike (facetag writes '/' in both)."""
    return "/".join([base.rstrip("/"), *parts])


@contextlib.contextmanager
def replaced_atomically(path, suffix=".tmp"):
    """Yield a temporary local path beside ``path``; when the block succeeds it replaces ``path`` at once.

    ``suffix`` ends the temporary name, for writers that insist on a file name ending (NumPy's ``.npz``).
    ``path``'s folder must exist: a writer whose folder was removed under it (a finished run's progress
    folder) gets FileNotFoundError rather than the folder back.
    """
    tmp = f"{path}.{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def write_atomically(path, data):
    """Replace ``path`` (local or remote) with ``data`` (bytes, or text written as UTF-8) at once."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if is_remote(path):
        with filesystems(path).create(path) as f:
            f.write(data)
        return
    with replaced_atomically(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def read_bytes(path):
    """The whole file at ``path`` (local or remote); FileNotFoundError when there is none."""
    if not is_remote(path):
        with open(path, "rb") as f:
            return f.read()
    fs = filesystems(path)
    if not fs.exists(path):
        raise FileNotFoundError(path)
    with fs.open(path) as f:
        return f.read()


def copy_file(source, target):
    """Copy ``source`` to ``target``, each local or remote, in blocks; a local target is replaced at once (its
    folder made if needed)."""
    if not is_remote(source) and not is_remote(target):  # no Beam: importing it costs half a second
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        with replaced_atomically(target) as tmp:
            shutil.copyfile(source, tmp)
        return
    FileSystems = filesystems(source if is_remote(source) else target)
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(FileSystems.open(source) if is_remote(source) else open(source, "rb"))
        if is_remote(target):
            dst = stack.enter_context(FileSystems.create(target))
        else:  # the target's folder is made, as object stores and Beam's local file system do
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            dst = stack.enter_context(open(stack.enter_context(replaced_atomically(target)), "wb"))
        shutil.copyfileobj(src, dst, _BLOCK)


def delete_tree(path):
    """Delete the folder (or prefix of objects) ``path`` and everything below it; nothing if it is absent."""
    if not is_remote(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    fs = filesystems(path)
    # An object store has no folders: "prefix/" names every object below it ("prefix" alone names none,
    # and exists() is False for it); a sibling "prefix2/..." is left alone.
    prefix = path.rstrip("/") + "/"
    if fs.match([prefix + "**"])[0].metadata_list:
        fs.delete([prefix])


def file_sizes(folder):
    """``{path: bytes}`` of every file below ``folder`` (local or remote), from one listing."""
    if not is_remote(folder):
        return {os.path.join(where, name): os.path.getsize(os.path.join(where, name))
                for where, _, names in os.walk(folder) for name in names}
    listed = filesystems(folder).match([folder.rstrip("/") + "/**"])[0].metadata_list
    return {m.path: m.size_in_bytes for m in listed}
