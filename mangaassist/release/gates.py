"""Promotion gates: pure functions from metric tables to a promote / reject decision.

Each model gate takes :class:`Scores` (one model's figures on one set plus its per-example
predictions) and returns a :class:`GateResult`; the operational gates take the evidence read
from a load test (:class:`LoadTest`) and a shadow report (:class:`ShadowEvidence`). Files are
read by :mod:`mangaassist.release.promotion`, never here. :func:`decide` walks a small
decision tree:

1. absolute floors (always): batch-1 P95 under budget; golden-set accuracy, macro F1 and
   rare recall above their floors; and the operational floors: P95 and error rate under load,
   and the shadow test (agreement, no critical-intent regression, enough paired traffic, the
   right candidate). An operational gate without its evidence is skipped (``require_*``
   settings make that a fail); the ``[PATH]``'s ``floors=`` names every failed floor;
2. no champion -> promote on the floors alone;
3. regressions against the champion, on the same examples: accuracy and macro F1 must not
   be *significantly* lower (McNemar / paired bootstrap, so noise cannot reject), rare recall
   may drop at most a margin, ECE may rise at most a margin;
4. gain: with ``require_significant_gain``, accuracy or macro F1 must be significantly
   higher (so noise cannot promote either). Two tests are two chances to pass, so the gain
   is judged with a correction for multiple tests (``significance.gain_correction``): Holm-
   Bonferroni over the two p-values (default), or ``both``, each p below alpha. The ``gain``
   row of the gate table names the rule and the adjusted p-values. The regression checks of
   step 3 keep the uncorrected alpha: correcting them would make a drop easier to miss.

Example:
    >>> import numpy as np
    >>> y = np.arange(200) % 4
    >>> cand = Scores.from_predictions(y, y, 4, ece=0.02, p95_ms=8.0)
    >>> d = decide(cand, champion=None, golden=cand, settings=GateSettings())
    >>> d.promote, d.reason
    (True, 'no champion; all absolute floors pass')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mangaassist.evaluation.settings import GateSettings
from mangaassist.evaluation.significance import (
    batched_metric,
    bootstrap_interval,
    mcnemar,
    paired_bootstrap,
    target_verdict,
)
from mangaassist.model.metrics import rare_recall_of
from mangaassist.training.lines import percent

PASS, FAIL, SKIP = "pass", "fail", "skip"
_EPS = 1e-9  # a drop of exactly the margin passes despite float rounding (0.98 - 1.0)
OPERATIONAL = ("load_p95", "load_error_rate", "shadow")  # gate names, in table order


@dataclass(frozen=True)
class Scores:
    """One model's figures on one evaluation set, with the predictions behind them.

    Fractions in [0, 1]; ``p95_ms`` in milliseconds; ``rare_recall`` None when the set has no
    rare-class example. ``y_true`` / ``y_pred`` are (N,) indices; paired gates need two
    Scores on the same examples in the same order.
    """

    y_true: np.ndarray
    y_pred: np.ndarray
    n_classes: int
    acc: float
    macro_f1: float
    rare_recall: float | None = None
    ece: float | None = None
    p95_ms: float | None = None
    rare_idx: tuple[int, ...] = ()  # the rare classes rare_recall averages over

    @property
    def correct(self) -> np.ndarray:
        """(N,) bool: each prediction right or wrong."""
        return self.y_true == self.y_pred

    @classmethod
    def from_predictions(
        cls,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        n_classes: int,
        rare_idx: Sequence[int] = (),
        ece: float | None = None,
        p95_ms: float | None = None,
    ) -> Scores:
        """Compute accuracy, macro F1 and rare recall (mean over rare classes present)."""
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        return cls(
            y_true=y_true,
            y_pred=y_pred,
            n_classes=n_classes,
            acc=float(batched_metric(y_true[None], y_pred[None], n_classes, "acc")[0]),
            macro_f1=float(batched_metric(y_true[None], y_pred[None], n_classes, "macro_f1")[0]),
            rare_recall=rare_recall_of(y_true, y_pred, rare_idx),
            ece=ece,
            p95_ms=p95_ms,
            rare_idx=tuple(int(i) for i in rare_idx),
        )


@dataclass(frozen=True)
class LoadRun:
    """One open-loop run of ``mangaassist loadtest`` (or one step of ``--find-max``).

    ``rate`` is the offered (scheduled) rate in req/s, the one the latencies were measured
    at; ``p95_ms`` is None when no request was answered; ``error_rate`` is errors / requests
    scheduled. ``errors``, ``scheduled`` and ``achieved_rps`` are shown when known.
    """

    rate: float
    p95_ms: float | None
    error_rate: float
    errors: int | None = None
    scheduled: int | None = None
    achieved_rps: float | None = None


@dataclass(frozen=True)
class LoadTest:
    """A load-test file: one run, or every step of a ``--find-max`` search (``find_max``)."""

    runs: tuple[LoadRun, ...]
    find_max: bool = False
    source: str = ""


@dataclass(frozen=True)
class ShadowEvidence:
    """What the shadow gate reads from a ``mangaassist shadow-report --json`` file.

    ``regressed`` names the critical intents that regressed (with their flips), when the
    report says which.
    """

    agreement: float
    critical_regression: bool
    n_paired: int
    candidate_version: str
    champion_version: str | None = None
    regressed: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class GateResult:
    """One gate: its status, the figures it judged and, for paired gates, the test."""

    name: str
    status: str  # pass | fail | skip
    figures: str
    significance: str = ""
    verdict: str = ""  # paired gates: better | worse | tie, at the uncorrected alpha
    p_value: float | None = None  # paired gates: two-sided p of the paired test
    direction: str = ""  # paired gates: higher | lower | equal (the candidate's point figure)

    @property
    def failed(self) -> bool:
        """True only for a gate that ran and failed."""
        return self.status == FAIL


@dataclass
class Decision:
    """The outcome: promote or not, why, the path through the tree and every gate."""

    promote: bool
    reason: str
    path: list[str] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready: promote, reason, path and one object per gate (for the model card)."""
        return {
            "promote": self.promote,
            "reason": self.reason,
            "path": list(self.path),
            "gates": [dataclasses.asdict(g) for g in self.gates],
        }


def _check_paired(cand: Scores, champ: Scores) -> None:
    if cand.y_true.shape != champ.y_true.shape or not np.array_equal(cand.y_true, champ.y_true):
        raise ValueError("candidate and champion must be scored on the same examples, same order")


def gate_latency(cand: Scores, budget_ms: float) -> GateResult:
    """P95 batch-1 latency strictly below the budget."""
    if cand.p95_ms is None:
        return GateResult("latency_p95", FAIL, f"p95=unmeasured budget={budget_ms:g}ms")
    ok = cand.p95_ms < budget_ms
    return GateResult(
        "latency_p95",
        PASS if ok else FAIL,
        f"p95={cand.p95_ms:.2f}ms {'<' if ok else '>='} {budget_ms:g}ms",
    )


def _golden_interval(golden: Scores, key: str, s: GateSettings) -> tuple[float, float]:
    """The bootstrap interval (``significance`` n_boot, seed, alpha) of one golden figure."""
    sig = s.significance
    if key == "rare_recall":

        def stat(t: np.ndarray, p: np.ndarray) -> np.ndarray:
            values = [rare_recall_of(tr, pr, golden.rare_idx) for tr, pr in zip(t, p, strict=True)]
            return np.array([np.nan if v is None else v for v in values])

    else:

        def stat(t: np.ndarray, p: np.ndarray) -> np.ndarray:
            return batched_metric(t, p, golden.n_classes, key)

    return bootstrap_interval((golden.y_true, golden.y_pred), stat, sig.n_boot, sig.seed, sig.alpha)


def gate_golden_floors(golden: Scores | None, s: GateSettings) -> list[GateResult]:
    """Golden-set accuracy, macro F1 and rare recall at or above their floors.

    The gate passes on the point estimate; its figures give the bootstrap interval and
    whether the floor is ``met`` (the whole interval clears it), ``within noise`` (the point
    does, the interval reaches below) or ``not met`` (see
    :func:`~mangaassist.evaluation.significance.target_verdict`).
    """
    floors = s.golden_floors
    if golden is None:
        return [
            GateResult(f"golden_{k}", SKIP, "no golden set scored")
            for k in ("acc", "macro_f1", "rare_recall")
        ]
    out = []
    for key, floor in (
        ("acc", floors.acc),
        ("macro_f1", floors.macro_f1),
        ("rare_recall", floors.rare_recall),
    ):
        value = getattr(golden, key)
        if value is None:
            out.append(GateResult(f"golden_{key}", SKIP, "no rare-class example in the golden set"))
            continue
        ok = value >= floor
        lo, hi = _golden_interval(golden, key, s)
        band = f"{100 * (1 - s.significance.alpha):g}% CI {percent(lo, 2)}-{percent(hi, 2)}"
        out.append(
            GateResult(
                f"golden_{key}",
                PASS if ok else FAIL,
                f"{percent(value, 2)} ({band}) {'>=' if ok else '<'} floor {percent(floor, 2)}: "
                f"{target_verdict(value, lo, floor)}",
            )
        )
    return out


def _no_evidence(name: str, what: str, flag: str, required: bool, key: str) -> GateResult:
    """Skip a gate whose evidence was not given, or fail it when the settings require it."""
    if required:
        return GateResult(name, FAIL, f"no {what} given ({flag}) and gates.{key} is true")
    return GateResult(name, SKIP, f"no {what} given ({flag})")


def judged_run(load: LoadTest, s: GateSettings) -> tuple[LoadRun, str]:
    """The run both load gates judge, and a note saying which it is.

    A single run is judged as is. Of a ``--find-max`` search, the highest-rate step that meets
    *these* gates (P95 below ``load_p95_ms`` and error rate below ``load_max_error_rate``), not
    the file's own ``max_sustained_rps``: that used the load test's ``--budget-ms`` and zero
    errors, which need not be the gates' limits. When no step meets them, the lowest-rate step
    is judged (and fails): the server misses the limits even at the gentlest load tried.
    """
    if not load.find_max:
        return load.runs[0], ""
    n = len(load.runs)
    within = [
        r
        for r in load.runs
        if r.p95_ms is not None
        and r.p95_ms < s.load_p95_ms
        and r.error_rate < s.load_max_error_rate
    ]
    if within:
        return max(within, key=lambda r: r.rate), f"find-max: fastest of {n} steps within the gates"
    return min(load.runs, key=lambda r: r.rate), f"find-max: none of {n} steps within; the slowest"


def _rate(run: LoadRun) -> str:
    achieved = "" if run.achieved_rps is None else f" (achieved {run.achieved_rps:g})"
    return f"rate={run.rate:g}req/s{achieved}"


def gate_load_p95(load: LoadTest | None, s: GateSettings) -> GateResult:
    """P95 under load strictly below ``load_p95_ms``, at an offered rate >= ``load_min_rps``."""
    name = "load_p95"
    if load is None:
        return _no_evidence(
            name, "load test", "--load-test FILE", s.require_load_test, "require_load_test"
        )
    run, note = judged_run(load, s)
    rate_ok = run.rate >= s.load_min_rps
    rate = _rate(run)
    if s.load_min_rps > 0:  # 0 = any rate: no comparison worth printing
        rate += f" {'>=' if rate_ok else '<'} required {s.load_min_rps:g}req/s"
    note = f" [{note}]" if note else ""
    if run.p95_ms is None:
        return GateResult(name, FAIL, f"p95=unmeasured (no request answered) {rate}{note}")
    ok = run.p95_ms < s.load_p95_ms
    return GateResult(
        name,
        PASS if ok and rate_ok else FAIL,
        f"p95={run.p95_ms:.2f}ms {'<' if ok else '>='} {s.load_p95_ms:g}ms {rate}{note}",
    )


def gate_load_error_rate(load: LoadTest | None, s: GateSettings) -> GateResult:
    """Load-test error rate (errors / requests sent) strictly below ``load_max_error_rate``."""
    name = "load_error_rate"
    if load is None:
        return _no_evidence(
            name, "load test", "--load-test FILE", s.require_load_test, "require_load_test"
        )
    run, note = judged_run(load, s)
    note = f" [{note}]" if note else ""
    if run.scheduled == 0:
        return GateResult(name, FAIL, f"no request was sent {_rate(run)}{note}")
    ok = run.error_rate < s.load_max_error_rate
    count = (
        "" if run.errors is None or run.scheduled is None else f" ({run.errors} of {run.scheduled})"
    )
    return GateResult(
        name,
        PASS if ok else FAIL,
        f"error_rate={100 * run.error_rate:.2f}%{count} {'<' if ok else '>='} "
        f"{100 * s.load_max_error_rate:.2f}% {_rate(run)}{note}",
    )


def gate_shadow(
    shadow: ShadowEvidence | None,
    s: GateSettings,
    candidate_versions: Sequence[str] = (),
    champion: str | None = None,
) -> GateResult:
    """Shadow test: agreement, no critical-intent regression, enough traffic, right candidate.

    Args:
        shadow: the report's figures, or None when no report was given.
        s: ``shadow_min_agreement``, ``shadow_min_messages``, ``require_shadow``.
        candidate_versions: the registry version(s) the gated candidate is; the report's
            ``candidate_version`` must be one of them. Empty: unknown (an unregistered run
            directory), not checked.
        champion: the current champion, to note a report made beside an older one.
    """
    name = "shadow"
    if shadow is None:
        return _no_evidence(
            name, "shadow report", "--shadow-report FILE", s.require_shadow, "require_shadow"
        )
    agree_ok = shadow.agreement >= s.shadow_min_agreement - _EPS
    enough = shadow.n_paired >= s.shadow_min_messages
    right = not candidate_versions or shadow.candidate_version in candidate_versions
    critical = "none"
    if shadow.critical_regression:
        critical = ",".join(shadow.regressed) or "yes"
    parts = [
        f"agreement={percent(shadow.agreement, 2)}% {'>=' if agree_ok else '<'} "
        f"{percent(s.shadow_min_agreement, 2)}%",
        f"critical_intent_regression={critical}",
        f"paired={shadow.n_paired} {'>=' if enough else '<'} {s.shadow_min_messages}"
        + ("" if enough else " (too little shadow traffic)"),
    ]
    if right:
        parts.append(f"candidate={shadow.candidate_version}")
    else:
        parts.append(
            f"candidate={shadow.candidate_version} (version mismatch: the report is of "
            f"{shadow.candidate_version}, the candidate is {'/'.join(candidate_versions)})"
        )
    if shadow.champion_version:
        parts.append(f"champion={shadow.champion_version}")
        if champion and champion != shadow.champion_version:
            parts[-1] += f" (the champion is now {champion})"
    ok = agree_ok and enough and right and not shadow.critical_regression
    return GateResult(name, PASS if ok else FAIL, "; ".join(parts))  # five checks: keep apart


def gate_operational(
    load: LoadTest | None,
    shadow: ShadowEvidence | None,
    s: GateSettings,
    candidate_versions: Sequence[str] = (),
    champion: str | None = None,
) -> list[GateResult]:
    """The three operational floors, in :data:`OPERATIONAL` order."""
    return [
        gate_load_p95(load, s),
        gate_load_error_rate(load, s),
        gate_shadow(shadow, s, candidate_versions, champion),
    ]


def gate_paired(cand: Scores, champ: Scores, metric: str, s: GateSettings) -> GateResult:
    """Candidate not significantly worse than the champion on ``acc`` or ``macro_f1``.

    Accuracy uses McNemar's test (or the paired bootstrap, per ``significance.accuracy_test``);
    macro F1 always the paired bootstrap. ``verdict`` says better / worse / tie.
    """
    _check_paired(cand, champ)
    sig = s.significance
    a, b = getattr(cand, metric), getattr(champ, metric)
    figures = f"candidate={percent(a, 2)} champion={percent(b, 2)} diff={100 * (a - b):+.2f}pp"
    if metric == "acc" and sig.accuracy_test == "mcnemar":
        t = mcnemar(cand.correct, champ.correct)
        significant = t["p_value"] < sig.alpha
        verdict = ("better" if t["b"] > t["c"] else "worse") if significant else "tie"
        p, direction = t["p_value"], _direction(t["b"] - t["c"])
        text = (
            f"mcnemar({t['method']}) cand_only_right={t['b']} champ_only_right={t['c']} "
            f"p={t['p_value']:.4f}"
        )
    else:
        t = paired_bootstrap(
            cand.y_true,
            cand.y_pred,
            champ.y_pred,
            cand.n_classes,
            metric,
            sig.n_boot,
            sig.seed,
            sig.alpha,
        )
        verdict = t["verdict"]
        p, direction = t["p_value"], _direction(t["diff"])
        text = (
            f"paired_bootstrap n={sig.n_boot} ci95=[{100 * t['lo']:+.2f}, "
            f"{100 * t['hi']:+.2f}]pp p={t['p_value']:.4f}"
        )
    status = FAIL if verdict == "worse" else PASS
    return GateResult(metric, status, figures, f"{text} -> {verdict}", verdict, float(p), direction)


def _direction(diff: float) -> str:
    return "higher" if diff > 0 else "lower" if diff < 0 else "equal"


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given.

    The i-th smallest p (from 0) is multiplied by ``m - i`` and kept monotone, so rejecting
    every adjusted p below alpha holds the family-wise error rate at alpha.

    Example:
        >>> holm_adjusted([0.03, 0.40])
        [0.06, 0.4]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = round(running, 12)  # 2 * 0.03 is 0.06, not 0.060000000000000005
    return out


def gate_gain(paired: Sequence[GateResult], s: GateSettings) -> tuple[GateResult, list[str]]:
    """Significant gain on accuracy or macro F1, corrected for testing both.

    ``holm``: a metric gains when its Holm-adjusted p is below alpha and the candidate is
    higher on it. ``both``: every metric's own p is below alpha and the candidate is higher
    on every one (then all of them gain). Without ``require_significant_gain`` the row is
    shown but skipped.

    Returns:
        The ``gain`` row and the names of the metrics with a significant gain.
    """
    sig = s.significance
    ps = [g.p_value if g.p_value is not None else 1.0 for g in paired]
    if sig.gain_correction == "holm":
        adjusted = holm_adjusted(ps)
        gains = [
            g.name
            for g, q in zip(paired, adjusted, strict=True)
            if q < sig.alpha and g.direction == "higher"
        ]
        each = ", ".join(
            f"{g.name} p={p:.4f} adj={q:.4f}" for g, p, q in zip(paired, ps, adjusted, strict=True)
        )
        rule = f"holm-bonferroni over {len(paired)} tests, alpha={sig.alpha:g}: {each}"
    else:  # both: every test significant and in the candidate's favour
        ok = all(p < sig.alpha and g.direction == "higher" for g, p in zip(paired, ps, strict=True))
        gains = [g.name for g in paired] if ok else []
        each = ", ".join(f"{g.name} p={p:.4f}" for g, p in zip(paired, ps, strict=True))
        rule = f"both must be significant, alpha={sig.alpha:g}: {each}"
    figures = f"{rule}; gain={','.join(gains) or 'none'}"
    if not s.require_significant_gain:
        return GateResult("gain", SKIP, f"{figures} (not required)"), gains
    return GateResult("gain", PASS if gains else FAIL, figures), gains


def gate_rare_recall(cand: Scores, champ: Scores, margin: float) -> GateResult:
    """Rare-class recall may fall at most ``margin`` below the champion's."""
    if cand.rare_recall is None or champ.rare_recall is None:
        return GateResult("rare_recall", SKIP, "no rare-class example in the comparison set")
    diff = cand.rare_recall - champ.rare_recall
    ok = diff >= -margin - _EPS
    return GateResult(
        "rare_recall",
        PASS if ok else FAIL,
        f"candidate={percent(cand.rare_recall, 2)} champion={percent(champ.rare_recall, 2)} "
        f"diff={100 * diff:+.2f}pp allowed>={-100 * margin:+.2f}pp",
    )


def gate_ece(cand: Scores, champ: Scores, margin: float) -> GateResult:
    """Calibrated ECE may rise at most ``margin`` above the champion's."""
    if cand.ece is None or champ.ece is None:
        return GateResult("ece", FAIL, "ECE missing for candidate or champion")
    ok = cand.ece <= champ.ece + margin + _EPS
    return GateResult(
        "ece",
        PASS if ok else FAIL,
        f"candidate={cand.ece:.4f} champion={champ.ece:.4f} allowed<={champ.ece + margin:.4f}",
    )


def decide(
    candidate: Scores,
    champion: Scores | None,
    golden: Scores | None,
    settings: GateSettings,
    champion_name: str = "champion",
    *,
    load: LoadTest | None = None,
    shadow: ShadowEvidence | None = None,
    candidate_versions: Sequence[str] = (),
) -> Decision:
    """Run every gate and walk the decision tree (see the module docstring).

    Args:
        candidate: the candidate on the comparison set (with ``p95_ms`` and ``ece``).
        champion: the champion on the same examples, or None when there is none.
        golden: the candidate on the golden set, or None when there is none.
        settings: margins, floors and significance settings.
        champion_name: shown in the path (e.g. the registry version).
        load: the candidate's load test, or None (its gates skip, or fail if required).
        shadow: the candidate's shadow report, or None (likewise).
        candidate_versions: registry version(s) the candidate is, to check the shadow
            report is of it (empty: not checked).
    """
    s = settings
    floors = [
        gate_latency(candidate, s.latency_p95_ms),
        *gate_golden_floors(golden, s),
        *gate_operational(
            load, shadow, s, candidate_versions, champion_name if champion is not None else None
        ),
    ]
    failed_floors = [g.name for g in floors if g.failed]
    path = [f"floors={'fail(' + ','.join(failed_floors) + ')' if failed_floors else 'pass'}"]
    if champion is None:
        path.append("champion=none")
        if failed_floors:
            return Decision(
                False, f"absolute floor(s) failed: {', '.join(failed_floors)}", path, floors
            )
        return Decision(True, "no champion; all absolute floors pass", path, floors)

    path.append(f"champion={champion_name}")
    paired = [gate_paired(candidate, champion, m, s) for m in ("acc", "macro_f1")]
    margins = [
        gate_rare_recall(candidate, champion, s.rare_recall_margin),
        gate_ece(candidate, champion, s.ece_margin),
    ]
    gain, gains = gate_gain(paired, s)
    gates = [*floors, *paired, *margins, gain]
    regressions = [g.name for g in paired + margins if g.failed]
    path.append(f"regressions={','.join(regressions) or 'none'}")
    rule = s.significance.gain_correction
    if not s.require_significant_gain:
        path.append("gain=not_required")
    elif gains:
        path.append(f"gain={','.join(gains)}(significant, {rule})")
    else:
        path.append(f"gain=none(within noise, {rule})")

    if failed_floors:
        reason = f"absolute floor(s) failed: {', '.join(failed_floors)}"
        if regressions:
            reason += f"; regression(s) vs {champion_name}: {', '.join(regressions)}"
        return Decision(False, reason, path, gates)
    if regressions:
        return Decision(
            False, f"regression(s) vs {champion_name}: {', '.join(regressions)}", path, gates
        )
    if s.require_significant_gain and not gains:
        return Decision(
            False,
            f"no significant gain over {champion_name} (differences are within noise)",
            path,
            gates,
        )
    if gains:
        return Decision(
            True,
            f"significantly better than {champion_name} on {', '.join(gains)}; no regression",
            path,
            gates,
        )
    return Decision(True, f"no regression vs {champion_name}; floors pass", path, gates)


def format_decision(d: Decision) -> list[str]:
    """Grep-able lines: one ``[GATE]`` per gate, the ``[PATH]``, then ``[DECISION]``."""
    lines = []
    for g in d.gates:
        line = f'[GATE] name={g.name} status={g.status} figures="{g.figures}"'
        if g.significance:
            line += f' significance="{g.significance}"'
        lines.append(line)
    lines.append("[PATH] " + " -> ".join([*d.path, "promote" if d.promote else "reject"]))
    reason = d.reason.replace('"', "'")
    lines.append(f'[DECISION] promote={"yes" if d.promote else "no"} reason="{reason}"')
    return lines
