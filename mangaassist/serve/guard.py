"""The outermost layer of every request: limits that need no parsing, metrics, the fast path.

Pure ASGI (no ``BaseHTTPMiddleware``, which costs a task and a copy per request). For a POST
it answers 415 for a body that is not JSON and 413 for a body over the limit (declared in
``Content-Length``, or counted as a chunked body arrives) before the app parses anything. It
measures every request's duration and status, so shed, refused and failed requests are in
the metrics too. With ``fast_path`` it answers ``POST /v1/classify`` itself through
:func:`mangaassist.serve.endpoint.classify`; every other request goes on to FastAPI.
"""

from __future__ import annotations

import json
import time

from mangaassist.serve import endpoint
from mangaassist.serve.schemas import ApiError

KNOWN_ROUTES = ("/v1/classify", "/v1/model", "/healthz", "/readyz", "/metrics")
KNOWN_ROUTES += ("/admin/deploy", "/admin/rollback", "/admin/shadow")
JSON_BODY = ("/v1/classify", "/admin/deploy", "/admin/shadow")  # POSTs that carry a body
_JSON = (b"content-type", b"application/json")


async def _send_json(send, status: int, body: dict, headers: dict | None = None) -> None:
    data = json.dumps(body, ensure_ascii=False).encode()
    raw = [_JSON, (b"content-length", b"%d" % len(data))]
    raw += [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


class Guard:
    """ASGI middleware: limits, in-flight gauge, latency and status metrics, the fast path.

    Args:
        app: the FastAPI app (everything the guard does not answer itself).
        state: the app's ``state`` (``settings``, ``metrics``; ``runtime`` once started).
        fast_path: answer ``POST /v1/classify`` here.
    """

    def __init__(self, app, state, fast_path: bool = True) -> None:
        self.app = app
        self.state = state
        self.fast_path = fast_path
        self.max_body_bytes = int(state.settings.max_body_bytes)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        scope["mangaassist.t0"] = t0
        route = scope["path"] if scope["path"] in KNOWN_ROUTES else "other"
        status = 500
        m = self.state.metrics

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        m.in_flight.inc()
        try:
            if scope["method"] == "POST" and route in JSON_BODY:
                await self._post(scope, receive, send_status, route, t0)
            else:
                await self.app(scope, receive, send_status)
        finally:
            m.in_flight.dec()
            m.request_seconds.labels(route).observe(time.perf_counter() - t0)
            m.requests.labels(route, str(status)).inc()
            if status >= 400:
                m.errors.labels(str(status), scope.get("mangaassist.error_code", "")).inc()

    async def _post(self, scope, receive, send, route: str, t0: float) -> None:
        headers = dict(scope["headers"])
        try:
            self._check_headers(headers)
            if self.fast_path and route == "/v1/classify":
                raw = await self._read(receive)
                rid = headers.get(b"x-request-id")
                rt = self.state.runtime
                out, extra = await endpoint.classify(rt, raw, rid and rid.decode("latin-1"), t0)
                await _send_json(send, 200, out, extra)
                return
            if b"content-length" not in headers:  # chunked: read it here, under the limit
                receive = _replay(await self._read(receive))
        except ApiError as err:
            scope["mangaassist.error_code"] = err.code
            retry = {"Retry-After": self.state.settings.retry_after_s} if err.status == 503 else {}
            await _send_json(send, err.status, err.body(), retry)
            return
        await self.app(scope, receive, send)

    def _check_headers(self, headers: dict) -> None:
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if ctype != b"application/json":
            shown = ctype.decode("latin-1") or "none"
            msg = f"content-type {shown}; send application/json"
            raise ApiError(415, "unsupported_media_type", msg, "content-type")
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            msg = f"body of {int(length)} bytes; the limit is {self.max_body_bytes}"
            raise ApiError(413, "body_too_large", msg, "body", self.max_body_bytes)

    async def _read(self, receive) -> bytes:
        """The whole body, refusing it (413) once it passes the limit."""
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                raise ApiError(400, "client_disconnected", "the client closed the request")
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.max_body_bytes:
                msg = f"body over {self.max_body_bytes} bytes"
                raise ApiError(413, "body_too_large", msg, "body", self.max_body_bytes)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
