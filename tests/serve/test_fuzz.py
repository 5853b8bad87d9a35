"""Generated requests never get a 5xx: every answer is a result or a JSON error (hypothesis)."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serve.test_app import running

# Text with every kind of character a client can send: controls, surrogates, emoji, kana.
texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
bodies = st.one_of(
    st.fixed_dictionaries({"text": values}),
    st.fixed_dictionaries({"texts": st.lists(values, max_size=5)}),
    st.dictionaries(st.sampled_from(["text", "texts", "lang", ""]), values, max_size=3),
    values,
)
raw = st.binary(max_size=200)


@pytest.fixture(scope="module")
def url(tiny_bundle, tmp_path_factory):
    with running(tiny_bundle, tmp_path_factory.mktemp("fuzz"), "max_items=4") as (base, _):
        yield base


def _check(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    body = r.json()
    if r.status_code >= 400:
        err = body["error"]
        assert err["status"] == r.status_code and err["message"] and err["code"]
    else:
        assert "intent" in body or "results" in body


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_generated_json_bodies_never_get_a_5xx(url, body):
    data = json.dumps(body, ensure_ascii=True).encode()  # ensure_ascii: lone surrogates as \\ud800
    _check(
        httpx.post(f"{url}/v1/classify", content=data, headers={"content-type": "application/json"})
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=raw,
    ctype=st.sampled_from(
        ["application/json", "text/plain", "", "application/json; charset=latin-1"]
    ),
)
def test_generated_bytes_and_content_types_never_get_a_5xx(url, data, ctype):
    headers = {"content-type": ctype} if ctype else {}
    _check(httpx.post(f"{url}/v1/classify", content=data, headers=headers))
