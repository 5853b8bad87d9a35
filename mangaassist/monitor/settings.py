"""Monitor settings: ``conf/monitor/default.yaml`` as typed, checked dataclasses.

Every key is documented in the YAML file. Loading checks what a typo would otherwise turn into
a silent miss: unknown keys, window widths, signal names in ``lines`` and in the alert rules,
``$threshold`` references, so that a rule naming ``kl_dvi`` fails at start, not by never firing.

Example:
    >>> s = load_settings()
    >>> s.window_seconds["hourly"], s.thresholds["p95_ms"], s.alerts.rules[-1].name
    (3600, 15.0, 'retrain_trigger')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

import mangaassist
from mangaassist.errors import UserError

DEFAULT_CONFIG = (
    Path(mangaassist.__file__).resolve().parents[1] / "conf" / "monitor" / "default.yaml"
)
# The retrain stage's settings; its ``cost`` section prices a retrain for the monitor's alert
# and for ``mangaassist retrain``'s realised cost (one set of prices, read by both).
RETRAIN_CONFIG = (
    Path(mangaassist.__file__).resolve().parents[1] / "conf" / "retrain" / "default.yaml"
)

# Every signal a window carries (monitor.json, lines, rules). Fractions in [0, 1].
SIGNALS = (
    "n",  # champion messages in the window (the volume)
    "p50_ms", "p95_ms", "p99_ms",  # latency_ms percentiles
    "err_rate",  # status >= 400 / all; n/a unless the log holds error records
    "low_conf_rate", "fallback_rate", "ambiguous_rate",  # fallback_reason shares
    "est_acc",  # label-free: mean calibrated top-1 probability (CBPE)
    "kl_div", "chi2", "chi2_p",  # intent mix against the reference
    "sampled_n", "sampled_acc", "sampled_acc_lo", "sampled_acc_hi",  # labelled sample
    "rare_n", "rare_recall", "rare_recall_lo", "rare_recall_hi",
    "new_vocab_share", "jp_share", "jp_share_ratio",  # the messages themselves (text logs)
    "len_mean", "len_p95", "len_mean_ratio",  # tokens per message
)  # fmt: skip
_WIDTH = re.compile(r"^\s*(\d+)\s*(minute|hour|day|week)s?\s*$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86_400, "week": 604_800}
SEVERITIES = ("info", "warn", "page")


@dataclass
class Rule:
    """One alert rule: fires when every ``all`` condition holds and one ``any`` (if listed)."""

    name: str = "?"
    window: str = "daily"
    all: list[str] = field(default_factory=list)
    any: list[str] = field(default_factory=list)
    severity: str = "warn"
    triggers: str = ""
    reason: str = ""


@dataclass
class AlertSettings:
    """Judging windows against the rules, with hysteresis."""

    min_window_n: int = 100
    clear_after: int = 3
    rules: list[Rule] = field(default_factory=list)


@dataclass
class RetrainCosts:
    """What one retrain costs and what a misrouted message costs (``cost:`` of the retrain YAML).

    Prices are in ``currency`` units. ``training_minutes`` None: the last measured figure (the
    reference run's ``metrics.json`` ``train_minutes``), else ``unmeasured_training_minutes``.
    ``misrouted_message_cost`` None: the loss is counted in messages only (no payback time).
    """

    labels_needed: int = 500
    price_per_label: float = 0.10
    instance_price_per_hour: float = 3.0
    training_minutes: float | None = None
    unmeasured_training_minutes: float = 30.0
    misrouted_message_cost: float | None = 0.05
    currency: str = "$"

    def money(self, x: float) -> str:
        """``$50.60``: an amount as the lines print it."""
        return f"{self.currency}{x:,.2f}"


@dataclass
class RoiSettings:
    """Which alerts carry a retrain ROI estimate, and where the prices are."""

    rules: list[str] = field(default_factory=lambda: ["retrain_trigger"])
    costs: str | None = None  # None: conf/retrain/default.yaml


@dataclass
class EngineSettings:
    """DuckDB's resources: 0 threads = all cores; "" memory_limit = DuckDB's default."""

    threads: int = 0
    memory_limit: str = ""


@dataclass
class MonitorSettings:
    """One field per top-level key of ``conf/monitor/default.yaml``."""

    windows: dict[str, str] = field(default_factory=dict)
    lines: dict[str, list[str]] = field(default_factory=dict)
    kl_epsilon: float = 1e-4
    rare_below: float = 0.05
    min_labels: int = 30
    per_intent_min_labels: int = 20
    vocab_max_examples: int = 50_000
    thresholds: dict[str, float] = field(default_factory=dict)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    roi: RoiSettings = field(default_factory=RoiSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)

    @property
    def window_seconds(self) -> dict[str, int]:
        """Window name -> width in seconds, smallest first."""
        widths = {name: _seconds(name, w) for name, w in self.windows.items()}
        return dict(sorted(widths.items(), key=lambda kv: kv[1]))


def _seconds(name: str, width: str) -> int:
    m = _WIDTH.match(str(width))
    if m is None or int(m[1]) == 0:
        raise UserError(
            f"windows.{name}={width!r}: expected 'N minutes|hours|days|weeks' with N >= 1"
        )
    return int(m[1]) * _UNIT_S[m[2]]


def load_typed(schema: type, files: list[Path], file: Path, what: str, section: str | None = None):
    """``schema`` (a dataclass) with the YAML ``files`` merged over it in order, checked.

    Files that do not exist are passed over; ``section`` takes one key of each file instead
    of the whole. Shared by the monitor, cost and retrain settings so that each reports a bad
    key the same way.

    Raises:
        UserError: YAML that does not parse, a file that is not a mapping, an unknown key or a
            value of the wrong type; names ``file``, the key and the valid keys.
    """
    keys = ", ".join(f.name for f in fields(schema))
    try:
        layers = []
        for f in dict.fromkeys(files):
            if not f.is_file():
                continue
            raw = OmegaConf.load(f)
            if section is not None:
                raw = (raw.get(section) if isinstance(raw, DictConfig) else None) or {}
            elif not isinstance(raw, DictConfig):
                raise UserError(f"{file}: {what} settings must be a mapping of: {keys}")
            layers.append(raw)
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), *layers))
    except UserError:
        raise
    except Exception as err:  # OmegaConf's key/type errors, or YAML that does not parse
        key = getattr(err, "full_key", None) or "?"
        msg = str(err).splitlines()[0]
        raise UserError(f"{file}: bad {what} setting {key} ({msg}); the keys are: {keys}") from err


def load_settings(path: str | Path | None = None) -> MonitorSettings:
    """The packaged ``conf/monitor/default.yaml``, with ``path``'s keys merged over it, checked.

    A file of your own need hold only what it changes (``thresholds: {p95_ms: 20}``); a list
    (``alerts.rules``, a ``lines`` entry) it gives replaces the default list whole.

    Raises:
        UserError: a missing file, an unknown key, a bad value, an unknown signal, window or
            ``$threshold`` in ``lines`` or a rule; the message names the file and key.
    """
    file = Path(path) if path is not None else DEFAULT_CONFIG
    if not file.is_file():
        where = "" if path is not None else " (the packaged default; reinstall, or pass --config)"
        raise UserError(f"{file}: no monitor settings file{where}")
    s: MonitorSettings = load_typed(MonitorSettings, [DEFAULT_CONFIG, file], file, "monitor")
    _check(s, file)
    return s


def _check(s: MonitorSettings, file: Path) -> None:
    from mangaassist.monitor.alerts import parse_condition  # alerts imports this module

    if not s.windows:
        raise UserError(f"{file}: windows is empty; give at least one, e.g. hourly: 1 hour")
    try:
        widths = s.window_seconds
    except UserError as err:
        raise UserError(f"{file}: {err}") from None
    base = min(widths.values())
    for name, w in widths.items():
        if w % base:
            raise UserError(
                f"{file}: windows.{name}={s.windows[name]!r} is not a whole multiple of the "
                f"smallest window ({base} s): the text counts could not be summed into it"
            )
    for name, signals in s.lines.items():
        if name not in s.windows:
            raise UserError(f"{file}: lines.{name}: no such window; windows: {list(s.windows)}")
        bad = [x for x in signals if x not in SIGNALS]
        if bad:
            raise UserError(f"{file}: lines.{name}: unknown signals {bad}; known: {SIGNALS}")
    if not 0 <= s.kl_epsilon < 1 or not 0 <= s.rare_below <= 1:
        raise UserError(f"{file}: kl_epsilon and rare_below must be in [0, 1)")
    for key in ("min_labels", "per_intent_min_labels", "vocab_max_examples"):
        if getattr(s, key) < 1:
            raise UserError(f"{file}: {key}={getattr(s, key)} must be at least 1")
    a = s.alerts
    if a.min_window_n < 0 or a.clear_after < 1:
        raise UserError(f"{file}: alerts.min_window_n >= 0 and alerts.clear_after >= 1, please")
    names = [r.name for r in a.rules]
    if len(set(names)) != len(names):
        raise UserError(f"{file}: alerts.rules: each rule needs its own name, got {names}")
    for i, r in enumerate(a.rules):
        where = f"{file}: alerts.rules[{i}] ({r.name})"
        if r.window not in s.windows:
            raise UserError(f"{where}: window {r.window!r} is not one of {list(s.windows)}")
        if r.severity not in SEVERITIES:
            raise UserError(f"{where}: severity {r.severity!r}; use one of {SEVERITIES}")
        if not r.all and not r.any:
            raise UserError(f"{where}: give `all` or `any` conditions")
        for text in [*r.all, *r.any]:
            try:
                parse_condition(text, s.thresholds)
            except UserError as err:
                raise UserError(f"{where}: {err}") from None
    unknown = [r for r in s.roi.rules if r not in names]
    if unknown:
        raise UserError(f"{file}: roi.rules names no rule {unknown}; the rules are {names}")


def load_costs(path: str | Path | None = None) -> RetrainCosts:
    """The ``cost`` section of the retrain settings: ``conf/retrain/default.yaml``, with
    ``path``'s ``cost`` keys merged over it.

    Other sections of the file are the retrain command's and are not read here.

    Example:
        >>> c = load_costs()
        >>> c.labels_needed, c.money(c.labels_needed * c.price_per_label)
        (500, '$50.00')

    Raises:
        UserError: a missing file, an unknown key or a negative price; names the file and key.
    """
    file = Path(path) if path is not None else RETRAIN_CONFIG
    if not file.is_file():
        raise UserError(f"{file}: no retrain settings file (its cost: section prices a retrain)")
    c: RetrainCosts = load_typed(RetrainCosts, [RETRAIN_CONFIG, file], file, "cost", "cost")
    check_costs(c, file)
    return c


def check_costs(c: RetrainCosts, file: str | Path) -> None:
    """Raise a UserError naming ``file`` and the key of a negative count or price."""
    if c.labels_needed < 0:
        raise UserError(f"{file}: cost.labels_needed={c.labels_needed} must be >= 0")
    for key in ("price_per_label", "instance_price_per_hour", "unmeasured_training_minutes"):
        if getattr(c, key) < 0:
            raise UserError(f"{file}: cost.{key}={getattr(c, key)} must be >= 0")
    for key in ("training_minutes", "misrouted_message_cost"):
        if getattr(c, key) is not None and getattr(c, key) < 0:
            raise UserError(f"{file}: cost.{key}={getattr(c, key)} must be >= 0 or null")
