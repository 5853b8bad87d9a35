"""The outermost layer of every request: limits that need no parsing, and request metrics.

Pure ASGI (no ``BaseHTTPMiddleware``, which costs a task and a copy per request). For a POST
it answers 415 for a body that is not JSON and 413 for a declared ``Content-Length`` over the
limit before the app reads anything; a body without a length (chunked) is read here up to
the limit (413 past it) and replayed to the app. It measures every request's duration and
status, so shed, refused and failed requests are in the metrics too.
"""

from __future__ import annotations

import json
import time

from mangaassist.serve.metrics import ServeMetrics

KNOWN_ROUTES = ("/v1/classify", "/v1/model", "/healthz", "/readyz", "/metrics")


async def _answer(send, status: int, code: str, message: str, limit: int | None = None) -> None:
    err = {"status": status, "code": code, "message": message}
    if limit is not None:
        err["limit"] = limit
    body = json.dumps({"error": err}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: content type and body-size limits, in-flight gauge, latency, status."""

    def __init__(self, app, metrics: ServeMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = int(max_body_bytes)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        scope["mangaassist.t0"] = t0
        path = scope["path"]
        route = path if path in KNOWN_ROUTES else "other"
        status = 500
        m = self.metrics

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        m.in_flight.inc()
        try:
            if scope["method"] == "POST" and route != "other":
                refused = self._refuse(scope)
                if refused is not None:
                    await _answer(send_status, *refused)
                    scope["mangaassist.error_code"] = refused[1]
                    return
                if b"content-length" not in dict(scope["headers"]):
                    receive = await self._buffered(receive)
                    if receive is None:
                        scope["mangaassist.error_code"] = "body_too_large"
                        msg = f"body over {self.max_body_bytes} bytes"
                        await _answer(send_status, 413, "body_too_large", msg, self.max_body_bytes)
                        return
            await self.app(scope, receive, send_status)
        finally:
            m.in_flight.dec()
            m.request_seconds.labels(route).observe(time.perf_counter() - t0)
            m.requests.labels(route, str(status)).inc()
            if status >= 400:
                m.errors.labels(str(status), scope.get("mangaassist.error_code", "")).inc()

    def _refuse(self, scope) -> tuple[int, str, str, int | None] | None:
        """(status, code, message, limit) for a request refused on its headers alone."""
        headers = dict(scope["headers"])
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if ctype != b"application/json":
            shown = ctype.decode("latin-1") or "none"
            return (
                415,
                "unsupported_media_type",
                f"content-type {shown}; send application/json",
                None,
            )
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            msg = f"body of {int(length)} bytes; the limit is {self.max_body_bytes}"
            return 413, "body_too_large", msg, self.max_body_bytes
        return None

    async def _buffered(self, receive):
        """Read a length-less body up to the limit; a receive that replays it, or None."""
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return _replay([message])
            chunks.append(message)
            seen += len(message.get("body", b""))
            if seen > self.max_body_bytes:
                return None
            if not message.get("more_body", False):
                return _replay(chunks)


def _replay(messages: list[dict]):
    queue = list(messages)

    async def receive():
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    return receive
