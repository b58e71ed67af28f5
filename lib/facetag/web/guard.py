"""What a local server that writes data must refuse, as one ASGI middleware (Jupyter server is the model).

- **No token**: every request but the first needs the server's token, from the ``Authorization: Bearer``
  header (scripts) or the cookie the page gets when it is opened at ``/?token=TOKEN`` (HttpOnly,
  SameSite=Strict: the page's scripts never see it, other sites' requests never carry it): 401.
- **A foreign Host**: a request whose ``Host`` is not this server's loopback address and port (DNS
  rebinding: a web page whose name resolves to 127.0.0.1): 403.
- **A foreign Origin**: a write (any method but GET and HEAD) from another origin, by its ``Origin`` or
  ``Sec-Fetch-Site`` header (CSRF): 403. A write must also be JSON (``Content-Type: application/json``,
  which no HTML form can send): 415.
- Every response carries a Content-Security-Policy that runs only the server's own script and style and
  loads nothing from elsewhere, and the page shows every name as text (facetag.web.assets/app.js).

Starlette's TrustedHostMiddleware and CORSMiddleware are not used: the first ignores the port, the
second relaxes rather than refuses.
"""

import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

COOKIE = "facetag_token"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SAFE_METHODS = ("GET", "HEAD")


class Guard:
    """ASGI middleware around ``app`` for a server at ``127.0.0.1:port`` with ``token``; see the module docstring."""

    def __init__(self, app, token, port):
        self.app = app
        self.token = token
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self.origins = {f"http://{h}" for h in self.hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            return await _refuse(send, *refusal)
        if scope["path"] == "/" and "token" in parse_qs(scope.get("query_string", b"").decode()):
            return await self._enter(send)
        return await self.app(scope, receive, _with_headers(send))

    def refusal(self, scope, headers):
        """``(status, message)`` when the request must be refused, else None."""
        if headers.get("host", "") not in self.hosts:
            return 403, (f"refused: Host {headers.get('host', '(none)')!r} is not this server "
                         f"({sorted(self.hosts)[0]}); open the address facetag printed")
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and origin not in self.origins:
                return 403, f"refused: a write from {origin}, not from this server's page"
            if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                return 403, "refused: a write from another site"
            if headers.get("content-type", "").split(";")[0].strip() != "application/json":
                return 415, "refused: send JSON (Content-Type: application/json)"
        if not self.authorised(scope, headers):
            return 401, ("refused: no valid token; open the address 'facetag review --serve' printed "
                         "(http://127.0.0.1:PORT/?token=...), or send 'Authorization: Bearer TOKEN'")
        return None

    def authorised(self, scope, headers):
        given = []
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip())
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is no token
            pass
        if COOKIE in cookie:
            given.append(cookie[COOKIE].value)
        if scope["path"] == "/":
            given += parse_qs(scope.get("query_string", b"").decode()).get("token", [])
        return any(secrets.compare_digest(g.encode(), self.token.encode()) for g in given)

    async def _enter(self, send):
        """The page opened with its token: keep the token in a cookie and drop it from the address bar."""
        await send({"type": "http.response.start", "status": 303, "headers": _security_headers() + [
            (b"location", b"/"),
            (b"set-cookie", f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode())]})
        await send({"type": "http.response.body", "body": b""})


def _security_headers():
    return [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
            (b"cross-origin-resource-policy", b"same-origin")]


def _with_headers(send):
    async def sending(message):
        if message["type"] == "http.response.start":
            names = {k.lower() for k, _ in message.get("headers", [])}
            message = dict(message, headers=list(message.get("headers", [])) + [
                h for h in _security_headers() if h[0] not in names])
        await send(message)
    return sending


async def _refuse(send, status, message):
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": _security_headers() + [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
