"""Promotion gates: pure functions from metric tables to a promote / reject decision.

Each gate takes :class:`Scores` (one model's figures on one set plus its per-example
predictions) and returns a :class:`GateResult`. :func:`decide` walks a small decision tree:

1. absolute floors (always): batch-1 P95 under budget; golden-set accuracy, macro F1 and
   rare recall above their floors;
2. no champion -> promote on the floors alone;
3. regressions against the champion, on the same examples: accuracy and macro F1 must not
   be *significantly* lower (McNemar / paired bootstrap, so noise cannot reject), rare recall
   may drop at most a margin, ECE may rise at most a margin;
4. gain: with ``require_significant_gain``, accuracy or macro F1 must be significantly
   higher (so noise cannot promote either).

Example:
    >>> import numpy as np
    >>> y = np.arange(200) % 4
    >>> cand = Scores.from_predictions(y, y, 4, ece=0.02, p95_ms=8.0)
    >>> d = decide(cand, champion=None, golden=cand, settings=GateSettings())
    >>> d.promote, d.reason
    (True, 'no champion; all absolute floors pass')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mangaassist.evaluation.settings import GateSettings
from mangaassist.evaluation.significance import batched_metric, mcnemar, paired_bootstrap

PASS, FAIL, SKIP = "pass", "fail", "skip"
_EPS = 1e-9  # a drop of exactly the margin passes despite float rounding (0.98 - 1.0)


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
        recalls = [(y_pred[y_true == c] == c).mean() for c in rare_idx if (y_true == c).any()]
        return cls(
            y_true=y_true,
            y_pred=y_pred,
            n_classes=n_classes,
            acc=float(batched_metric(y_true[None], y_pred[None], n_classes, "acc")[0]),
            macro_f1=float(batched_metric(y_true[None], y_pred[None], n_classes, "macro_f1")[0]),
            rare_recall=float(np.mean(recalls)) if recalls else None,
            ece=ece,
            p95_ms=p95_ms,
        )


@dataclass(frozen=True)
class GateResult:
    """One gate: its status, the figures it judged and, for paired gates, the test."""

    name: str
    status: str  # pass | fail | skip
    figures: str
    significance: str = ""
    verdict: str = ""  # paired gates: better | worse | tie

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


def _pct(v: float | None) -> str:
    return "na" if v is None else f"{100 * v:.2f}"


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


def gate_golden_floors(golden: Scores | None, s: GateSettings) -> list[GateResult]:
    """Golden-set accuracy, macro F1 and rare recall at or above their floors."""
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
        out.append(
            GateResult(
                f"golden_{key}",
                PASS if ok else FAIL,
                f"{_pct(value)} {'>=' if ok else '<'} floor {_pct(floor)}",
            )
        )
    return out


def gate_paired(cand: Scores, champ: Scores, metric: str, s: GateSettings) -> GateResult:
    """Candidate not significantly worse than the champion on ``acc`` or ``macro_f1``.

    Accuracy uses McNemar's test (or the paired bootstrap, per ``significance.accuracy_test``);
    macro F1 always the paired bootstrap. ``verdict`` says better / worse / tie.
    """
    _check_paired(cand, champ)
    sig = s.significance
    a, b = getattr(cand, metric), getattr(champ, metric)
    figures = f"candidate={_pct(a)} champion={_pct(b)} diff={100 * (a - b):+.2f}pp"
    if metric == "acc" and sig.accuracy_test == "mcnemar":
        t = mcnemar(cand.correct, champ.correct)
        significant = t["p_value"] < sig.alpha
        verdict = ("better" if t["b"] > t["c"] else "worse") if significant else "tie"
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
        text = (
            f"paired_bootstrap n={sig.n_boot} ci95=[{100 * t['lo']:+.2f}, "
            f"{100 * t['hi']:+.2f}]pp p={t['p_value']:.4f}"
        )
    status = FAIL if verdict == "worse" else PASS
    return GateResult(metric, status, figures, f"{text} -> {verdict}", verdict)


def gate_rare_recall(cand: Scores, champ: Scores, margin: float) -> GateResult:
    """Rare-class recall may fall at most ``margin`` below the champion's."""
    if cand.rare_recall is None or champ.rare_recall is None:
        return GateResult("rare_recall", SKIP, "no rare-class example in the comparison set")
    diff = cand.rare_recall - champ.rare_recall
    ok = diff >= -margin - _EPS
    return GateResult(
        "rare_recall",
        PASS if ok else FAIL,
        f"candidate={_pct(cand.rare_recall)} champion={_pct(champ.rare_recall)} "
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
) -> Decision:
    """Run every gate and walk the decision tree (see the module docstring).

    Args:
        candidate: the candidate on the comparison set (with ``p95_ms`` and ``ece``).
        champion: the champion on the same examples, or None when there is none.
        golden: the candidate on the golden set, or None when there is none.
        settings: margins, floors and significance settings.
        champion_name: shown in the path (e.g. the registry version).
    """
    s = settings
    floors = [gate_latency(candidate, s.latency_p95_ms), *gate_golden_floors(golden, s)]
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
    gates = floors + paired + margins
    regressions = [g.name for g in paired + margins if g.failed]
    path.append(f"regressions={','.join(regressions) or 'none'}")
    gains = [g.name for g in paired if g.verdict == "better"]
    if not s.require_significant_gain:
        path.append("gain=not_required")
    else:
        path.append(f"gain={','.join(gains) + '(significant)' if gains else 'none(within noise)'}")

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
