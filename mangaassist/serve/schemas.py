"""Request and response bodies of ``POST /v1/classify``, and the checks pydantic cannot state.

The pydantic models give FastAPI its OpenAPI schema and reject wrong types and unknown
fields; :func:`check_texts` applies the limits that depend on settings (empty text, length,
item count, control characters, lone surrogates), each as an :class:`ApiError` that names the
field and the limit.
"""

from __future__ import annotations

import unicodedata

from pydantic import BaseModel, ConfigDict, Field, StrictStr

# Tab, newline and carriage return are whitespace people paste; other C0/C1 controls are not.
_ALLOWED_CONTROLS = {"\t", "\n", "\r"}


class ApiError(Exception):
    """An error answer: HTTP status, a machine code, the field, the message, the limit."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.field, self.limit = field, limit

    def body(self) -> dict:
        """``{"error": {...}}``, the shape of every error answer."""
        err = {"status": self.status, "code": self.code, "message": self.message}
        if self.field is not None:
            err["field"] = self.field
        if self.limit is not None:
            err["limit"] = self.limit
        return {"error": err}


class ClassifyRequest(BaseModel):
    """One message (``text``) or several (``texts``), never both."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "where is my order"}]},
    )
    text: StrictStr | None = Field(None, description="one message")
    texts: list[StrictStr] | None = Field(None, description="several messages, answered in order")


class SecondaryIntent(BaseModel):
    """Another intent the message asks for, besides ``intent``."""

    intent: str
    probability: float = Field(description="sigmoid(secondary_logits)[intent], no temperature")


class Answer(BaseModel):
    """The answer for one message."""

    intent: str
    confidence: float = Field(description="calibrated: softmax(logits / T)[intent]")
    top_k: list[tuple[str, float]]
    fallback: bool
    fallback_reason: str | None = Field(
        description="low_confidence (below the intent's threshold) or ambiguous (top-1 minus "
        "top-2 under the margin: ask the user to clarify); null when routed"
    )
    route: str = Field(description="the downstream service, or clarify_or_fallback")
    secondary_intents: list[SecondaryIntent] = Field(
        default_factory=list,
        description="the other intents of a multi-ask message, at or above the model's "
        "threshold (never the intent itself unless the bundle's mask_primary is off), most "
        "probable first; present only when the "
        "model has the secondary-intent head (GET /v1/model: manifest.secondary), where [] "
        "means none; absent otherwise, which reads as []",
    )
    model_version: str
    request_id: str
    latency_ms: float
    tokens: int


class BatchAnswer(BaseModel):
    """The answers for a ``texts`` request, in order."""

    results: list[Answer]
    model_version: str
    request_id: str
    latency_ms: float


def _bad_char(text: str) -> tuple[int, str] | None:
    """(position, description) of the first control character or lone surrogate, or None."""
    for i, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            return i, f"a lone surrogate U+{ord(ch):04X} (not valid Unicode text)"
        if ch not in _ALLOWED_CONTROLS and unicodedata.category(ch) == "Cc":
            return i, f"the control character U+{ord(ch):04X}"
    return None


def check_texts(req: ClassifyRequest, *, max_chars: int, max_items: int, truncate: bool) -> list:
    """The request's messages after the limits, or an :class:`ApiError`.

    Returns:
        The messages (cut to ``max_chars`` when ``truncate``), in order.
    """
    if (req.text is None) == (req.texts is None):
        raise ApiError(422, "text_or_texts", 'send exactly one of "text" or "texts"', "text")
    single = req.text is not None
    texts = [req.text] if single else list(req.texts or [])
    if not texts:
        raise ApiError(422, "empty_list", '"texts" is empty: send at least one message', "texts")
    if len(texts) > max_items:
        raise ApiError(
            413,
            "too_many_items",
            f"{len(texts)} messages; send at most {max_items} per request",
            "texts",
            max_items,
        )
    out = []
    for i, text in enumerate(texts):
        where = "text" if single else f"texts[{i}]"
        if not text.strip():
            raise ApiError(422, "empty_text", f"{where} is empty or only whitespace", where)
        bad = _bad_char(text)
        if bad is not None:
            raise ApiError(
                422, "invalid_character", f"{where} holds {bad[1]} at position {bad[0]}", where
            )
        if len(text) > max_chars:
            if not truncate:
                raise ApiError(
                    413,
                    "text_too_long",
                    f"{where} has {len(text)} characters; the limit is {max_chars}",
                    where,
                    max_chars,
                )
            text = text[:max_chars]
        out.append(text)
    return out
