"""``facetag review STORE --serve``: the review app on uvicorn, on 127.0.0.1 only, until Ctrl-C."""

import hashlib
import os
import secrets
import socket

from facetag.archive.review_board import ReviewBoard
from facetag.errors import FaceTagError
from facetag.io.cachedir import default_cache_dir
from facetag.web.app import review_app
from facetag.web.guard import Guard

HOST = "127.0.0.1"  # never another interface: the page shows and changes a private archive


def thumbs_dir_for(store_path, out_dir=None):
    """Where the server keeps thumbnails: ``out_dir`` (a static review's folder), else a cache folder per store."""
    if out_dir:
        return out_dir
    key = hashlib.sha256(os.path.abspath(store_path).encode() if "://" not in store_path else store_path.encode())
    return os.path.join(default_cache_dir(), "review", key.hexdigest()[:16])


def serve(store_path, port=0, out_dir=None, threshold=None, on_ready=print):
    """Serve the review page of the store until interrupted; ``on_ready(url)`` is called once it listens."""
    import uvicorn

    board = ReviewBoard(store_path, threshold)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as e:
        sock.close()
        raise FaceTagError(f"cannot listen on {HOST}:{port}: {e.strerror or e}; give another --port "
                           "(or none: a free one)") from None
    port = sock.getsockname()[1]
    token = secrets.token_urlsafe(32)
    app = Guard(review_app(board, thumbs_dir_for(store_path, out_dir)), token, port)
    # uvicorn's own logging (log_config=None) goes where the CLI sends every library's: the log file.
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    original_startup = server.startup

    async def startup(sockets=None):
        await original_startup(sockets)
        on_ready(f"http://{HOST}:{port}/?token={token}")

    server.startup = startup
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down on Ctrl-C, then raises it again for its caller: done
        pass
    finally:
        sock.close()
