"""The ablation table: runs grouped by a config key (``loss.name``), mean ± std over seeds.

Per group: test accuracy, macro F1, rare-class accuracy (``test/rare_recall``: mean recall
of the classes under ``rare_below`` of the training data), ECE after and before temperature
scaling, golden-set accuracy and training minutes; beside the team's published overall /
rare accuracy, and the target check "candidate beats baseline on rare-class accuracy by at
least N points". Writes ``ablation.md`` and ``ablation.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mangaassist.atomic import write_text
from mangaassist.comparison.runs import FailedRun, RunRecord, config_key
from mangaassist.comparison.settings import AblationSettings
from mangaassist.comparison.tables import Stat, fmt_stat, markdown, mean_std, write_csv
from mangaassist.errors import UserError

# (short name, metric key, scale, decimals): percentages for rates, fractions for ECE.
METRICS = (
    ("acc", "test/acc", 100, 1),
    ("macro_f1", "test/macro_f1", 100, 1),
    ("rare_acc", "test/rare_recall", 100, 1),
    ("ece_after", "test/ece_after", 1, 3),
    ("ece_before", "test/ece_before", 1, 3),
    ("golden_acc", "golden/acc", 100, 1),
    ("minutes", "train_minutes", 1, 1),
)
HEADERS = ("acc %", "macro F1 %", "rare acc %", "ECE after T", "ECE before T", "golden acc %")


@dataclass
class Group:
    """The runs that share one value of the grouping key, and their statistics."""

    value: str
    runs: list[RunRecord]
    stats: dict[str, Stat | None] = field(default_factory=dict)


def group_runs(runs: Sequence[RunRecord], by: str, order: Sequence[str] = ()) -> list[Group]:
    """Groups by config key ``by``: values in ``order`` first, then the others sorted."""
    key = config_key(by)
    groups: dict[str, Group] = {}
    for r in runs:
        value = str(r.get(key, "?"))
        groups.setdefault(value, Group(value, [])).runs.append(r)
    for g in groups.values():
        g.stats = {name: mean_std(r.metric(k) for r in g.runs) for name, k, _, _ in METRICS}
    rank = {v: i for i, v in enumerate(order)}
    return sorted(groups.values(), key=lambda g: (rank.get(g.value, len(rank)), g.value))


def rare_gain_check(groups: Sequence[Group], s: AblationSettings) -> tuple[str, float | None]:
    """The target sentence and the gain in points (None when a side has no rare figure)."""
    stats = {g.value: g.stats.get("rare_acc") for g in groups}
    target = (
        f"{s.candidate} beats {s.baseline} on rare-class accuracy by >= "
        f"{s.min_rare_gain_points:g} points"
    )
    cand, base = stats.get(s.candidate), stats.get(s.baseline)
    if cand is None or base is None:
        missing = s.candidate if cand is None else s.baseline
        return f"{target}: n/a (no {missing} runs with a test rare-class figure)", None
    gain = 100 * (cand.mean - base.mean)
    verdict = "yes" if gain >= s.min_rare_gain_points else "no"
    return f"{target}: {verdict} ({gain:+.1f})", gain


def ablation_line(key: str, g: Group) -> str:
    """``[ABLATION] loss=focal_weighted n=3 acc=92.1±0.3 ...``."""
    parts = [f"[ABLATION] {key.split('.')[0]}={g.value} n={len(g.runs)}"]
    parts += [f"{name}={fmt_stat(g.stats[name], sc, d)}" for name, _, sc, d in METRICS]
    return " ".join(parts)


def ablation_table(
    runs: Sequence[RunRecord],
    failed: Sequence[FailedRun],
    out_dir: Path,
    settings: AblationSettings,
    published: dict | None = None,
    by: str | None = None,
) -> list[str]:
    """Write ``ablation.md`` / ``ablation.csv``; returns the ``[ABLATION]`` lines.

    Args:
        published: the ``ablation`` block of ``published.yaml`` (``source``, ``rows``).
        by: grouping key (default ``settings.by``).
    """
    if not runs:
        raise UserError("no finished runs to build the ablation table from; pass run folders")
    key = config_key(by or settings.by)
    published = published or {}
    data = {str(r.get("data.name", "?")) for r in runs}
    same_data = published.get("data") is None or data == {published.get("data")}
    pub = published.get("rows", {}) if key == "loss.name" and same_data else {}
    groups = group_runs(runs, key, order=list(pub))
    check, gain = rare_gain_check(groups, settings) if key == "loss.name" else ("", None)
    headers = [key, "n", *HEADERS, "train min"]
    if pub:
        headers += ["published as", "published acc %", "published rare acc %"]
    rows, raw = [], []
    for g in groups:
        cells = [g.value, str(len(g.runs))]
        cells += [fmt_stat(g.stats[name], sc, d) for name, _, sc, d in METRICS]
        p = pub.get(g.value)
        if pub:
            cells += (
                [p["published_name"], f"{p['acc']:.1f}", f"{p['rare_acc']:.1f}"] if p else [""] * 3
            )
        rows.append(cells)
        row = {key: g.value, "n": len(g.runs)}
        for name, _, sc, _ in METRICS:
            st = g.stats[name]
            row[f"{name}_mean"] = None if st is None else st.mean * sc
            row[f"{name}_std"] = None if st is None else st.std * sc
        if p:
            row |= {"published_acc": p["acc"], "published_rare_acc": p["rare_acc"]}
        raw.append(row)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "ablation.csv", raw)
    seeds = sorted({str(r.get("seed", "?")) for r in runs})
    md = [
        f"# Ablation by `{key}`",
        "",
        f"Mean ± sample std over the runs of each group (seeds {', '.join(seeds)}); test split "
        "unless named. Rare-class accuracy = mean recall of the classes under `rare_below` of "
        "the training data. ECE is a fraction (15 bins), after and before temperature scaling.",
        "",
        markdown(headers, rows),
    ]
    if pub:
        md += ["", f"Published: {published.get('source', 'no source given')}."]
    elif published.get("rows") and not same_data:
        md += [
            "",
            f"The published table is on {published['data']}; these runs are on "
            f"{', '.join(sorted(data))}, so it is not shown.",
        ]
    if check:
        md += ["", f"**Target:** {check}"]
    md += ["", "Runs:", "", *(f"- `{r.path}`" for g in groups for r in g.runs)]
    if failed:
        md += ["", "Jobs without results:", ""]
        md += [f"- `{f.path}` ({' '.join(f.overrides)}): {f.error}" for f in failed]
    write_text(out_dir / "ablation.md", "\n".join(md) + "\n")
    lines = [ablation_line(key, g) for g in groups]
    if check:
        target, verdict = check.rsplit(": ", 1)
        result = "n/a" if gain is None else f"{verdict.split()[0]} gain={gain:+.1f}"
        lines.append(f'[ABLATION] target="{target}" result={result}')
    lines += [f"[ABLATION] failed={f.path} reason={f.error!r}" for f in failed]
    lines.append(f"[ABLATION] out={out_dir / 'ablation.md'}")
    return lines
