"""The review server's routes: the page, its JSON API under ``/api/``, thumbnails and photos.

The API (the page's only way to read and write; README "Review page" documents it for scripts):

    GET  /api/page       everything the page draws: sections, their order, names, summary
    GET  /api/clusters   {"clusters": [{"id", "size", "faces": [face ids]}]}, largest first
    POST /api/name       {"cluster": ID | "clusters": [...] | "face": FACE | "faces": [...], "name": NAME,
                          "merge": true when NAME is already a person}
    POST /api/not        {"face": FACE | "faces": [...], "name": NAME (default: who each face is shown as)}
    POST /api/confirm    {"face": FACE | "faces": [...]}: they are who they are shown as
    POST /api/hide       {"cluster(s)" | "face(s)" | "people"}; POST /api/show takes them back
    POST /api/merge      {"clusters": [INTO, ID, ...]} or {"people": [INTO, NAME, ...]}
    POST /api/undo       takes back the last action taken through this server

A write answers the page's update: ``{"done", "summary", "order", "sections" (those that changed),
"removed", "names", "undo"}``. Errors are ``{"error": "..."}``: 400 bad request, 404 unknown cluster,
face or person (with ``"id"``), 409 a name that exists without ``merge`` (``"exists": true``), another
run writing the store (``"busy": true``) or nothing to undo. Requests are served one at a time: the
board (facetag.archive.review_board) is in memory and each write holds the store's lock.
"""

import json
import logging
import mimetypes
import os
import threading
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from facetag.archive.lock import StoreBusyError
from facetag.archive.naming import UnknownFaceError
from facetag.archive.review import thumb_name, write_photo_thumbnails
from facetag.archive.review_board import NameExistsError, NothingToUndoError
from facetag.errors import FaceTagError, ImageError
from facetag.io.files import is_remote, read_bytes
from facetag.io.logs import log_file

log = logging.getLogger("facetag.web")
#: path -> (package, file, type); the static review page's stylesheet and common script are shared, not copied.
ASSETS = {"/": ("facetag.web", "assets/index.html", "text/html; charset=utf-8"),
          "/app.js": ("facetag.web", "assets/app.js", "text/javascript; charset=utf-8"),
          "/app.css": ("facetag.web", "assets/app.css", "text/css; charset=utf-8"),
          "/review.css": ("facetag.archive", "review_assets/review.css", "text/css; charset=utf-8"),
          "/common.js": ("facetag.archive", "review_assets/common.js", "text/javascript; charset=utf-8")}
WRITES = ("name", "not", "confirm", "hide", "show", "merge", "undo")
TARGET_FIELDS = {"cluster": int, "clusters": int, "face": str, "faces": str, "people": str}


def review_app(board, thumbs_dir):
    """The Starlette app serving ``board`` (a ReviewBoard), cropping thumbnails into ``thumbs_dir`` as asked."""
    serialised = threading.Lock()

    async def with_board(action):
        """``action()`` on the board, read afresh if another process committed, one at a time, in a worker
        thread: a page's data or a write takes up to a second on a big archive, and the event loop serves
        the thumbnails meanwhile."""
        def locked():
            with serialised:
                if board.changed_elsewhere():
                    board.load()
                return action()
        return await run_in_threadpool(locked)

    async def page(request):
        return _json(await with_board(board.page))

    async def clusters(request):
        return _json(await with_board(lambda: {"clusters": board.clusters()}))

    async def write(request):
        verb = request.path_params["verb"]
        if verb not in WRITES:
            return _error(404, f"no action {verb!r}; the actions are {', '.join(WRITES)}")
        try:
            body = json.loads(await request.body() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return _error(400, f"the request is not JSON: {e}")
        if not isinstance(body, dict):
            return _error(400, "send a JSON object")
        try:
            args = _targets(body)
            return _json(await with_board(lambda: _act(board, verb, args, body)))
        except UnknownFaceError as e:
            return _error(404, str(e), id=e.missing)
        except NameExistsError as e:
            return _error(409, str(e), exists=True)
        except StoreBusyError as e:
            return _error(409, str(e), busy=True)
        except NothingToUndoError as e:
            return _error(409, str(e))
        except FaceTagError as e:
            return _error(400, str(e))

    def thumbnail(request):
        face_id = request.path_params["face_id"]
        target = os.path.join(thumbs_dir, thumb_name(face_id))
        if not os.path.exists(target):
            with serialised:
                face = board.faces.get(face_id)
                if face is None:
                    return _error(404, f"no face {face_id}", id=face_id)
                photo = board.photo_path(face.photo)
                siblings = [(f.face_id, f.box) for f in board.faces_of_photo(face.photo)]
            try:
                write_photo_thumbnails(photo, siblings, thumbs_dir)
            except ImageError as e:
                return _error(404, f"no thumbnail: {photo}: {e.reason}")
        return FileResponse(target, media_type="image/jpeg", headers={"cache-control": "private, max-age=86400"})

    def photo(request):
        index = request.path_params["index"]
        with serialised:
            if index >= len(board.photos):
                return _error(404, f"no photo {index}")
            path = board.photo_path(index)
        media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        try:
            if not is_remote(path):
                if not os.path.isfile(path):  # FileResponse would fail only while answering: a 500
                    raise FileNotFoundError(path)
                return FileResponse(path, media_type=media_type)
            return Response(read_bytes(path), media_type=media_type)
        except (FileNotFoundError, OSError) as e:
            return _error(404, f"cannot read {path}: {e}")

    def asset(request):
        package, name, media_type = ASSETS[request.url.path]
        body = resources.files(package).joinpath(name).read_bytes()
        return Response(body, media_type=media_type, headers={"cache-control": "no-store"})

    async def failed(request, exc):
        # The trace to the log file (the root logger's), one line for the user.
        logging.getLogger().error("review server: %s %s", request.method, request.url.path,
                                  exc_info=(type(exc), exc, exc.__traceback__))
        log.error("facetag: error: the review server failed on %s %s: %s: %s (the full trace is in %s)",
                  request.method, request.url.path, type(exc).__name__, exc, log_file())
        return _error(500, f"the server failed: {type(exc).__name__}: {exc}")

    routes = [Route(path, asset) for path in ASSETS] + [Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api/page", page), Route("/api/clusters", clusters),
        Route("/api/{verb}", write, methods=["POST"]),
        Route("/thumbs/{face_id}.jpg", thumbnail), Route("/photos/{index:int}", photo)]
    return Starlette(routes=routes, exception_handlers={Exception: failed})


def _targets(body):
    """The request's clusters, faces and people, type-checked: ``{"clusters": [...], "faces": [...], ...}``."""
    args = {}
    for field, kind in TARGET_FIELDS.items():
        if field not in body:
            continue
        single = field in ("cluster", "face")
        values = [body[field]] if single else body[field]
        if not isinstance(values, list) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
            what = ("an integer" if single else "a list of integers") if kind is int else \
                ("a string" if single else "a list of strings")
            raise FaceTagError(f"\"{field}\" must be {what}")
        plural = field + "s" if single else field
        args[plural] = args.get(plural, []) + values
    if "name" in body and not isinstance(body["name"], str):
        raise FaceTagError("\"name\" must be a string")
    return args


def _act(board, verb, args, body):
    name = body.get("name")
    if verb == "name":
        if name is None:
            raise FaceTagError("say the \"name\"")
        return board.name(name, clusters=args.get("clusters", ()), faces=args.get("faces", ()),
                          merge=body.get("merge") is True)
    if verb == "not":
        return board.reject(faces=args.get("faces", ()), name=name)
    if verb == "confirm":
        return board.confirm(faces=args.get("faces", ()))
    if verb in ("hide", "show"):
        return board.hide(clusters=args.get("clusters", ()), faces=args.get("faces", ()),
                          people=args.get("people", ()), show=verb == "show")
    if verb == "merge":
        return board.merge(clusters=args.get("clusters", ()), people=args.get("people", ()))
    return board.undo()


def _json(data):
    return JSONResponse(data, headers={"cache-control": "no-store"})


def _error(status, message, **extra):
    return JSONResponse({"error": message, **extra}, status_code=status, headers={"cache-control": "no-store"})
