"""The model card of a registered version: one markdown page a reviewer reads before promoting.

It is rendered from the files the version folder already holds (config.yaml,
class_counts.json, calibration.json, eval/<set>/metrics.json, version.json and, once
``mangaassist gate --promote`` has passed it, eval/gate.json), so the card never disagrees
with the numbers next to it.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from mangaassist.evaluation.artifacts import read_json

GATE_RECORD = "eval/gate.json"  # written by promotion.record_gate


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _read(path: Path) -> dict | list | None:
    return read_json(path) if path.is_file() else None


def _lines(path: Path) -> int | None:
    if not path.is_file():
        return None
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _config_rows(folder: Path) -> list[tuple[str, str]]:
    if not (folder / "config.yaml").is_file():
        return []
    cfg = OmegaConf.to_container(OmegaConf.load(folder / "config.yaml"), resolve=False)
    keys = [
        ("data", "name"),
        ("model", "name"),
        ("model", "family"),
        ("model", "init"),
        ("model", "name_or_path"),
        ("model", "pooling"),
        ("model", "max_length"),
        ("loss", "name"),
        ("optim", "lr"),
        ("trainer", "max_epochs"),
        ("seed",),
    ]
    rows = []
    for key in keys:
        node = cfg
        for k in key:
            node = node.get(k) if isinstance(node, dict) else None
        if node is not None:
            rows.append((".".join(key), str(node)))
    return rows


def _metrics_section(name: str, m: dict) -> list[str]:
    ci = m.get("ci", {})

    def with_ci(key: str) -> str:
        c = ci.get(key)
        band = f" (95% CI {_pct(c['lo'])}–{_pct(c['hi'])})" if c else ""
        return f"{_pct(m.get(key))}{band}"

    cal = m.get("calibration", {})
    out = [
        f"### {name} ({m['n']} examples)",
        "",
        f"- accuracy: {with_ci('acc')}",
        f"- macro F1: {with_ci('macro_f1')}",
        f"- rare-class recall: {_pct(m.get('rare_recall'))} "
        f"({', '.join(m.get('rare_classes', [])) or 'no rare classes'})",
        f"- ECE: {cal.get('ece_before', float('nan')):.3f} before, "
        f"{cal.get('ece_after', float('nan')):.3f} after temperature scaling",
        f"- low-confidence (fallback + clarify) rate: "
        f"{_pct(m.get('fallback', {}).get('low_confidence_rate'))}",
        f"- severe misroutes: {_pct(m.get('routing', {}).get('severe_error_rate'))}",
        "",
    ]
    return out


def _gates_section(record: dict | None) -> list[str]:
    """The gate table of the decision that promoted the version, one row per gate."""
    out = ["## Promotion gates", ""]
    if not record:
        return [*out, "No gate decision recorded (`mangaassist gate VERSION --promote` adds it)."]
    evidence = record.get("evidence") or {}
    given = [f"{key.replace('_', ' ')} `{value}`" for key, value in evidence.items() if value]
    out += [
        f"Gated at {record.get('gated_at', '?')} (`mangaassist gate "
        f"{record.get('candidate', '?')}`) against champion {record.get('champion') or 'none'}: "
        f"promote={'yes' if record.get('promote') else 'no'} ({record.get('reason', '')}).",
        f"Operational evidence: {', '.join(given) or 'none given (load and shadow gates skip)'}.",
        "",
        "| gate | status | figures |",
        "|---|---|---|",
    ]
    for g in record.get("gates", []):
        figures = g.get("figures", "")
        if g.get("significance"):
            figures += f"; {g['significance']}"
        figures = figures.replace("|", "\\|")  # a pipe would split the table cell
        out.append(f"| {g.get('name', '?')} | {g.get('status', '?')} | {figures} |")
    return out


def render_model_card(version: str, folder: Path) -> str:
    """Markdown card for the version assembled in ``folder``."""
    folder = Path(folder)
    info = _read(folder / "version.json") or {}
    counts = _read(folder / "class_counts.json") or {}
    cal = _read(folder / "calibration.json")
    evals = {
        name: _read(folder / "eval" / name / "metrics.json")
        for name in ("test", "golden")
        if (folder / "eval" / name / "metrics.json").is_file()
    }
    test = evals.get("test")
    rare = set((test or {}).get("rare_classes", []))
    out = [
        f"# MangaAssist intent classifier {version}",
        "",
        f"Registered {info.get('created_at', '?')} from `{info.get('source', '?')}`.",
        f"Tokenizer sha256 `{info.get('tokenizer_sha256', '?')}`; "
        f"checkpoint sha256 `{info.get('checkpoint_sha256', '?')}`.",
        "",
        "Routes one chat message of the manga store to one of the intents below. Messages the "
        "model is unsure about go to fallback or clarification (see thresholds).",
        "",
        "## Data",
        "",
    ]
    total = sum(counts.values()) or 1
    split_sizes = {s: _lines(folder / "data" / f"{s}.jsonl") for s in ("val", "test")}
    out.append(
        f"Train {sum(counts.values())} examples; validation {split_sizes['val'] or '?'}; "
        f"test {split_sizes['test'] or '?'}."
    )
    for name, digest in (info.get("data_sha256") or {}).items():
        out.append(f"- `{name}` sha256 `{digest[:16]}…`")
    if counts:
        out += ["", "| intent | train examples | share | rare |", "|---|---:|---:|---|"]
        for label, n in counts.items():
            flag = "rare" if label in rare else ""
            out.append(f"| {label} | {n} | {100 * n / total:.1f}% | {flag} |")
    rows = _config_rows(folder)
    if rows:
        out += ["", "## Config", "", "| key | value |", "|---|---|"]
        out += [f"| `{k}` | `{v}` |" for k, v in rows]
    out += ["", "## Metrics", ""]
    if not evals:
        out += ["No evaluation was recorded for this run.", ""]
    for name, m in evals.items():
        out += _metrics_section(name, m)
    if test:
        out += [
            "## Per class (test)",
            "",
            "| intent | precision | recall | F1 | support | threshold |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in test["per_class"]:
            out.append(
                f"| {r['label']}{' (rare)' if r['rare'] else ''} | {_pct(r['precision'])} | "
                f"{_pct(r['recall'])} | {_pct(r['f1'])} | {r['support']} | "
                f"{r.get('threshold', float('nan')):.2f} |"
            )
        out.append("")
    out += ["## Calibration and thresholds", ""]
    if cal:
        out += [
            f"Temperature T = {cal['temperature']:.3f}, fitted on `{cal.get('fitted_on', '?')}` "
            f"({cal.get('n', '?')} examples): NLL {cal.get('nll_before', 0):.3f} -> "
            f"{cal.get('nll_after', 0):.3f}, ECE {cal.get('ece_before', 0):.3f} -> "
            f"{cal.get('ece_after', 0):.3f}.",
            f"Global threshold {cal['global_threshold']:.2f}, ambiguity margin "
            f"{cal['margin']:.2f}; per-intent thresholds (effective): "
            + ", ".join(f"{k} {v:.2f}" for k, v in cal.get("thresholds", {}).items())
            + ".",
        ]
        if cal.get("unreached"):
            out.append(
                f"Never reached the target precision on validation (capped): "
                f"{', '.join(cal['unreached'])}."
            )
    else:
        out.append("Not calibrated (T = 1, default thresholds).")
    lat = (test or {}).get("latency")
    out += ["", "## Latency", ""]
    if lat:
        out.append(
            f"Batch 1 on {lat.get('runtime', 'torch')}, {lat['num_threads']} thread(s), "
            f"{lat['n']} messages: P50 "
            f"{lat['p50_ms']:.2f} ms, P95 {lat['p95_ms']:.2f} ms, P99 {lat['p99_ms']:.2f} ms "
            f"(budget {lat.get('budget_ms', 15):g} ms)."
        )
    else:
        out.append("Not measured.")
    out += ["", *_gates_section(_read(folder / GATE_RECORD))]
    out += ["", "## Known confusions", ""]
    for name, m in evals.items():
        pairs = m.get("confused_pairs", [])[:5]
        if pairs:
            out.append(f"{name}:")
            out += [
                f"- {p['true']} -> {p['pred']}: {p['count']} ({_pct(p['rate'])} of "
                f"{p['true']}), {p['severity']}"
                for p in pairs
            ]
            out.append("")
    return "\n".join(out).rstrip() + "\n"
