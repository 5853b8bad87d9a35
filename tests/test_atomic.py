"""Atomic writes: a crash mid-write leaves the old file whole, never a truncated one."""

from __future__ import annotations

import json

import pytest

from mangaassist.atomic import replacing, write_json, write_text


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"acc": 0.9})
    with pytest.raises(RuntimeError), replacing(path) as tmp:
        tmp.write_text('{"acc": 0.')  # half written, then the process "dies"
        raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"acc": 0.9}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_text_is_written_byte_exact(tmp_path):
    write_text(tmp_path / "h.csv", "epoch,acc\r\n1,0.5\r\n")
    assert (tmp_path / "h.csv").read_bytes() == b"epoch,acc\r\n1,0.5\r\n"
