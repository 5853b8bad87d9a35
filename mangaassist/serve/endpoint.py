"""``POST /v1/classify``: bytes in, answer out, shared by the fast path and the FastAPI route.

:func:`classify` does the whole request after the headers: parse and type-check the body
with the pydantic schema (in Rust, ``model_validate_json``), apply the limits, ask the
runtime, build the answers, hand one prediction-log record per message to the writer. Two
callers frame it: the FastAPI route (``fast_path: false``) and
:class:`~mangaassist.serve.guard.Guard`, which answers this one route in plain ASGI before
FastAPI's routing, dependency and response layers (about half a millisecond of CPU a request
on this machine's cores, measured in ``experiments/serving/``). Same function, same answers;
the tests run both.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime

from pydantic import ValidationError

from mangaassist.serve.runtime import Runtime
from mangaassist.serve.schemas import ApiError, ClassifyRequest, check_texts

logger = logging.getLogger("mangaassist.serve")
PUBLIC = ("intent", "confidence", "top_k", "fallback", "fallback_reason", "route")
_HINTS = {
    "extra_forbidden": "unknown field {field!r}; send only text or texts",
    "string_type": "{field} must be a string",
    "list_type": "{field} must be a list of strings",
    "model_type": 'the body must be a JSON object such as {{"text": "hi"}}',
    "model_attributes_type": 'the body must be a JSON object such as {{"text": "hi"}}',
    "dict_type": 'the body must be a JSON object such as {{"text": "hi"}}',
    "missing": 'the body is missing: send {{"text": "..."}} or {{"texts": [...]}}',
}


def validation_error(errors: list[dict]) -> ApiError:
    """The first pydantic (or FastAPI) validation error as an :class:`ApiError`."""
    first = errors[0] if errors else {}
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
    kind = first.get("type", "invalid")
    if kind == "json_invalid":
        return ApiError(400, "malformed_json", f"body is not valid JSON: {first.get('msg')}")
    hint = _HINTS.get(kind, "{field}: " + str(first.get("msg", "invalid value")).replace("{", "("))
    if kind in ("model_type", "model_attributes_type", "dict_type"):  # one name, either parser
        kind = "not_an_object"
    return ApiError(422, kind, hint.format(field=field), field)


def parse(raw: bytes) -> ClassifyRequest:
    """The request body, type-checked; ApiError 400/422 otherwise."""
    try:
        return ClassifyRequest.model_validate_json(raw)
    except ValidationError as err:
        errors = err.errors()
    if errors and errors[0]["type"] == "json_invalid":
        # Rust's parser refuses lone surrogates ("\ud800"); Python's json reads them, and the
        # limits below then name the character instead of a bare parse error.
        try:
            return ClassifyRequest.model_validate(json.loads(raw))
        except ValueError:
            pass
        except ValidationError as err:
            errors = err.errors()
    raise validation_error(errors)


async def classify(rt: Runtime, raw: bytes, request_id: str | None, t0: float) -> tuple:
    """(answer dict, headers) for one request body; raises ApiError for a refused one.

    Args:
        rt: the process's runtime.
        raw: the request body.
        request_id: the caller's ``X-Request-ID``, or None for a fresh one.
        t0: ``time.perf_counter()`` when the request arrived (``latency_ms`` counts from it).
    """
    body = parse(raw)
    s = rt.settings
    texts = check_texts(body, max_chars=s.max_chars, max_items=s.max_items, truncate=s.truncate)
    rid = request_id or uuid.uuid4().hex
    version, answers = await rt.classify(texts)  # ApiError(503) when the queue is full
    latency_ms = (time.perf_counter() - t0) * 1000
    ts = datetime.now(UTC).isoformat()
    results = []
    for i, (text, a) in enumerate(zip(texts, answers, strict=True)):
        public = {k: a[k] for k in PUBLIC}
        if "secondary_intents" in a:  # only a model with the secondary head answers them
            public["secondary_intents"] = a["secondary_intents"]
        public["model_version"] = version
        public["request_id"] = rid
        public["latency_ms"] = round(latency_ms, 3)
        public["tokens"] = a["tokens"]
        results.append(public)
        rt.record(ts, rid, i, text, a, latency_ms, version)
    rt.score_shadow(texts, rid, ts)  # off the critical path: the answer below does not wait
    if logger.isEnabledFor(logging.DEBUG):
        first = answers[0]
        logger.debug(
            "[SERVE] request_id=%s n=%d intent=%s confidence=%.3f latency_ms=%.2f "
            "queue_ms=%.2f batch=%d model_version=%s",
            rid, len(texts), first["intent"], first["confidence"], latency_ms,
            first["queue_ms"], first["batch"], version,
        )  # fmt: skip
    headers = {"X-Request-ID": rid, "X-Model-Version": version}
    if body.text is not None:
        return results[0], headers
    out = {"results": results, "model_version": version, "request_id": rid,
           "latency_ms": round(latency_ms, 3)}  # fmt: skip
    return out, headers
