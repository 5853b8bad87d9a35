"""Learning curves: k labelled messages chosen by each active-learning strategy vs at random.

Pool and test set come from the traffic simulator's generator (``stationary`` traffic, so the
hidden labels are the generator's truth). Retraining the real encoder once per point would
take hours on two cores, so the learner is a cheap, honest proxy: logistic regression on
frozen TF-IDF features (word 1-2-grams + char 2-4-grams, fitted on the unlabelled pool).
Each run starts from the same random seed set; every round the current model scores the
rest of the pool and the strategy picks the next batch with the very ``select`` that
``mangaassist active-learn`` uses (k-means diversity and 30% per-intent quota for the
uncertainty strategies; plain random for the baseline). Accuracy and macro-F1 are measured
on a held-out test set drawn with another seed.

    .venv/bin/python experiments/active_learning/run.py   # ~1-2 min on two cores
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

from mangaassist.data.schema import INTENTS
from mangaassist.monitor.active_learning import parse_quota, select
from mangaassist.monitor.scenarios import get_scenario
from mangaassist.monitor.simulate import day_messages

HERE = Path(__file__).resolve().parent
# (name, strategy, diversity, quota): the CLI's defaults for the uncertainty strategies.
ARMS = (
    ("random", "random", "none", None),
    ("least_confidence", "least_confidence", "kmeans", 0.3),
    ("margin", "margin", "kmeans", 0.3),
    ("entropy", "entropy", "kmeans", 0.3),
    ("entropy_no_diversity", "entropy", "none", 0.3),
)


def messages(days: range, rate: float, seed: int) -> tuple[list[str], np.ndarray]:
    traffic, sc = get_scenario("stationary")
    msgs = [m for d in days for m in day_messages(traffic, sc, d, rate, seed, 0.0)]
    return [m.text for m in msgs], np.array([INTENTS.index(m.label) for m in msgs])


class Features:
    """Frozen TF-IDF features, fitted once on the unlabelled pool."""

    def __init__(self, pool: list[str]) -> None:
        self.word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        self.char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2,
                                    sublinear_tf=True)  # fmt: skip
        self.word.fit(pool)
        self.char.fit(pool)

    def __call__(self, texts: list[str]):
        return hstack([self.word.transform(texts), self.char.transform(texts)]).tocsr()


def fit_proba(x_train, y_train, x_eval) -> np.ndarray:
    """(N, 10) probabilities over all intents (a class absent from y_train gets 0)."""
    model = LogisticRegression(C=10.0, max_iter=300).fit(x_train, y_train)
    out = np.zeros((x_eval.shape[0], len(INTENTS)))
    out[:, model.classes_] = model.predict_proba(x_eval)
    return out


def curve(arm, seed, pool_x, pool_y, texts, test_x, test_y, ks) -> list[dict]:
    _, strategy, diversity, quota = arm
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(len(pool_y), ks[0], replace=False))  # the shared seed set
    points = []
    for i, k in enumerate(ks):
        if i:
            rest = np.setdiff1d(np.arange(len(pool_y)), labelled)
            probs = fit_proba(pool_x[labelled], pool_y[labelled], pool_x[rest])
            n = k - len(labelled)
            caps = parse_quota(quota, n) if quota else None
            picks = select([texts[j] for j in rest], probs, INTENTS, n, strategy=strategy,
                           diversity=diversity, quota=caps, seed=seed + i)  # fmt: skip
            labelled += [int(rest[p.index]) for p in picks]
        pred = fit_proba(pool_x[labelled], pool_y[labelled], test_x).argmax(axis=1)
        f1 = f1_score(test_y, pred, average="macro", labels=range(len(INTENTS)), zero_division=0)
        points.append({"k": len(labelled), "acc": 100 * accuracy_score(test_y, pred),
                       "macro_f1": 100 * f1})  # fmt: skip
    return points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--ks", default="50,100,200,400,800")
    ap.add_argument("--pool-days", type=int, default=2)
    ap.add_argument("--rate", type=float, default=120.0, help="pool messages per hour")
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args()
    t0 = time.perf_counter()
    ks = [int(k) for k in args.ks.split(",")]
    pool, pool_y = messages(range(args.pool_days), args.rate, seed=11)
    test, test_y = messages(range(1), args.rate * 0.7, seed=99)
    feats = Features(pool)
    pool_x, test_x = feats(pool), feats(test)
    print(f"[AL_EXPERIMENT] pool={len(pool)} test={len(test)} features={pool_x.shape[1]}")
    runs: dict[str, list[list[dict]]] = {}
    with threadpool_limits(1):  # small matrices on two busy cores: threads only spin
        for arm in ARMS:
            runs[arm[0]] = [curve(arm, s, pool_x, pool_y, pool, test_x, test_y, ks)
                            for s in range(args.seeds)]  # fmt: skip
            last = [r[-1]["macro_f1"] for r in runs[arm[0]]]
            print(f"[AL_EXPERIMENT] arm={arm[0]} k={ks[-1]} macro_f1={np.mean(last):.1f}"
                  f" elapsed_s={time.perf_counter() - t0:.0f}")  # fmt: skip
    out = Path(args.out)
    summary = {
        name: {
            m: {str(k): [float(np.mean(v)), float(np.std(v, ddof=1))] for k, v in zip(ks, np.array(
                [[p[m] for p in r] for r in rs]).T, strict=True)}
            for m in ("acc", "macro_f1")
        }
        for name, rs in runs.items()
    }  # fmt: skip
    meta = {"pool": len(pool), "test": len(test), "seeds": args.seeds, "ks": ks,
            "elapsed_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    (out / "results.json").write_text(json.dumps({"meta": meta, "summary": summary}, indent=1))
    plot(summary, ks, out / "curves.png")
    print(f"[AL_EXPERIMENT] done elapsed_s={meta['elapsed_s']} out={out}")


def plot(summary: dict, ks: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("acc", "macro_f1"), strict=True):
        for name, s in summary.items():
            mean = np.array([s[metric][str(k)][0] for k in ks])
            sd = np.array([s[metric][str(k)][1] for k in ks])
            ax.plot(ks, mean, marker="o", label=name, ls="--" if name == "random" else "-")
            ax.fill_between(ks, mean - sd, mean + sd, alpha=0.15)
        ax.set_xscale("log")
        ax.minorticks_off()  # log-axis minor labels ("6x10^2") would overprint the k ticks
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("labelled messages k")
        ax.set_ylabel(f"test {metric} (%)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle("Active learning vs random (TF-IDF + logistic regression proxy; mean ± sd)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
