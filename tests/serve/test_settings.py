"""Serve settings come from conf/serve/; outside a checkout they fail loudly, never default."""

from __future__ import annotations

import pytest

import mangaassist.serve.settings as ss
from mangaassist.errors import UserError


def test_missing_default_serve_settings_fail_loudly(tmp_path, monkeypatch):
    monkeypatch.setattr(ss, "CONF_DIR", tmp_path / "nowhere")
    with pytest.raises(UserError, match=r"nowhere/default[.]yaml: no serve settings file"):
        ss.load_serve_settings()


def test_the_default_serve_settings_load():
    assert ss.load_serve_settings().port == 8000
