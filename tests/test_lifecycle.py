"""The release flow end to end on the tiny model, with the real commands.

train -> gate -> register + promote v1 -> serve v1 with v2 in the shadow -> shadow report ->
gate v2 with shadow and load evidence -> blue/green deploy of v2 under load -> rollback,
with zero failed requests.

The tiny random model cannot reach production accuracy, so the gate settings here keep the
production structure but set the quality floors to zero, waive the significant-gain rule (v2
is the same weights as v1) and give the load gate a generous latency limit for a busy CI
machine: what is tested is the flow and its evidence, not a model's quality.
"""

from __future__ import annotations

import asyncio

import yaml

from mangaassist.cli import main
from mangaassist.release.registry import Registry
from tests.serve.test_app import running
from tests.serve.test_switch import TOKEN, _steady

GATES = {
    "require_significant_gain": False,
    "golden_floors": {"acc": 0.0, "macro_f1": 0.0, "rare_recall": 0.0},
    "latency_p95_ms": 1000.0,
    "load_p95_ms": 1000.0,
    "shadow_min_messages": 100,
    "require_shadow": True,
}


def test_train_gate_shadow_deploy_rollback(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MANGAASSIST_ADMIN_TOKEN", TOKEN)
    gates = tmp_path / "gates.yaml"
    gates.write_text(yaml.safe_dump(GATES))
    root = tmp_path / "registry"
    reg = Registry(root)
    common = ["--gates", str(gates), "--root", str(root)]

    # No champion yet: the shadow gate is required, so a first model needs its own evidence
    # path; promote v1 with require_shadow off (a first deployment has nothing to shadow).
    first = tmp_path / "first.yaml"
    first.write_text(yaml.safe_dump({**GATES, "require_shadow": False}))
    assert (
        main(["gate", str(tiny_run), "--gates", str(first), "--root", str(root), "--promote"]) == 0
    )
    assert reg.champion() == "v1"
    v2 = reg.register(tiny_run)
    capsys.readouterr()

    logs = tmp_path / "logs"
    overrides = [f"registry={root}", "shadow=v2", f"log_dir={logs}"]
    with running(_bundle(reg), tmp_path, *overrides) as (url, app):
        # Traffic with the shadow on, then a load test as the candidate's latency evidence.
        asyncio.run(_steady(url, rate=60, seconds=3, out=[]))
        assert (
            main(
                [
                    "loadtest",
                    url,
                    "--rate",
                    "50",
                    "--duration",
                    "2",
                    "--out",
                    str(tmp_path / "load.json"),
                ]
            )
            == 0
        )
        app.state.runtime.writer.flush()
        assert (
            main(
                [
                    "shadow-report",
                    str(logs),
                    "--json",
                    str(tmp_path / "shadow.json"),
                    "--out",
                    str(tmp_path / "shadow.html"),
                ]
            )
            == 0
        )
        shadow_line = capsys.readouterr().out
        assert "[SHADOW] agreement_with_champion=100.0%" in shadow_line

        gate = [
            "gate",
            v2,
            *common,
            "--load-test",
            str(tmp_path / "load.json"),
            "--shadow-report",
            str(tmp_path / "shadow.json"),
        ]
        assert main(gate) == 0
        out = capsys.readouterr().out
        assert "[GATE] name=shadow status=pass" in out and "[DECISION] promote=yes" in out

        answers: list = []

        async def switch_under_load() -> tuple[int, int]:
            load = asyncio.create_task(_steady(url, rate=60, seconds=4, out=answers))
            await asyncio.sleep(1.0)
            deployed = await asyncio.to_thread(
                main, ["deploy", v2, "--registry", str(root), "--url", url]
            )
            await asyncio.sleep(1.0)
            rolled = await asyncio.to_thread(
                main, ["rollback", "--registry", str(root), "--url", url]
            )
            await load
            return deployed, rolled

        deployed, rolled = asyncio.run(switch_under_load())
    out = capsys.readouterr().out
    assert deployed == 0 and rolled == 0, out
    assert '[DECISION] promote=yes strategy="blue_green" from=v1 to=v2' in out
    assert '[DECISION] rollback=yes strategy="blue_green" from=v2 to=v1' in out
    assert {s for _, s, _, _ in answers} == {200}  # zero failed requests through both switches
    versions = [v for _, _, v, _ in sorted(answers)]
    assert "v2" in versions and versions[-1] == "v1"
    assert reg.champion() == "v1"
    events = [e["event"] for e in reg.history()]
    assert events.count("promote") == 2 and events[-1] == "rollback"


def _bundle(reg: Registry):
    """v1's bundle, exported on first use (serve would do this in a child process)."""
    from mangaassist.export.bundle import export_run

    return export_run(reg.path("v1"), reg.path("v1") / "export")
