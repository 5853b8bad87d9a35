"""``mangaassist shadow-report``: how a shadow candidate's answers compare with the champion's.

With shadow mode on, the prediction log holds, for a message, the champion's line
(``"role": "champion"``, or no ``role`` in logs written before shadow mode) and the candidate's
(``"role": "shadow"``) with the same ``request_id`` and ``item``. :func:`shadow_report` pairs
them and measures agreement, the champion x candidate matrix, confidence, fallback and latency
deltas, the critical intent regression defined in ``conf/shadow/default.yaml`` and, given a
labelled sample of the same traffic, each model's accuracy with McNemar's paired test.

One report covers one (champion, candidate) pair of versions. A log that spans a champion
switch holds several; then pass ``champion=``/``candidate=`` (``--champion``/``--candidate``):
mixing two champions would blur exactly the comparison the report is for.

Example:
    >>> recs = [{"request_id": "r1", "item": 0, "model_version": "v3", "intent": "faq"},
    ...         {"request_id": "r1", "item": 0, "model_version": "v4", "intent": "faq",
    ...          "role": "shadow"}]
    >>> format_line(shadow_report(recs))
    '[SHADOW] agreement_with_champion=100.0% disagreement_rate=0.0% \
critical_intent_regression=false champion=v3 candidate=v4 paired=1 unpaired_champion=0'
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

import mangaassist
from mangaassist.data.schema import INTENTS
from mangaassist.errors import UserError
from mangaassist.training.lines import percent

DEFAULT_CONFIG = (
    Path(mangaassist.__file__).resolve().parents[1] / "conf" / "shadow" / "default.yaml"
)
HOW_TO_SHADOW = (
    "turn shadow mode on with `mangaassist serve --registry registry/ --shadow VERSION` "
    "(or a `candidate` pointer in the registry) and let it answer some traffic"
)
Key = tuple[str, int]
ROLES = ("champion", "candidate")  # pair order: (champion line, shadow line)


@dataclass
class ShadowSettings:
    """One field per key of ``conf/shadow/default.yaml`` (its comments document each)."""

    critical_intents: list[str] = field(
        default_factory=lambda: ["escalation", "return_request", "order_tracking", "checkout_help"]
    )
    max_flips_away: int = 0
    max_flip_share: float = 0.02
    min_agreement: float = 0.95
    alpha: float = 0.05
    max_messages_shown: int = 200


def load_shadow_settings(path: str | Path | None = None) -> ShadowSettings:
    """Settings from ``path`` or the packaged ``conf/shadow/default.yaml``.

    Raises:
        UserError: a missing file, an unknown key, or a value of the wrong type or range.
    """
    file = Path(path) if path is not None else DEFAULT_CONFIG
    if not file.is_file():
        where = "" if path is not None else " (the packaged default; reinstall, or pass --config)"
        raise UserError(f"{file}: no shadow settings file{where}")
    keys = ", ".join(f.name for f in fields(ShadowSettings))
    try:
        loaded = OmegaConf.load(file)
        if not isinstance(loaded, DictConfig):
            raise UserError(f"{file}: shadow settings must be a mapping of: {keys}")
        merged = OmegaConf.merge(OmegaConf.structured(ShadowSettings), loaded)
        s = ShadowSettings(**OmegaConf.to_container(merged))  # type: ignore[arg-type]
    except UserError:
        raise
    except Exception as err:  # OmegaConf's key/type errors, or YAML that does not parse
        key = getattr(err, "full_key", None) or "?"
        msg = str(err).splitlines()[0]
        raise UserError(f"{file}: bad shadow setting {key} ({msg}); the keys are: {keys}") from err
    bad = [i for i in s.critical_intents if i not in INTENTS]
    if bad:
        raise UserError(f"{file}: critical_intents {bad} are not intents; use some of {INTENTS}")
    for key in ("max_flip_share", "min_agreement", "alpha"):
        if not 0 <= getattr(s, key) <= 1:
            raise UserError(f"{file}: {key}={getattr(s, key)} must be in [0, 1]")
    for key in ("max_flips_away", "max_messages_shown"):
        if getattr(s, key) < 0:
            raise UserError(f"{file}: {key}={getattr(s, key)} must be at least 0")
    return s


def read_labels(path: str | Path) -> dict[Key, str]:
    """The labelled sample (:func:`~mangaassist.serve.predlog.read_label_sample`), intents only."""
    from mangaassist.serve.predlog import read_label_sample

    return read_label_sample(path, INTENTS)


def _key(rec: Mapping[str, Any]) -> Key | None:
    rid, item = rec.get("request_id"), rec.get("item", 0)
    if not isinstance(rid, str) or isinstance(item, bool) or not isinstance(item, int):
        return None
    return rid, item


def _num(x: Any) -> float | None:
    ok = isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
    return float(x) if ok else None


def _share(n: int, d: int) -> float | None:
    return n / d if d else None


def _pair(records: Iterable[Mapping[str, Any]], champion: str | None, candidate: str | None):
    """Pair shadow lines with champion lines by (request_id, item); returns pairs and counts."""
    champs: dict[Key, Mapping[str, Any]] = {}
    dup: set[Key] = set()
    shadows: list[tuple[Key, Mapping[str, Any]]] = []
    for rec in records:
        key = _key(rec)
        if key is None or not isinstance(rec.get("intent"), str) or rec.get("status", 200) != 200:
            continue
        if rec.get("role", "champion") == "champion":
            if key in champs:  # a reused X-Request-ID: which champion a shadow line joins is moot
                dup.add(key)
            champs.setdefault(key, rec)
        elif rec.get("role") == "shadow":
            shadows.append((key, rec))
    if not shadows:
        raise UserError(f"the log holds no shadow lines (role=shadow); {HOW_TO_SHADOW}")
    pairs: Counter[tuple[str, str]] = Counter()
    joined: dict[tuple[str, str], dict[Key, tuple]] = {}
    orphans = 0
    for key, s in shadows:
        c = champs.get(key)
        if c is None or key in dup:
            orphans += 1
            continue
        vs = (str(c.get("model_version")), str(s.get("model_version")))
        if key not in joined.setdefault(vs, {}):  # a repeated shadow line counts once
            joined[vs][key] = (c, s)
            pairs[vs] += 1
    found = ", ".join(f"{a}->{b} ({n} paired)" for (a, b), n in pairs.most_common())
    chosen = [vs for vs in pairs if champion in (None, vs[0]) and candidate in (None, vs[1])]
    if not chosen:
        if not pairs:  # e.g. only a day's file passed while the champion lines are in another
            raise UserError(
                f"none of the log's {len(shadows)} shadow lines has a champion line with the same "
                "request_id and item; pass every log file (or the log directory)"
            )
        raise UserError(f"no pair matches --champion/--candidate; the log holds pairs: {found}")
    if len(chosen) > 1:
        raise UserError(
            f"the log holds several champion->candidate pairs: {found}; "
            "pick one with --champion VERSION --candidate VERSION"
        )
    vs = chosen[0]
    unpaired = sum(
        1 for k, c in champs.items() if str(c.get("model_version")) == vs[0] and k not in joined[vs]
    )
    counts = {
        "n_unpaired_champion": unpaired,
        "n_orphan_shadow": orphans,
        "n_duplicate_keys": len(dup),
        "other_pairs": [list(p) for p in pairs if p != vs],
    }
    return vs, list(joined[vs].items()), counts


def _percentiles(values: list[float | None]) -> dict[str, float | None]:
    xs = [x for x in values if x is not None]
    if not xs:
        return {"p50": None, "p95": None, "p99": None}
    p = np.percentile(xs, [50, 95, 99])
    return {"p50": float(p[0]), "p95": float(p[1]), "p99": float(p[2])}


def _center(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "median": None}
    return {"mean": float(np.mean(values)), "median": float(np.median(values))}


def _wilson(k: int, n: int, z: float = 1.959964) -> dict[str, float | None]:
    """Accuracy with its Wilson 95% interval: sound at small n and at 0% or 100%."""
    if n == 0:
        return {"acc": None, "lo": None, "hi": None, "n": 0}
    p = k / n
    mid, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    d = 1 + z * z / n
    return {"acc": p, "lo": max(0.0, (mid - half) / d), "hi": min(1.0, (mid + half) / d), "n": n}


def _matrix(pairs: list[tuple]) -> dict[str, Any]:
    """Per-intent agreement and the champion x candidate count matrix."""
    seen = {x["intent"] for cs in pairs for x in cs}
    names = list(INTENTS) + sorted(seen - set(INTENTS))  # a renamed/new intent still shows
    index = {name: i for i, name in enumerate(names)}
    m = np.zeros((len(names), len(names)), int)  # rows champion, columns candidate
    for c, s in pairs:
        m[index[c["intent"]], index[s["intent"]]] += 1
    per_intent = {
        name: {"n": int(m[i].sum()), "agreement": _share(int(m[i, i]), int(m[i].sum()))}
        for name, i in index.items()
    }
    return {"per_intent": per_intent, "matrix": {"labels": names, "counts": m.tolist()}}


def _confidence(pairs: list[tuple]) -> dict[str, dict[str, float | None]]:
    """Candidate minus champion confidence, over all paired messages and the agreeing ones."""
    rows = [
        (_num(s.get("confidence")), _num(c.get("confidence")), c["intent"] == s["intent"])
        for c, s in pairs
    ]
    rows = [(x - y, same) for x, y, same in rows if x is not None and y is not None]
    return {"all": _center([d for d, _ in rows]), "agreeing": _center([d for d, a in rows if a])}


def _latency(pairs: list[tuple]) -> dict[str, dict[str, float | None]]:
    lat = {
        role: _percentiles([_num(x[i].get("latency_ms")) for x in pairs])
        for i, role in enumerate(ROLES)
    }
    ch, ca = lat["champion"], lat["candidate"]
    lat["delta"] = {q: None if ch[q] is None or ca[q] is None else ca[q] - ch[q] for q in ch}
    return lat


def _message(key: Key, c: Mapping[str, Any], s: Mapping[str, Any], critical: set[str]) -> dict:
    """One disagreeing message: its text (or hash) and both answers."""
    return {
        "request_id": key[0],
        "item": key[1],
        "text": c.get("text"),
        "text_sha256": c.get("text_sha256"),
        "champion_intent": c["intent"],
        "champion_confidence": _num(c.get("confidence")),
        "candidate_intent": s["intent"],
        "candidate_confidence": _num(s.get("confidence")),
        "champion_fallback": bool(c.get("fallback")),
        "candidate_fallback": bool(s.get("fallback")),
        "critical": c["intent"] in critical or s["intent"] in critical,
    }


def _critical(pairs: list[tuple], settings: ShadowSettings) -> dict[str, dict[str, Any]]:
    out = {}
    for intent in settings.critical_intents:
        n = sum(c["intent"] == intent for c, _ in pairs)
        away = sum(c["intent"] == intent != s["intent"] for c, s in pairs)
        into = sum(s["intent"] == intent != c["intent"] for c, s in pairs)
        allowed = max(settings.max_flips_away, math.floor(settings.max_flip_share * n))
        out[intent] = {
            "champion_n": n,
            "flips_away": away,
            "flip_share": _share(away, n),
            "flips_into": into,
            "allowed": allowed,
            "regression": away > allowed,
        }
    return out


def _labelled(pairs: list[tuple], labels: Mapping[Key, str], alpha: float) -> dict[str, Any]:
    from mangaassist.evaluation.significance import mcnemar  # scipy: only when labels are given

    rows = [(labels[k], c["intent"], s["intent"]) for k, (c, s) in pairs if k in labels]
    ok_c = np.array([y == c for y, c, _ in rows], bool)
    ok_s = np.array([y == s for y, _, s in rows], bool)
    test = mcnemar(ok_c, ok_s)  # b = champion right & candidate wrong, c = the reverse
    verdict = "no significant difference"
    if test["p_value"] < alpha:
        verdict = "candidate better" if test["c"] > test["b"] else "candidate worse"
    return {
        "n": len(rows),
        "n_labels": len(labels),
        "n_labels_unmatched": len(labels) - len(rows),
        "champion": _wilson(int(ok_c.sum()), len(rows)),
        "candidate": _wilson(int(ok_s.sum()), len(rows)),
        "mcnemar": test,
        "alpha": alpha,
        "verdict": verdict,
    }


def shadow_report(
    records: Iterable[Mapping[str, Any]],
    labels: Mapping[Key, str] | None = None,
    settings: ShadowSettings | None = None,
    *,
    champion: str | None = None,
    candidate: str | None = None,
) -> dict[str, Any]:
    """The shadow report of prediction-log records (plain JSON-ready values).

    Args:
        records: prediction-log objects, e.g. ``read_prediction_logs(paths).records``.
        labels: ``{(request_id, item): intent}`` of a labelled sample (:func:`read_labels`).
        settings: critical intents and tolerances; default :class:`ShadowSettings()`, equal
            to ``conf/shadow/default.yaml``.
        champion: the champion version to report on, when the log holds several pairs.
        candidate: the candidate version, likewise.

    Raises:
        UserError: no shadow lines, no pair left after the version filters, or several pairs.
    """
    settings = settings or ShadowSettings()
    (cv, sv), keyed, counts = _pair(records, champion, candidate)
    pairs = [cs for _, cs in keyed]
    agreement = sum(c["intent"] == s["intent"] for c, s in pairs) / len(pairs)
    crit = _critical(pairs, settings)
    critical = set(settings.critical_intents)
    messages = [_message(k, c, s, critical) for k, (c, s) in keyed if c["intent"] != s["intent"]]
    # The champion's most confident answers first: those the candidate overturned are the
    # likeliest regressions and the first a reviewer should read.
    messages.sort(key=lambda m: (-(m["champion_confidence"] or 0.0), m["request_id"], m["item"]))
    return {
        "champion_version": cv,
        "candidate_version": sv,
        "n_paired": len(pairs),
        **counts,
        "agreement_with_champion": agreement,
        "disagreement_rate": 1 - agreement,
        "meets_min_agreement": agreement >= settings.min_agreement,
        **_matrix(pairs),
        "disagreements": messages,
        "confidence_delta": _confidence(pairs),
        "fallback_rate": {
            role: sum(bool(x[i].get("fallback")) for x in pairs) / len(pairs)
            for i, role in enumerate(ROLES)
        },
        "latency_ms": _latency(pairs),
        "critical": crit,
        "critical_intent_regression": any(v["regression"] for v in crit.values()),
        "labelled": _labelled(keyed, labels, settings.alpha) if labels is not None else None,
        "settings": asdict(settings),
    }


def format_line(report: Mapping[str, Any]) -> str:
    """The one ``[SHADOW] agreement_with_champion=..% disagreement_rate=..% ...`` line."""
    agree = percent(report["agreement_with_champion"])
    # From the rounded agreement, so that the two printed shares always add up to 100.0%.
    disagree = f"{100 - float(agree):.1f}"
    line = (
        f"[SHADOW] agreement_with_champion={agree}% disagreement_rate={disagree}% "
        f"critical_intent_regression={str(report['critical_intent_regression']).lower()} "
        f"champion={report['champion_version']} candidate={report['candidate_version']} "
        f"paired={report['n_paired']} unpaired_champion={report['n_unpaired_champion']}"
    )
    lab = report.get("labelled")
    if lab and lab["n"]:
        line += (
            f" labelled={lab['n']} acc_champion={percent(lab['champion']['acc'])}%"
            f" acc_candidate={percent(lab['candidate']['acc'])}%"
            f" mcnemar_p={lab['mcnemar']['p_value']:.3g}"
        )
    return line


def _cli(args: argparse.Namespace) -> int:
    from mangaassist.atomic import write_text
    from mangaassist.serve.predlog import read_prediction_logs
    from mangaassist.serve.shadow_html import write_shadow_html

    settings = load_shadow_settings(args.config)
    labels = read_labels(args.labels) if args.labels else None
    got = read_prediction_logs(args.logs)
    report = shadow_report(
        got.records, labels, settings, champion=args.champion, candidate=args.candidate
    )
    if labels is not None and report["labelled"]["n"] == 0:
        raise UserError(
            f"{args.labels}: none of its {len(labels)} labels matches a paired "
            "message (request_id, item) of the log; label a sample of the same traffic"
        )
    report["logs"] = {
        "files": [str(p) for p in got.files],
        "torn_lines": got.torn_lines,
        "bad_lines": got.bad_lines,
    }
    write_shadow_html(report, args.out)
    line = f"[SHADOW] report={args.out}"
    if args.json:
        write_text(args.json, json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        line += f" json={args.json}"
    print(format_line(report))
    print(line)
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``shadow-report`` on an argparse subparsers object; ``func`` returns 0."""
    p = sub.add_parser(
        "shadow-report",
        help="compare a shadow candidate's logged answers with the champion's",
        description="Agreement, disagreement matrix and messages, confidence/latency deltas and "
        "critical intent regression (conf/shadow/default.yaml) from prediction logs.",
    )
    p.add_argument("logs", nargs="+", metavar="LOG", help="prediction log files or directories")
    p.add_argument("--labels", help="labelled sample, JSON lines: request_id, item, label")
    p.add_argument("--config", help=f"shadow settings YAML (default {DEFAULT_CONFIG})")
    p.add_argument("--out", default="shadow-report.html", help="the HTML page to write")
    p.add_argument("--json", help="also write the report as JSON here")
    p.add_argument("--champion", help="champion version, when the log holds several pairs")
    p.add_argument("--candidate", help="candidate version, when the log holds several pairs")
    p.set_defaults(func=_cli)
    return p
