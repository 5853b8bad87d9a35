"""``mangaassist active-learn``: pick the logged messages most worth a labeller's time.

1. **Candidates**: champion records of prediction logs with their text (``log_privacy=text``),
   deduplicated by :func:`~mangaassist.data.normalize.dedup_key` against each other (``seen``
   counts the copies) and against the training data.
2. **Uncertainty** from the *full* calibrated probabilities, recomputed by the bundle's
   predictor (a log's ``top_k`` holds only k of the C probabilities; without a bundle the rest
   of the mass is spread evenly over the missing classes, which flattens every score).
3. **Diversity** (``kmeans``, after small-text's embedding k-means and Zhdanov 2019): the
   ``prefilter x budget`` most uncertain candidates are clustered into ``budget`` groups and the
   most uncertain member of each group is taken first, so the batch is not ``budget`` copies
   of one confusion. The embedding is TF-IDF of character n-grams (reduced by SVD), not the
   model's outputs: the graph returns only C = 10 logits, and the uncertain messages all sit
   near the same low-margin region of that 10-dimensional space, so clustering logits
   separates little; character n-grams tell apart the *messages* (and need no word
   segmentation for kana/kanji).
4. **Quotas**: no predicted intent takes more than its share of the budget (default 30%).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mangaassist.data.normalize import dedup_key
from mangaassist.data.schema import INTENTS
from mangaassist.errors import UserError

STRATEGIES = ("least_confidence", "margin", "entropy", "random")
DIVERSITY = ("kmeans", "none")
CSV_FIELDS = ("text", "request_id", "item", "ts", "model_version", "guess", "confidence",
              "runner_up", "score", "strategy", "cluster", "why", "seen", "label")  # fmt: skip


def scores(probs: np.ndarray, strategy: str, seed: int = 0) -> np.ndarray:
    """How much each row is worth labelling, higher first: (N, C) probabilities -> (N,).

    ``least_confidence`` 1 - p1; ``margin`` 1 - (p1 - p2); ``entropy`` -sum p log p (nats);
    ``random`` a seeded uniform draw.

    Example:
        >>> p = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25]])
        >>> scores(p, "margin").round(2).tolist()
        [0.15, 0.95]
    """
    probs = np.asarray(probs, dtype=np.float64)
    if strategy == "random":
        return np.random.default_rng(seed).random(len(probs))
    top = -np.sort(-probs, axis=1)  # (N, C) descending
    if strategy == "least_confidence":
        return 1.0 - top[:, 0]
    if strategy == "margin":
        return 1.0 - (top[:, 0] - (top[:, 1] if probs.shape[1] > 1 else 0.0))
    if strategy == "entropy":
        return -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=1)
    raise UserError(f"--strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")


def parse_quota(spec: str | float | None, budget: int) -> dict[str, int]:
    """Per-intent caps from ``"0.3"`` (every intent) or ``"0.3,chitchat=0.05,faq=0.2"``.

    Example:
        >>> parse_quota("0.3,chitchat=0.1", 100)["chitchat"], parse_quota(0.3, 100)["faq"]
        (10, 30)
    """
    default, shares = 1.0, {}
    for part in [] if spec is None else str(spec).split(","):
        key, _, value = part.strip().rpartition("=")
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        if key and key not in INTENTS:
            raise UserError(f"--per-intent-quota: unknown intent {key!r}; use one of {INTENTS}")
        if not 0 < share <= 1:
            raise UserError(f"--per-intent-quota {part!r}: a share in (0, 1], e.g. 0.3")
        if key:
            shares[key] = share
        else:
            default = share
    return {i: max(1, int(shares.get(i, default) * budget)) for i in INTENTS}


def embed(texts: Sequence[str], seed: int = 0, dims: int = 64) -> np.ndarray:
    """Unit-norm (N, <= dims) embeddings: TF-IDF of char 2-4-grams, reduced by truncated SVD."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    x = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True).fit_transform(
        [t.lower() for t in texts]
    )
    k = min(dims, x.shape[1] - 1, len(texts) - 1)
    if k >= 2:
        x = TruncatedSVD(k, random_state=seed).fit_transform(x)
    return normalize(np.asarray(x.todense() if hasattr(x, "todense") else x))


@dataclass
class Pick:
    """One selected message: its index in the candidates and why it was picked."""

    index: int
    score: float
    guess: str
    confidence: float
    runner_up: str
    cluster: int | None
    why: str


def select(
    texts: Sequence[str],
    probs: np.ndarray,
    labels: Sequence[str],
    budget: int,
    *,
    strategy: str = "entropy",
    diversity: str = "kmeans",
    quota: dict[str, int] | None = None,
    exclude: Iterable[str] = (),
    seed: int = 0,
    prefilter: int = 10,
) -> list[Pick]:
    """Choose up to ``budget`` rows of ``texts`` to label, most informative first.

    Args:
        probs: (N, C) probabilities over ``labels``.
        quota: per predicted intent, the most picks (see :func:`parse_quota`); None: no cap.
        exclude: dedup keys never to pick (the training data).
        prefilter: k-means clusters the ``prefilter x budget`` best-scored rows.
    """
    if diversity not in DIVERSITY:
        raise UserError(f"--diversity {diversity!r}: use one of {', '.join(DIVERSITY)}")
    s = scores(probs, strategy, seed)
    top2 = np.argsort(-probs, axis=1, kind="stable")[:, :2]  # (N, 2)
    skip, seen, order = set(exclude), set(), []
    for i in np.argsort(-s, kind="stable"):  # best first; the best copy of a text stands
        key = dedup_key(texts[i])
        if key not in skip and key not in seen:
            seen.add(key)
            order.append(int(i))
    cluster: dict[int, int] = {}
    n_clusters = 0
    if diversity == "kmeans" and len(order) > budget:
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits

        pool = order[: prefilter * budget]
        n_clusters = min(budget, len(pool))
        # One BLAS/OpenMP thread: on 2 busy cores threaded BLAS spin-waits, and a 200-row SVD
        # took 1.6 s instead of 0.02 s. These matrices are small; threads buy nothing here.
        with threadpool_limits(1):
            x = embed([texts[i] for i in pool], seed)
            assign = KMeans(n_clusters, n_init=1, max_iter=50, random_state=seed).fit_predict(x)
        members: dict[int, list[int]] = {}
        for i, c in zip(pool, assign, strict=True):  # pool is best first: members[c][0] is best
            members.setdefault(int(c), []).append(i)
            cluster[i] = int(c)
        groups = sorted(members.values(), key=lambda m: -s[m[0]])
        rounds = [g[r] for r in range(max(map(len, groups))) for g in groups if r < len(g)]
        order = rounds + order[len(pool) :]  # each cluster's best, then each's second, ...
    taken: Counter[str] = Counter()
    picks: list[Pick] = []
    for i in order:
        if len(picks) >= budget:
            break
        guess = labels[top2[i, 0]]
        if quota is not None and taken[guess] >= quota.get(guess, budget):
            continue
        taken[guess] += 1
        c = cluster.get(i)
        where = f" cluster={c}/{n_clusters}" if c is not None else ""
        runner = labels[top2[i, 1]] if probs.shape[1] > 1 else ""
        why = f"{strategy}={s[i]:.3f}{where} guess={guess} vs {runner}"
        picks.append(Pick(i, float(s[i]), guess, float(probs[i, top2[i, 0]]), runner, c, why))
    return sorted(picks, key=lambda p: -p.score)


def probs_from_top_k(records: Sequence[dict], labels: Sequence[str]) -> np.ndarray:
    """(N, C) probabilities from logged ``top_k``; the missing mass spread over the rest."""
    col = {name: j for j, name in enumerate(labels)}
    out = np.zeros((len(records), len(labels)))
    for n, rec in enumerate(records):
        known = {name: p for name, p in rec.get("top_k") or [] if name in col}
        rest = max(0.0, 1.0 - sum(known.values())) / max(1, len(labels) - len(known))
        out[n] = rest
        for name, p in known.items():
            out[n, col[name]] = p
    return out


def load_candidates(paths: Sequence[str | Path]) -> tuple[list[dict], dict[str, int]]:
    """Champion records that carry text, and counts of what was skipped.

    Raises:
        UserError: no record has text (a hashed or text-free log), naming the fix.
    """
    from mangaassist.serve.predlog import read_prediction_logs

    got = read_prediction_logs(paths)
    recs = [r for r in got.records if r.get("role", "champion") == "champion"]
    with_text = [r for r in recs if isinstance(r.get("text"), str) and r["text"].strip()]
    if recs and not with_text:
        hashed = any("text_sha256" in r for r in recs)
        mode = "log_privacy=hash (text_sha256 only)" if hashed else "log_privacy=none (no text)"
        raise UserError(
            f"{', '.join(map(str, got.files[:3]))}: the log was written with {mode}; active "
            "learning needs the messages: serve with `mangaassist serve BUNDLE log_privacy=text` "
            "(or log_privacy: text in conf/serve) and select from those logs"
        )
    if not recs:
        raise UserError(f"{', '.join(map(str, paths))}: no champion records to select from")
    skipped = {"no_text": len(recs) - len(with_text), "torn": got.torn_lines + got.bad_lines}
    return with_text, skipped


def write_batch(rows: list[dict], out: str | Path) -> tuple[Path, Path]:
    """Write ``out`` (JSONL) and ``out`` with ``.csv`` (UTF-8 with BOM, so Excel opens it)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    path = out.with_suffix(".csv")
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({**row, "text": _cell(row["text"])})
    return out, path


def _cell(text: str) -> str:
    # A message starting with = + - @ would run as a formula in Excel (CSV injection): a
    # leading ' makes it text. The JSONL keeps the exact message; join labels by request_id.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def active_learn(
    logs: Sequence[str | Path],
    out: str | Path,
    *,
    budget: int = 500,
    bundle: str | Path | None = None,
    train: str | Path | None = None,
    strategy: str = "entropy",
    diversity: str = "kmeans",
    quota: str | float | None = 0.3,
    seed: int = 0,
) -> dict:
    """Select ``budget`` messages from prediction logs and write the labeller's files.

    Returns:
        A summary (counts, files), also printed as one ``[ACTIVE_LEARN]`` line.

    Raises:
        UserError: hashed logs, a bad strategy/quota/budget, an unreadable bundle or train file.
    """
    if budget < 1:
        raise UserError(f"--budget {budget}: must be at least 1")
    scores(np.zeros((1, 2)), strategy)  # a bad strategy fails before any work
    caps = parse_quota(quota, budget)
    recs, skipped = load_candidates(logs)
    first: dict[str, dict] = {}
    copies: Counter[str] = Counter()
    for r in recs:  # one candidate per normalised text; ``seen`` tells the labeller how common
        key = dedup_key(r["text"])
        first.setdefault(key, r)
        copies[key] += 1
    cands, cand_keys = list(first.values()), list(first)
    texts = [r["text"] for r in cands]
    exclude: set[str] = set()
    if train is not None:
        from mangaassist.data.schema import read_examples

        exclude = {dedup_key(e.text) for e in read_examples(train)}
    note = ""
    if bundle is not None:
        from mangaassist.inference import Predictor, open_bundle

        opened = open_bundle(bundle)
        predictor = Predictor.from_bundle(opened)
        labels, probs = predictor.labels, predictor.proba(texts, batch_size=256)
        logged = {r.get("model_version") for r in cands}
        if opened.version not in logged:
            note = f' note="bundle {opened.version} did not write these logs ({sorted(logged)})"'
    else:
        labels = list(INTENTS)
        probs = probs_from_top_k(cands, labels)
        note = ' note="no --bundle: scores from the logged top_k only (incomplete)"'
    picks = select(texts, probs, labels, budget, strategy=strategy, diversity=diversity,
                   quota=caps, exclude=exclude, seed=seed)  # fmt: skip
    rows = []
    for p in picks:
        r = cands[p.index]
        rows.append({"text": r["text"], "request_id": r.get("request_id"), "item": r.get("item", 0),
            "ts": r.get("ts"), "model_version": r.get("model_version"), "guess": p.guess,
            "confidence": round(p.confidence, 4), "runner_up": p.runner_up,
            "score": round(p.score, 4), "strategy": strategy, "cluster": p.cluster,
            "why": p.why, "seen": copies[cand_keys[p.index]], "label": ""})  # fmt: skip
    jsonl, csv_path = write_batch(rows, out)
    in_train = sum(k in exclude for k in cand_keys)
    mix = Counter(r["guess"] for r in rows)
    top_share = max(mix.values(), default=0) / budget  # of the budget, as the quota counts
    if len(rows) < budget:
        few = len(cands) - in_train < budget
        why = "too few new messages" if few else "per-intent quotas (raise --per-intent-quota)"
        note += f' short="{budget - len(rows)} unfilled: {why}"'
    summary = {"records": len(recs), "unique": len(cands), "in_train": in_train,
               "selected": len(rows), "strategy": strategy, "diversity": diversity,
               "max_intent_share": round(top_share, 3), "skipped": skipped,
               "jsonl": str(jsonl), "csv": str(csv_path)}  # fmt: skip
    print(
        f"[ACTIVE_LEARN] records={len(recs)} unique={len(cands)} in_train={in_train} "
        f"selected={len(rows)}/{budget} strategy={strategy} diversity={diversity} "
        f"max_intent_share={top_share:.1%} out={jsonl} csv={csv_path}{note}"
    )
    return summary
