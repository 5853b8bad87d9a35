"""Typed settings of the comparison tables (``conf/comparison/default.yaml``) and the
published figures they are put beside (``conf/comparison/published.yaml``).

The YAML is merged onto the dataclasses below as an OmegaConf structured config, so an
unknown key or a wrong type is an error that names it.

Example:
    >>> s = settings_from({"models": {"target_rps": 50}})
    >>> s.models.target_rps, s.ablation.by
    (50.0, 'loss.name')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mangaassist.errors import UserError

# Beside the package (the checkout's conf/), not the working directory: any cwd finds it.
CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "comparison"
DEFAULT_YAML = CONF_DIR / "default.yaml"
PUBLISHED_YAML = CONF_DIR / "published.yaml"
# Sets that report a chosen model, so a ranking key from them is refused.
HELD_OUT_PREFIXES = ("test", "golden")


@dataclass
class AblationSettings:
    """How runs are grouped, and the rare-class target check."""

    by: str = "loss.name"
    baseline: str = "ce"
    candidate: str = "focal_weighted"
    min_rare_gain_points: float = 5.0


@dataclass
class ModelSettings:
    """Serving assumptions behind the monthly cost, and the selection rule."""

    candidates: list[str] = field(
        default_factory=lambda: ["minilm", "tinybert", "distilbert", "roberta_base"]
    )
    instance_type: str = "c6i.xlarge"
    price_per_hour: float = 0.17
    hours_per_month: float = 730.0
    target_rps: float = 500.0
    workers_per_instance: int = 4
    capacity_latency: str = "p50_ms"
    utilisation: float = 0.7
    min_instances: int = 2
    quality_metric: str = "val/macro_f1"
    f1_tolerance_points: float = 1.0
    p95_budget_ms: float = 15.0


@dataclass
class ComparisonSettings:
    """Everything ``mangaassist compare`` reads from ``conf/comparison/default.yaml``."""

    ablation: AblationSettings = field(default_factory=AblationSettings)
    models: ModelSettings = field(default_factory=ModelSettings)


def settings_from(data: dict | None) -> ComparisonSettings:
    """Settings from a mapping (None = the built-in defaults); bad keys are a UserError."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ComparisonSettings), data or {})
        s: ComparisonSettings = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        raise UserError(f"comparison settings: {err}".replace("\n", " ")) from err
    m = s.models
    if m.capacity_latency not in ("p50_ms", "p95_ms"):
        raise UserError(
            f"comparison settings: models.capacity_latency is '{m.capacity_latency}'; "
            "use p50_ms or p95_ms"
        )
    if not 0 < m.utilisation <= 1 or m.workers_per_instance < 1 or m.target_rps <= 0:
        raise UserError(
            "comparison settings: models.utilisation must be in (0, 1], "
            "workers_per_instance >= 1 and target_rps > 0"
        )
    if m.quality_metric.split("/")[0] in HELD_OUT_PREFIXES:
        raise UserError(
            f"comparison settings: models.quality_metric is '{m.quality_metric}'; rank on "
            "validation (e.g. val/macro_f1, the best epoch's): choosing on a held-out set "
            "makes its figures optimistic, so test/ and golden/ figures are only shown"
        )
    return s


def _load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: settings file not found; pass an existing YAML file")
    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as err:  # YAML and interpolation errors come in several types
        raise UserError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    return data


def load_settings(path: str | Path | None = None) -> ComparisonSettings:
    """Settings from ``path`` (default ``conf/comparison/default.yaml``, which must exist).

    A missing default is an error, not the built-ins: outside a checkout (an installed
    package without ``conf/``) silent defaults would rank models by other rules.
    """
    if path is None:
        return settings_from(_load_yaml(DEFAULT_YAML))
    data = _load_yaml(Path(path))
    try:
        return settings_from(data)
    except UserError as err:
        raise UserError(f"{path}: {err}") from None


def load_published(path: str | Path | None = None) -> dict[str, Any]:
    """The published figures (``ablation`` and ``benchmarks`` blocks); a missing file is a
    UserError naming it (an empty table column would look like "nothing published")."""
    return _load_yaml(Path(path) if path is not None else PUBLISHED_YAML)
