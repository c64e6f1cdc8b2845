"""ASGI middleware at the door: the token, then the body size, before any byte of a body is read.

A request without the token is answered 401 from its headers alone, so a stranger's large or
malformed body is never read, buffered or parsed. A body past its route's limit is refused with 413
from its declared length, or as soon as a streamed (chunked) body passes the limit. Only the upload
routes (``is_upload``) accept large bodies; every other route takes at most ``JSON_BODY_BYTES``,
small enough that FastAPI parsing it on the event loop does not stall other requests (large uploads
are parsed in a worker thread by their routes). A new route that takes large bodies belongs in
``is_upload`` and must parse off the event loop too.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from compact_sdf.service.api import API, Limits, too_large

OPEN_PATHS = frozenset({"/health"})  # the one route without a token
JSON_BODY_BYTES = 1024 * 1024  # job bodies and other small JSON requests
UNAUTHORIZED = "missing or wrong bearer token (Authorization: Bearer <token>)"


def is_upload(path: str) -> bool:
    """Routes whose body is a file or mesh arrays (bounded by ``--max-upload-mb``)."""
    return path in (f"{API}/meshes", f"{API}/meshes/arrays") or (
        path.startswith(f"{API}/models/") and path.endswith("/codes")
    )


def _header(scope: Any, name: bytes) -> bytes:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return bytes(value)
    return b""


async def send_error(send: Any, status: int, code: str, message: str, headers: dict[str, str]) -> None:
    """A JSON error answered from the middleware; ``Connection: close`` since the body is left unread."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(b"connection", b"close")] + [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class TokenGate:
    """Refuse every request but ``/health`` without ``Authorization: Bearer <token>`` before its body."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        scheme, _, given = _header(scope, b"authorization").partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.expected):
            await send_error(send, 401, "unauthorized", UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse a body past its route's limit (413): a declared one before it is read, a streamed one
    (chunked included) as soon as it passes; raised inside the route, so the JSON error handler answers."""

    def __init__(self, app: Any, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_upload_bytes if is_upload(scope.get("path", "")) else JSON_BODY_BYTES
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            await send_error(send, 413, "too_large", _over(int(declared), limit), {})
            return
        seen = 0

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(seen, limit)
            return message

        await self.app(scope, limited_receive, send)


def _over(size: int, limit: int) -> str:
    return str(too_large(size, limit).detail)
