"""``mangaassist serve``, ``deploy``, ``rollback``, ``loadtest``, ``predict``, ``shadow-report``.

``serve`` takes a bundle, a run directory (its ``export/`` bundle, exported first when absent)
or ``--registry DIR`` (the champion's bundle). Exporting needs torch, so it runs in a child
process (``mangaassist export``): the serving process itself never imports torch.

Exit status: 0 after a clean shutdown (SIGTERM or Ctrl-C), 2 a user error (a bad bundle,
setting or path, printed as one line by :mod:`mangaassist.cli`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from mangaassist.errors import UserError

_FLAGS = ("host", "port", "threads", "workers", "precision")
TOKEN_ENV = "MANGAASSIST_ADMIN_TOKEN"


def _export_child(run_dir: Path) -> None:
    """``mangaassist export RUN --quantize int8`` in a child process (torch stays out of here)."""
    print(f'[SERVE] note="{run_dir} has no export bundle; exporting it first (int8 if accepted)"')
    cmd = [sys.executable, "-m", "mangaassist.cli", "export", str(run_dir), "--quantize", "int8"]
    done = subprocess.run(cmd, check=False)
    if done.returncode != 0:
        raise UserError(f"{run_dir}: export failed (exit {done.returncode}); see the lines above")


def resolve_bundle(target: str | None, registry: str | None) -> Path:
    """The bundle folder to serve for a bundle, a run directory or a registry's champion."""
    if registry is not None:
        from mangaassist.release.registry import Registry

        reg = Registry(registry)
        champion = reg.champion()
        if champion is None:
            raise UserError(
                f"registry {reg.root}: no champion yet; promote a version with "
                "`mangaassist registry promote vN` or `mangaassist gate RUN --promote`"
            )
        target = str(reg.path(champion))
    if target is None:
        raise UserError("serve needs a bundle, a run directory or --registry DIR")
    path = Path(target)
    if (path / "manifest.json").is_file():
        return path
    if (path / "checkpoints" / "best.ckpt").is_file():
        if not (path / "export" / "manifest.json").is_file():
            _export_child(path)
        return path / "export"
    raise UserError(
        f"{path}: neither a bundle (manifest.json) nor a run directory (checkpoints/best.ckpt); "
        "pass `outputs/RUN/export`, `outputs/RUN` or --registry DIR"
    )


def _serve(args: argparse.Namespace) -> int:
    from mangaassist.serve.settings import load_serve_settings

    overrides = list(args.overrides)
    if args.target and "=" in args.target and not Path(args.target).exists():
        overrides.insert(0, args.target)  # `serve --registry R port=9000`: no target given
        args.target = None
    overrides += [f"{k}={getattr(args, k)}" for k in _FLAGS if getattr(args, k) is not None]
    if args.debug:
        overrides.append("log_level=debug")
    if args.registry:
        overrides.append(f"registry={Path(args.registry).resolve()}")
    if args.shadow:
        overrides += [f"shadow={args.shadow}", f"shadow_share={args.shadow_share}"]
    settings = load_serve_settings(args.config_name, overrides, args.config)
    bundle = resolve_bundle(args.target, args.registry)
    import uvicorn

    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    common = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,  # one [SERVE] line per request at debug level instead
        "timeout_graceful_shutdown": settings.graceful_timeout_s,
    }
    if settings.workers > 1:  # each worker process builds its own app and model
        os.environ["MANGAASSIST_SERVE"] = json.dumps(
            {"bundle": str(bundle), "settings": settings.to_dict()}
        )
        uvicorn.run(
            "mangaassist.serve.app:app_from_env", factory=True, workers=settings.workers, **common
        )
        return 0
    from mangaassist.serve.app import create_app
    from mangaassist.serve.runtime import Runtime

    app = create_app(bundle, settings)
    # Loaded once, before the port is bound: a bad bundle (hashes, tokenizer, corrupt ONNX)
    # is one error line here, not a traceback from inside the server's start-up.
    app.state.runtime = Runtime.start(bundle, settings, app.state.metrics)
    server = uvicorn.Server(uvicorn.Config(app, **common))
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler
    # that was there before it: make that one a no-op, so a clean shutdown exits 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run()
    if not server.started:  # e.g. the port was taken: lifespan never ran to close it
        app.state.runtime.close()
    return 0 if server.started else 2


def _admin(url: str, path: str, token_file: str | None, body: dict | None = None) -> dict:
    """POST to a running server's admin route with the bearer token; its JSON answer."""
    import httpx

    token = Path(token_file).read_text().strip() if token_file else os.environ.get(TOKEN_ENV, "")
    if not token:
        raise UserError(f"no admin token: set ${TOKEN_ENV} or pass --token-file")
    try:
        r = httpx.post(f"{url.rstrip('/')}{path}", json=body, timeout=300,
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    except httpx.HTTPError as err:
        raise UserError(
            f"{url}: cannot reach the server ({err}); is `mangaassist serve` up?"
        ) from err
    if r.status_code >= 400:
        raise UserError(f"{url}{path}: {r.status_code} {r.json().get('error', r.text)}")
    return r.json()


def _deploy(args: argparse.Namespace) -> int:
    from mangaassist.release.registry import Registry

    reg = Registry(args.registry) if args.registry else None
    target = str(reg.path(args.version)) if reg else args.version
    bundle = resolve_bundle(target, None)  # exports a registry version first if needed
    out = _admin(args.url, "/admin/deploy", args.token_file, {"bundle": str(bundle.resolve())})
    for line in out["lines"]:
        print(line)
    if not out["promote"]:
        return 1
    if reg is not None:
        reg.promote(args.version, reason=f"blue_green deploy on {args.url}")
        print(f"[REGISTRY] event=promote version={args.version} from={out['from']}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    out = _admin(args.url, "/admin/rollback", args.token_file)
    for line in out["lines"]:
        print(line)
    if args.registry:
        from mangaassist.release.registry import Registry

        now = Registry(args.registry).rollback()
        print(f"[REGISTRY] event=rollback version={now} from={out['from']}")
    return 0


def _add_switch_commands(sub: argparse._SubParsersAction) -> None:
    url_help = "the running server (default http://127.0.0.1:8000)"
    token_help = f"file holding the admin token (default ${TOKEN_ENV})"
    dp = sub.add_parser("deploy", help="blue/green switch of a running server to a version")
    dp.add_argument("version", help="a registry version (with --registry) or a bundle/run folder")
    dp.add_argument("--url", default="http://127.0.0.1:8000", help=url_help)
    dp.add_argument("--registry", help="registry folder: resolve VERSION there, promote it")
    dp.add_argument("--token-file", help=token_help)
    dp.set_defaults(func=_deploy)
    rb = sub.add_parser("rollback", help="return a running server to its previous model")
    rb.add_argument("--url", default="http://127.0.0.1:8000", help=url_help)
    rb.add_argument("--registry", help="registry folder: roll its champion pointer back too")
    rb.add_argument("--token-file", help=token_help)
    rb.set_defaults(func=_rollback)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``serve`` and ``loadtest`` to the top-level parser."""
    from mangaassist.serve import predict, shadow_report
    from mangaassist.serve.loadtest import add_parser

    sv = sub.add_parser(
        "serve",
        help="HTTP endpoint over a bundle: micro-batching, calibrated routing, prediction log",
        description="Serve POST /v1/classify, /healthz, /readyz, /v1/model, /metrics, /docs. "
        "Settings: conf/serve/<name>.yaml, then key=value overrides, then the flags.",
    )
    sv.add_argument("target", nargs="?", help="a bundle folder or a run directory")
    sv.add_argument("overrides", nargs="*", help="settings as key=value (e.g. max_wait_ms=2)")
    sv.add_argument("--registry", help="serve the champion of this registry folder")
    sv.add_argument("--config-name", default="default", help="conf/serve/NAME.yaml (default)")
    sv.add_argument("--config", help="a settings YAML file instead of conf/serve/")
    sv.add_argument("--host", help="listen address (default 127.0.0.1)")
    sv.add_argument("--port", type=int, help="listen port (default 8000)")
    sv.add_argument("--threads", type=int, help="ONNX Runtime threads per process")
    sv.add_argument("--workers", type=int, help="server processes")
    sv.add_argument("--precision", choices=["auto", "fp32", "int8"], help="model graph")
    sv.add_argument("--debug", action="store_true", help="one [SERVE] line per request")
    sv.add_argument("--shadow", help="a registry version (with --registry) or bundle to shadow")
    sv.add_argument("--shadow-share", type=float, default=1.0, help="share of requests (1.0)")
    sv.set_defaults(func=_serve)
    _add_switch_commands(sub)
    add_parser(sub)
    predict.add_parser(sub)
    shadow_report.add_parser(sub)
