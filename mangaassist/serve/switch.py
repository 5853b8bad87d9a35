"""Blue/green switches, rollback and shadow models inside a running server.

A deploy loads *green* beside the serving *blue* in a worker thread (blue keeps answering),
checks it (manifest hashes, tokenizer hash, the ONNX session and its warm-up, then the canary:
green's answers on the bundle's fixed messages must equal what its export recorded), and only
then swaps ``runtime.model`` in one reference assignment. A request reads that reference once,
so it is answered wholly by blue or wholly by green; requests already queued on blue finish
there. Blue stays loaded as ``runtime.previous`` for an instant rollback. A green that fails a
check is closed and blue keeps serving; the ``[DEPLOY]`` line names the check.

Example lines::

    [DEPLOY] candidate_model=v14 tokenizer_hash=4be1... runtime=onnxruntime-int8 strategy=blue_green
    [DEPLOY] check=canary ok n=32
    [DECISION] promote=yes strategy="blue_green" from=v13 to=v14
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from mangaassist.errors import UserError
from mangaassist.inference.bundle import BundleError, open_bundle
from mangaassist.inference.canary import check_canary
from mangaassist.serve.runtime import LoadedModel, Runtime, load_model

logger = logging.getLogger("mangaassist.serve")
STRATEGY = "blue_green"


class SwitchRefused(UserError):
    """A candidate failed a check; ``check`` names it, ``lines`` are the [DEPLOY] lines."""

    def __init__(self, message: str, check: str, lines: list[str]) -> None:
        super().__init__(message)
        self.check, self.lines = check, lines


def load_checked(
    bundle_dir: Path, rt: Runtime, lines: list[str], threads: int | None = None
) -> LoadedModel:
    """Load a candidate and run every check, appending one line per check passed.

    Raises:
        SwitchRefused: naming the first check that failed.
    """
    s = rt.settings
    check = "manifest"
    try:
        bundle = open_bundle(bundle_dir)  # manifest hashes, then the tokenizer hash
        lines.append(
            f"[DEPLOY] candidate_model={bundle.version} "
            f"tokenizer_hash={bundle.manifest.get('tokenizer_sha256', '?')[:12]} "
            f"precisions={','.join(bundle.precisions())} strategy={STRATEGY}"
        )
        lines.append("[DEPLOY] check=manifest ok check=tokenizer ok")
        check = "onnx"
        model = load_model(bundle, s, rt.metrics, threads)  # session + warm-up batches
        lines.append(f"[DEPLOY] check=onnx ok check=warmup ok runtime={model.runtime_name}")
        check = "canary"
        try:
            n = check_canary(bundle_dir, model.predictor)
        except UserError:
            model.batcher.close(1.0)
            raise
        lines.append(f"[DEPLOY] check=canary ok n={n}")
        return model
    except UserError as err:
        name = err.check if isinstance(err, BundleError) else check
        lines.append(f'[DEPLOY] check={name} failed reason="{err}"')
        raise SwitchRefused(str(err), name, lines) from err


async def deploy(rt: Runtime, bundle_dir: str | Path) -> dict:
    """Switch traffic to the bundle's model if it passes every check; blue keeps serving if not.

    Returns:
        ``promote`` (bool), ``from`` / ``to`` versions, ``check`` (the failed one or None),
        ``lines`` ([DEPLOY] / [DECISION]) and ``switch_ms`` (the swap itself).
    """
    async with rt.admin_lock:
        lines: list[str] = []
        blue = rt.model
        try:
            green = await asyncio.to_thread(load_checked, Path(bundle_dir), rt, lines)
        except SwitchRefused as err:
            lines.append(f'[DECISION] promote=no strategy="{STRATEGY}" check={err.check}')
            _log(lines)
            return {"promote": False, "from": blue.version, "to": None, "check": err.check,
                    "reason": str(err), "lines": lines}  # fmt: skip
        t0 = time.perf_counter()
        rt.model, retired = green, rt.previous  # the switch: one reference assignment
        rt.previous = blue
        switch_ms = (time.perf_counter() - t0) * 1000
        rt.record_switch("deploy", blue.version, green.version)
        lines.append(
            f'[DECISION] promote=yes strategy="{STRATEGY}" from={blue.version} to={green.version}'
        )
        _log(lines)
        if retired is not None and retired is not green:
            await asyncio.to_thread(retired.batcher.close, rt.settings.graceful_timeout_s)
        if rt.settings.auto_rollback_s > 0:
            rt.watch = asyncio.create_task(watch(rt, green))
        return {"promote": True, "from": blue.version, "to": green.version, "check": None,
                "lines": lines, "switch_ms": switch_ms}  # fmt: skip


def breach(outcomes: list, s) -> str | None:
    """Why a freshly deployed model breaches the auto-rollback limits, or None.

    Judged only once ``auto_rollback_min_requests`` requests have been answered, so one slow
    first request cannot roll a good model back.

    Example:
        >>> from mangaassist.serve.settings import ServeSettings
        >>> breach([5.0] * 19 + [None], ServeSettings(auto_rollback_min_requests=20))
        'error rate 5.0% > 1.0%'
    """
    if len(outcomes) < s.auto_rollback_min_requests:
        return None
    failed = sum(x is None for x in outcomes) / len(outcomes)
    if failed > s.auto_rollback_error_rate:
        return f"error rate {100 * failed:.1f}% > {100 * s.auto_rollback_error_rate:.1f}%"
    ok = sorted(x for x in outcomes if x is not None)
    p95 = ok[min(len(ok) - 1, int(0.95 * len(ok)))] if ok else 0.0
    if p95 > s.auto_rollback_p95_ms:
        return f"p95 {p95:.1f} ms > {s.auto_rollback_p95_ms:g} ms"
    return None


async def watch(rt: Runtime, green: LoadedModel) -> None:
    """For ``auto_rollback_s`` after a deploy, roll back once green breaches its limits."""
    s = rt.settings
    deadline = time.monotonic() + s.auto_rollback_s
    while time.monotonic() < deadline and rt.model is green:
        await asyncio.sleep(1.0)
        reason = breach(list(green.outcomes), s)
        if reason is not None and rt.model is green and rt.previous is not None:
            out = await rollback(rt)
            print(f'[DECISION] auto_rollback=yes version={green.version} reason="{reason}" '
                  f"to={out['to']}", flush=True)  # fmt: skip
            return


async def rollback(rt: Runtime) -> dict:
    """Swap back to the model that served before the last switch (still loaded)."""
    async with rt.admin_lock:
        if rt.previous is None:
            raise UserError("nothing to roll back to: this server has not switched models yet")
        current = rt.model
        rt.model, rt.previous = rt.previous, current
        rt.record_switch("rollback", current.version, rt.model.version)
        line = (
            f'[DECISION] rollback=yes strategy="{STRATEGY}" '
            f"from={current.version} to={rt.model.version}"
        )
        _log([line])
        return {"from": current.version, "to": rt.model.version, "lines": [line]}


async def set_shadow(rt: Runtime, bundle_dir: str | Path | None, share: float = 1.0) -> dict:
    """Start (after the same checks as a deploy) or stop scoring a candidate in the shadow."""
    async with rt.admin_lock:
        old, lines = rt.shadow, []
        if bundle_dir is None:
            rt.shadow = None
        else:
            try:
                # One thread: the session computes in the batcher's own (niced) thread.
                shadow = await asyncio.to_thread(load_checked, Path(bundle_dir), rt, lines, 1)
            except SwitchRefused as err:
                _log(lines)
                return {"shadow": old.version if old else None, "check": err.check,
                        "reason": str(err), "lines": lines}  # fmt: skip
            shadow.batcher.max_queue = rt.settings.shadow_max_queue
            # Larger, rarer batches: less Python (and GIL) per message beside the champion.
            shadow.batcher.max_wait_s = rt.settings.shadow_max_wait_ms / 1000
            shadow.batcher.background()
            rt.shadow, rt.shadow_share = shadow, float(share)
        name = rt.shadow.version if rt.shadow else None
        state = "on" if rt.shadow else "off"
        lines.append(f"[SHADOW] event={state} candidate={name} share={rt.shadow_share:g}")
        _log(lines)
        if old is not None:
            await asyncio.to_thread(old.batcher.close, rt.settings.graceful_timeout_s)
        return {"shadow": rt.shadow.version if rt.shadow else None, "check": None, "lines": lines}


def _log(lines: list[str]) -> None:
    for line in lines:
        print(line, flush=True)
