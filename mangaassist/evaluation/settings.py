"""Typed evaluation and gate settings, read from ``conf/evaluation`` and ``conf/gates``.

A training run passes its composed Hydra config (``cfg.evaluation``, ``cfg.gates``); the
``mangaassist`` command, which has no Hydra, reads the same YAML files. An unknown key is an
error that names it, so a typo cannot silently fall back to a default.

Example:
    >>> s = eval_settings_from({"fallback": {"global_threshold": 0.5}})
    >>> s.fallback.global_threshold, s.fallback.margin
    (0.5, 0.1)
    >>> RoutingCost(pairs=(("faq", "promotion", 0.3),)).cost("promotion", "faq")
    0.3
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mangaassist.errors import UserError

RUNTIMES = ("onnxruntime", "torch")
# How the gain over the champion is corrected for testing accuracy and macro F1 both; no
# "none": two uncorrected tests would double the chance that noise promotes a model.
GAIN_CORRECTIONS = ("holm", "both")  # what latency times: the serving runtime or PyTorch eager
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
EVAL_YAML = CONF_DIR / "evaluation" / "default.yaml"
GATES_YAML = CONF_DIR / "gates" / "default.yaml"


@dataclass(frozen=True)
class FallbackSettings:
    """How low-confidence and ambiguous messages are routed away from a service."""

    global_threshold: float = 0.6
    margin: float = 0.1
    target_precision: float = 0.9
    target_precision_per_intent: dict[str, float] = field(default_factory=dict)
    min_support: int = 20
    max_threshold: float = 0.95


@dataclass(frozen=True)
class LatencySettings:
    """Batch-1 latency measurement (tokenize + forward on one message at a time)."""

    num_threads: int = 1
    warmup: int = 20
    max_messages: int = 300
    budget_ms: float = 15.0
    runtime: str = "onnxruntime"
    parity_atol: float = 1e-3

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise UserError(
                f"evaluation.latency.runtime: {self.runtime!r} is not one of {list(RUNTIMES)}; "
                "use onnxruntime (as served) or torch (PyTorch eager)"
            )


@dataclass(frozen=True)
class ReportSettings:
    """Sizes of the report's lists and of the bootstrap."""

    top_errors: int = 5
    top_pairs: int = 10
    n_boot: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class RoutingCost:
    """Cost (0..1) of routing a message of one intent to another intent's service."""

    default: float = 1.0
    acceptable_max: float = 0.3
    pairs: tuple[tuple[str, str, float], ...] = ()

    def cost(self, true: str, pred: str) -> float:
        """Cost of predicting ``pred`` for a message of intent ``true`` (0 when equal)."""
        if true == pred:
            return 0.0
        for a, b, c in self.pairs:
            if {a, b} == {true, pred}:
                return float(c)
        return float(self.default)

    def severity(self, true: str, pred: str) -> str:
        """``acceptable`` when the wrong service still helps, else ``severe``."""
        return "acceptable" if self.cost(true, pred) <= self.acceptable_max else "severe"


@dataclass(frozen=True)
class EvalSettings:
    """Everything ``evaluate`` and ``post_train`` read from ``conf/evaluation``."""

    golden_path: str | None = None
    ece_bins: int = 15
    temperature_bounds: tuple[float, float] = (0.05, 20.0)
    fallback: FallbackSettings = field(default_factory=FallbackSettings)
    latency: LatencySettings = field(default_factory=LatencySettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    routing_cost: RoutingCost = field(default_factory=RoutingCost)


@dataclass(frozen=True)
class Significance:
    """How a paired difference between candidate and champion is judged."""

    alpha: float = 0.05
    accuracy_test: str = "mcnemar"
    n_boot: int = 1000
    seed: int = 0
    # Accuracy and macro F1 are two tests of one gain: two chances to pass at alpha each.
    gain_correction: str = "holm"  # holm (Holm-Bonferroni) | both (each p < alpha)

    def __post_init__(self) -> None:
        if self.gain_correction not in GAIN_CORRECTIONS:
            raise UserError(
                f"gates.significance.gain_correction: {self.gain_correction!r} is not one of "
                f"{list(GAIN_CORRECTIONS)}"
            )
        if self.accuracy_test not in ("mcnemar", "bootstrap"):
            raise UserError(
                f"gates.significance.accuracy_test: {self.accuracy_test!r}; use mcnemar or "
                "bootstrap"
            )
        if not 0 < self.alpha < 1:
            raise UserError(f"gates.significance.alpha: {self.alpha} must be in (0, 1)")


@dataclass(frozen=True)
class GoldenFloors:
    """Absolute minimums on the golden set (fractions)."""

    acc: float = 0.85
    macro_f1: float = 0.80
    rare_recall: float = 0.75


@dataclass(frozen=True)
class GateSettings:
    """Everything ``mangaassist gate`` reads from ``conf/gates`` (its comments document each key).

    The ``load_*`` and ``shadow_*`` keys judge operational evidence (a ``mangaassist loadtest
    --out`` file and a ``mangaassist shadow-report --json`` file); each such gate is skipped
    when its file is not given, unless ``require_load_test`` / ``require_shadow`` is true.
    """

    significance: Significance = field(default_factory=Significance)
    require_significant_gain: bool = True
    # The fixed comparison set (labelled JSONL); None: <registry>/gate_set.jsonl when present.
    gate_set: str | None = None
    rare_recall_margin: float = 0.02
    ece_margin: float = 0.01
    latency_p95_ms: float = 15.0
    golden_floors: GoldenFloors = field(default_factory=GoldenFloors)
    # Operational floors, judged from a load test and a shadow report when given.
    load_p95_ms: float = 15.0
    load_min_rps: float = 0.0
    load_max_error_rate: float = 0.005
    require_load_test: bool = False
    shadow_min_agreement: float = 0.95
    shadow_min_messages: int = 200
    require_shadow: bool = False

    def __post_init__(self) -> None:
        # _build checks that numbers are numbers; bools and ranges are checked here, so a
        # quoted `require_shadow: "false"` (a truthy string) cannot quietly turn a gate on.
        for name in ("require_significant_gain", "require_load_test", "require_shadow"):
            if not isinstance(getattr(self, name), bool):
                raise UserError(
                    f"gates.{name}: expected true or false, got {getattr(self, name)!r}"
                )
        for name in ("load_max_error_rate", "shadow_min_agreement"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"gates.{name}: {getattr(self, name)} must be a fraction in [0, 1]")
        for name in ("load_p95_ms", "latency_p95_ms"):
            if getattr(self, name) <= 0:
                raise UserError(f"gates.{name}: {getattr(self, name)} must be > 0 ms")
        if self.load_min_rps < 0:
            raise UserError(f"gates.load_min_rps: {self.load_min_rps} must be >= 0 (0: any rate)")
        n = self.shadow_min_messages
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise UserError(f"gates.shadow_min_messages: {n!r} must be a whole number >= 0")


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, recursing into nested dataclass fields."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, Mapping):
                raise UserError(f"{where}.{name}: expected a mapping, got {value!r}")
            kwargs[name] = _build(hint, value, f"{where}.{name}")
        elif typing.get_origin(hint) is tuple:
            kwargs[name] = tuple(tuple(v) if isinstance(v, list | tuple) else v for v in value)
        elif hint in (int, float) and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise UserError(f"{where}.{name}: expected a number, got {value!r}")
        else:
            kwargs[name] = float(value) if hint is float else value
    obj = cls(**kwargs)
    if isinstance(obj, RoutingCost):
        for pair in obj.pairs:
            if len(pair) != 3 or not 0 <= float(pair[2]) <= 1:
                raise UserError(f"{where}.pairs: {list(pair)} must be [intent, intent, cost 0..1]")
    return obj


def _plain(cfg: Mapping | DictConfig | None) -> dict:
    if cfg is None:
        return {}
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def eval_settings_from(cfg: Mapping | DictConfig | None) -> EvalSettings:
    """EvalSettings from the ``evaluation`` section of a config (None = the defaults)."""
    return _build(EvalSettings, _plain(cfg), "evaluation")


def gate_settings_from(cfg: Mapping | DictConfig | None) -> GateSettings:
    """GateSettings from the ``gates`` section of a config (None = the defaults)."""
    return _build(GateSettings, _plain(cfg), "gates")


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path}: settings file not found")
    try:
        return _plain(OmegaConf.load(path))
    except Exception as err:  # OmegaConf raises several YAML/parse error types
        raise UserError(f"{path}: not valid YAML ({err})") from err


def load_eval_settings(
    run_config: Mapping | DictConfig | None = None, path: Path | None = None
) -> EvalSettings:
    """Evaluation settings: ``path`` if given, else the run's ``evaluation`` section, else conf/.

    Args:
        run_config: a run's resolved config; its ``evaluation`` section wins over conf/.
        path: an explicit YAML file (the ``--config`` of the command line).
    """
    if path is not None:
        return eval_settings_from(_read_yaml(Path(path)))
    # Only this section is resolved: the rest may hold ${hydra:...} outside a Hydra app.
    section = run_config.get("evaluation") if run_config is not None else None
    if section:
        return eval_settings_from(section)
    return eval_settings_from(_read_yaml(EVAL_YAML))  # missing conf/: an error, not built-ins


def load_gate_settings(path: Path | None = None) -> GateSettings:
    """Gate settings from ``path`` (default ``conf/gates/default.yaml``, which must exist)."""
    if path is not None:
        return gate_settings_from(_read_yaml(Path(path)))
    return gate_settings_from(_read_yaml(GATES_YAML))  # missing conf/: an error, not built-ins
