"""Settings of one server process: ``conf/serve/<name>.yaml`` plus ``key=value`` overrides.

The YAML files are merged with OmegaConf against the typed :class:`ServeSettings`, so a
mistyped key or a value of the wrong type is one ``error:`` line naming the key, before
any model is loaded. Hydra's composition is not needed for one flat group and would pull
its plugin machinery into the serving process.

Example:
    >>> s = load_serve_settings(overrides=["port=9000", "max_wait_ms=0.5"])
    >>> s.port, s.max_wait_ms, s.max_batch_size
    (9000, 0.5, 32)
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

import mangaassist
from mangaassist.errors import UserError

CONF_DIR = Path(mangaassist.__file__).resolve().parents[1] / "conf" / "serve"
PRIVACY = ("text", "hash", "none")
PRECISION = ("auto", "fp32", "int8")


@dataclass
class ServeSettings:
    """One field per key of ``conf/serve/default.yaml`` (its comments document each)."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int | None = None
    precision: str = "auto"
    model_version: str | None = None
    batching: bool = True
    fast_path: bool = True
    max_batch_size: int = 32
    max_wait_ms: float = 0.0
    group_padding: float = 1.3
    max_queue: int = 512
    retry_after_s: int = 1
    max_chars: int = 2000
    truncate: bool = False
    max_items: int = 64
    max_body_bytes: int = 262144
    top_k: int = 3
    log_dir: str = "logs"
    log_privacy: str = "hash"
    log_salt_env: str = "MANGAASSIST_LOG_SALT"
    log_max_bytes: int = 100_000_000
    log_queue: int = 10_000
    registry: str | None = None
    shadow: str | None = None
    shadow_share: float = 1.0
    shadow_max_queue: int = 64
    shadow_max_wait_ms: float = 20.0
    shadow_max_champion_queue: int = 0
    admin_token_env: str = "MANGAASSIST_ADMIN_TOKEN"
    admin_token_file: str | None = None
    auto_rollback_s: float = 0.0
    auto_rollback_p95_ms: float = 15.0
    auto_rollback_error_rate: float = 0.01
    auto_rollback_min_requests: int = 200
    warmup_batches: int = 8
    graceful_timeout_s: float = 10.0
    log_level: str = "info"

    @property
    def intra_op_threads(self) -> int:
        """ONNX Runtime threads per process: ``threads``, else usable cores / workers."""
        if self.threads:
            return int(self.threads)
        return max(1, len(os.sched_getaffinity(0)) // max(1, self.workers))

    def to_dict(self) -> dict:
        """Plain values (what worker processes receive through the environment)."""
        return asdict(self)


def _check(s: ServeSettings) -> None:
    positive = ("workers", "max_batch_size", "max_queue", "max_chars", "max_items")
    positive += ("max_body_bytes", "top_k", "log_max_bytes", "log_queue")
    for key in positive:
        if getattr(s, key) < 1:
            raise UserError(f"serve setting {key}={getattr(s, key)}: must be at least 1")
    if not 0 <= s.port <= 65535:
        raise UserError(f"serve setting port={s.port}: must be 0-65535 (0 = any free port)")
    if s.threads is not None and s.threads < 1:
        raise UserError(f"serve setting threads={s.threads}: at least 1, or null for auto")
    if s.max_wait_ms < 0 or s.group_padding < 1:
        raise UserError(
            f"serve settings max_wait_ms={s.max_wait_ms} (>= 0) and "
            f"group_padding={s.group_padding} (>= 1) are out of range"
        )
    if not 0 <= s.shadow_share <= 1:
        raise UserError(f"serve setting shadow_share={s.shadow_share}: a share from 0 to 1")
    if s.log_privacy not in PRIVACY:
        raise UserError(f"serve setting log_privacy={s.log_privacy!r}: use one of {PRIVACY}")
    if s.precision not in PRECISION:
        raise UserError(f"serve setting precision={s.precision!r}: use one of {PRECISION}")


def load_serve_settings(
    name: str = "default", overrides: list[str] | None = None, path: str | Path | None = None
) -> ServeSettings:
    """Settings from ``conf/serve/<name>.yaml`` (or ``path``) and ``key=value`` overrides.

    Raises:
        UserError: a missing file, an unknown key, a value of the wrong type or out of range.
    """
    file = Path(path) if path else CONF_DIR / f"{name}.yaml"
    if not file.is_file():
        known = sorted(p.stem for p in CONF_DIR.glob("*.yaml")) if CONF_DIR.is_dir() else []
        raise UserError(
            f"{file}: no serve settings file; use --config PATH or one of {known} (in {CONF_DIR})"
        )
    bad = [o for o in overrides or [] if "=" not in o]
    if bad:
        raise UserError(f"serve overrides must be key=value, got {bad}")
    try:
        merged = OmegaConf.merge(
            OmegaConf.structured(ServeSettings),
            OmegaConf.load(file),
            OmegaConf.from_dotlist(list(overrides or [])),
        )
        settings = ServeSettings(**OmegaConf.to_container(merged))  # type: ignore[arg-type]
    except OmegaConfBaseException as err:
        known = ", ".join(f.name for f in fields(ServeSettings))
        msg = str(err).splitlines()[0]
        raise UserError(f"{file}: bad serve setting ({msg}); the keys are: {known}") from err
    _check(settings)
    return settings
