"""The FastAPI app: ``create_app(bundle, settings)``, the model loaded once in ``lifespan``.

Routes: ``POST /v1/classify``, ``GET /healthz`` (alive), ``GET /readyz`` (200 once the model is
loaded and warmed up), ``GET /v1/model``, ``GET /metrics`` (Prometheus) and FastAPI's
``/docs`` + ``/openapi.json``. Every error is ``{"error": {"status", "code", "message",
"field", "limit"}}``; none is a 500 unless the model itself fails.

The request path: :class:`Guard` (pure ASGI: content type, body size, in-flight gauge, latency
and status metrics) -> pydantic (types, unknown fields) -> :func:`check_texts` (limits) ->
:class:`~mangaassist.serve.batcher.MicroBatcher` (bounded queue, worker thread) -> answer,
and one prediction-log record per message handed to the background writer.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from mangaassist.serve import endpoint, switch
from mangaassist.serve.admin import Target, admin_router, read_token, resolve_target
from mangaassist.serve.endpoint import validation_error
from mangaassist.serve.guard import Guard
from mangaassist.serve.metrics import ServeMetrics
from mangaassist.serve.runtime import Runtime
from mangaassist.serve.schemas import Answer, ApiError, BatchAnswer, ClassifyRequest
from mangaassist.serve.settings import ServeSettings


def _error(err: ApiError, request: Request) -> JSONResponse:
    request.scope["mangaassist.error_code"] = err.code
    headers = {"Retry-After": str(request.app.state.settings.retry_after_s)}
    return JSONResponse(err.body(), err.status, headers=headers if err.status == 503 else None)


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return _error(validation_error(list(exc.errors())), request)


def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
    code = codes.get(exc.status_code, "http_error")
    message = {
        404: f"no route {request.url.path}; see /docs for the API",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    resp = _error(ApiError(exc.status_code, code, message), request)
    if exc.headers:
        resp.headers.update(exc.headers)
    return resp


def create_app(bundle: str | Path, settings: ServeSettings | None = None) -> FastAPI:
    """The server app for one bundle; the model loads when the app starts (lifespan).

    Example (tests use ``with TestClient(create_app(...)) as client``)::

        app = create_app("outputs/run/export", load_serve_settings(overrides=["port=8080"]))
        uvicorn.run(app, host="127.0.0.1", port=8080)
    """
    settings = settings or ServeSettings()
    metrics = ServeMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # `mangaassist serve` loads the runtime before binding the port (so a bad bundle is
        # one error line); other callers (tests, workers) load it here.
        runtime = getattr(app.state, "runtime", None) or Runtime.start(
            Path(bundle), settings, metrics
        )
        app.state.runtime = runtime
        print(runtime.start_line(), flush=True)
        if settings.shadow:
            target = Target(**{"version" if settings.registry else "bundle": settings.shadow})
            shadow = await asyncio.to_thread(resolve_target, settings, target)
            await switch.set_shadow(runtime, shadow, settings.shadow_share)
        try:
            yield
        finally:
            runtime.close()
            print(runtime.stop_line(), flush=True)

    app = FastAPI(
        title="MangaAssist intent classifier",
        version="1",
        lifespan=lifespan,
        description="Routes each chat message to one of ten intents, with calibrated confidence.",
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.add_middleware(Guard, state=app.state, fast_path=settings.fast_path)
    app.add_exception_handler(ApiError, lambda r, e: _error(e, r))
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.include_router(admin_router(read_token(settings), settings.admin_token_env))

    @app.get("/healthz")
    async def healthz() -> dict:
        """The process is alive (says nothing about the model)."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """200 once the model is loaded and warmed up, else 503."""
        rt = getattr(request.app.state, "runtime", None)
        ready = rt is not None and rt.ready
        body = {"ready": ready, "model_version": rt.version if rt else None}
        return JSONResponse(body, 200 if ready else 503)

    @app.get("/v1/model")
    async def model_info(request: Request) -> dict:
        """Version, labels, temperature, thresholds and the bundle manifest."""
        return request.app.state.runtime.describe()

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        """Prometheus text exposition of this process's metrics."""
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/v1/classify",
        response_model=Answer | BatchAnswer,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ClassifyRequest.model_json_schema()}},
            }
        },
    )
    async def classify(request: Request) -> JSONResponse:
        """Classify one message (``text``) or several (``texts``).

        With ``fast_path: true`` (the default) the Guard answers this route before FastAPI
        sees it, through the same :func:`~mangaassist.serve.endpoint.classify`.
        """
        t0 = request.scope.get("mangaassist.t0") or time.perf_counter()
        out, headers = await endpoint.classify(
            request.app.state.runtime,
            await request.body(),
            request.headers.get("x-request-id"),
            t0,
        )
        return JSONResponse(out, headers=headers)

    return app


def app_from_env():  # uvicorn --factory entry point for workers > 1
    """The app described by ``$MANGAASSIST_SERVE`` (JSON: bundle and settings)."""
    import os

    spec = json.loads(os.environ["MANGAASSIST_SERVE"])
    settings = ServeSettings(**spec["settings"])
    if settings.workers > 1:  # one log directory per process: no two writers share a file
        settings.log_dir = str(Path(settings.log_dir) / f"worker-{os.getpid()}")
    return create_app(spec["bundle"], settings)
