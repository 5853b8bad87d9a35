"""``mangaassist serve`` as a real process: no torch, refusal of broken bundles, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx
import pytest

from mangaassist.cli import main
from mangaassist.errors import UserError
from mangaassist.inference.bundle import MANIFEST, file_sha256
from mangaassist.serve.predlog import read_prediction_logs
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_serving_imports_no_torch(tiny_bundle):
    code = (
        "import sys, pathlib\n"
        "import mangaassist.serve, mangaassist.serve.app, mangaassist.serve.cli\n"
        "from mangaassist.serve.metrics import ServeMetrics\n"
        "from mangaassist.serve.runtime import Runtime\n"
        "from mangaassist.serve.settings import load_serve_settings\n"
        f"s = load_serve_settings(overrides=['log_dir={tiny_bundle.parent / 'notorch-logs'}'])\n"
        f"rt = Runtime.start(pathlib.Path({str(tiny_bundle)!r}), s, ServeMetrics())\n"
        "rt.close()\n"
        "heavy = [m for m in ('torch', 'transformers', 'lightning', 'hydra') if m in sys.modules]\n"
        "print('heavy', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "heavy []" in out.stdout


def _rehash(bundle: Path, name: str) -> None:
    """Record a file's new hash, as a buggy export would have: only deeper checks catch it."""
    m = json.loads((bundle / MANIFEST).read_text())
    m["files"][name]["sha256"] = file_sha256(bundle / name)
    (bundle / MANIFEST).write_text(json.dumps(m))


def _broken(tiny_bundle: Path, tmp_path: Path, how: str) -> Path:
    bad = tmp_path / "bad"
    shutil.copytree(tiny_bundle, bad)
    if how == "hash":
        (bad / "labels.json").write_text(json.dumps(json.loads((bad / "labels.json").read_text())))
    elif how == "onnx":
        (bad / "model.onnx").write_bytes(b"\x08\x07 not a protobuf" * 100)
        _rehash(bad, "model.onnx")
    elif how == "tokenizer":
        tok = json.loads((bad / "tokenizer" / "tokenizer.json").read_text())
        tok["model"]["vocab"]["zzzz"] = len(tok["model"]["vocab"])
        (bad / "tokenizer" / "tokenizer.json").write_text(json.dumps(tok))
        _rehash(bad, "tokenizer/tokenizer.json")
    elif how == "escape":
        m = json.loads((bad / MANIFEST).read_text())
        m["files"]["../../etc/passwd"] = {"sha256": "0" * 64, "bytes": 1}
        (bad / MANIFEST).write_text(json.dumps(m))
    return bad


@pytest.mark.parametrize(
    ("how", "names"),
    [
        ("hash", "changed since export: ['labels.json']"),
        ("onnx", "model.onnx: not a loadable ONNX model"),
        ("tokenizer", "not the tokenizer the model was trained with"),
        ("escape", "points outside the bundle"),
    ],
)
def test_a_broken_bundle_is_refused_at_start_up_in_one_line(
    tiny_bundle, tmp_path, capsys, how, names
):
    bad = _broken(tiny_bundle, tmp_path, how)
    assert main(["serve", str(bad), f"port={free_port()}", f"log_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and names in err[0], err


def test_bad_settings_are_one_error_line(tiny_bundle, capsys):
    assert main(["serve", str(tiny_bundle), "max_batch_size=0"]) == 2
    assert "max_batch_size=0: must be at least 1" in capsys.readouterr().err
    assert main(["serve", str(tiny_bundle), "max_wait=3"]) == 2
    assert "max_wait" in capsys.readouterr().err


def _start(bundle: Path, logs: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mangaassist.cli", "serve", str(bundle), f"port={port}"]
    cmd += [f"log_dir={logs}", "log_privacy=text", "max_wait_ms=2"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_ready(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode()
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("server not ready in time")


async def _steady(url: str, rate: float, seconds: float) -> dict[str, int | str]:
    """Open-loop POSTs with our own request ids; status per id (or the error's name)."""
    out: dict[str, int | str] = {}
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(i: int) -> None:
            rid = f"r{i:05d}"
            try:
                async with session.post(
                    f"{url}/v1/classify",
                    json={"text": f"where is my order {i}"},
                    headers={"X-Request-ID": rid},
                ) as r:
                    await r.read()
                    out[rid] = r.status
            except (TimeoutError, aiohttp.ClientError) as err:
                out[rid] = type(err).__name__

        tasks, t0 = [], time.perf_counter()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return out


def test_sigterm_under_load_finishes_in_flight_requests_and_flushes_the_log(tiny_bundle, tmp_path):
    port, logs = free_port(), tmp_path / "logs"
    url = f"http://127.0.0.1:{port}"
    proc = _start(tiny_bundle, logs, port)
    try:
        _wait_ready(url, proc)

        async def load_then_term() -> dict:
            load = asyncio.create_task(_steady(url, rate=100, seconds=3))
            await asyncio.sleep(1.5)
            proc.send_signal(signal.SIGTERM)
            return await load

        statuses = asyncio.run(load_then_term())
        code = proc.wait(timeout=30)
        output = proc.stdout.read().decode()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 0, output
    ok = {rid for rid, s in statuses.items() if s == 200}
    assert len(ok) >= 100  # the first 1.5 s at 100 req/s were answered
    assert not {s for s in statuses.values() if isinstance(s, int) and s >= 500}
    log = read_prediction_logs(logs)
    assert log.torn_lines == 0 and log.bad_lines == 0
    logged = [r["request_id"] for r in log.records]
    assert sorted(logged) == sorted(ok)  # every answered request is logged, exactly once
    assert "[SERVE] event=start" in output and f"log_written={len(ok)}" in output


def test_serve_finds_the_bundle_of_a_run_and_of_a_registry_champion(tiny_run, tmp_path, capsys):
    from mangaassist.release.registry import Registry
    from mangaassist.serve.cli import resolve_bundle

    reg = Registry(tmp_path / "registry")
    with pytest.raises(UserError, match="no champion yet"):
        resolve_bundle(None, str(reg.root))
    version = reg.register(tiny_run)
    reg.promote(version)
    # The champion has no bundle yet: it is exported in a child process (torch stays out).
    bundle = resolve_bundle(None, str(reg.root))
    assert bundle == reg.path(version) / "export" and (bundle / MANIFEST).is_file()
    assert json.loads((bundle / MANIFEST).read_text())["model_version"] == version
    assert "exporting it first" in capsys.readouterr().out
    assert resolve_bundle(str(reg.path(version)), None) == bundle  # a run dir: its export
    with pytest.raises(UserError, match="neither a bundle"):
        resolve_bundle(str(tmp_path), None)
