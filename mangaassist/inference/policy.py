"""The runtime policy: calibrated probabilities, the fallback rule and the route of an intent,
and the secondary intents of a multi-ask message (:class:`SecondaryRule`).

Offline evaluation and the online server both answer through these functions, so what a
report says about a model is what its users get. Nothing here imports torch.

A message is *routed* to its top-1 intent unless

1. its calibrated top-1 confidence is below that intent's threshold -> ``fallback``
   (reason ``low_confidence``: a generic answer or a human); the threshold of intent c is
   ``max(global_threshold, chosen_c)``, where ``chosen_c`` is the lowest threshold that keeps
   validation precision of c at the target; or
2. the top two probabilities are closer than ``margin`` -> ``clarify``
   (reason ``ambiguous``: ask the user which one they meant).

``calibration.json`` (beside a run's checkpoint, in the registry and in the export bundle)::

    {"version": 1, "temperature": 1.42, "global_threshold": 0.6, "margin": 0.1,
     "thresholds": {label: effective threshold, ...}, "labels": [...],
     "fitted_on": "data/val.jsonl", "n": 800, "nll_before": .., "nll_after": ..,
     "ece_before": .., "ece_after": .., "target_precision": {..}, "unreached": [..]}

Example:
    >>> policy = FallbackPolicy(global_threshold=0.6, margin=0.1, thresholds={"b": 0.8})
    >>> probs = np.array([[0.9, 0.1], [0.7, 0.3], [0.45, 0.55], [0.25, 0.75]])
    >>> policy.route(probs, ["a", "b"]).tolist()
    ['route', 'route', 'fallback', 'fallback']
    >>> softmax(np.array([[0.0, np.log(3.0)]])).round(2).tolist()
    [[0.25, 0.75]]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mangaassist.atomic import write_json
from mangaassist.errors import UserError

ROUTE, FALLBACK, CLARIFY = "route", "fallback", "clarify"
# Why a message is not routed, as the server and the prediction log name it.
REASONS = {FALLBACK: "low_confidence", CLARIFY: "ambiguous"}
CALIBRATION_FILE = "calibration.json"
SCHEMA_VERSION = 1

# The downstream service of each intent (shared/intent-taxonomy.md, "routes to").
ROUTES: dict[str, str] = {
    "product_discovery": "catalog_search",
    "product_question": "product_detail",
    "recommendation": "recommender",
    "faq": "help_center",
    "order_tracking": "order_service",
    "return_request": "returns_service",
    "promotion": "promotions_engine",
    "checkout_help": "checkout_support",
    "escalation": "human_agent_queue",
    "chitchat": "small_talk",
}
# Where a message goes that is not routed (fallback or clarify).
FALLBACK_ROUTE = "clarify_or_fallback"


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64; (N, C) -> (N, C)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)  # exp of <= 0 cannot overflow
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class FallbackPolicy:
    """Global threshold, ambiguity margin and effective per-intent thresholds."""

    global_threshold: float = 0.6
    margin: float = 0.1
    thresholds: Mapping[str, float] = field(default_factory=dict)

    def threshold_vector(self, labels: Sequence[str]) -> np.ndarray:
        """(C,) effective thresholds: never below the global one."""
        return np.array([max(self.global_threshold, self.thresholds.get(lb, 0.0)) for lb in labels])

    def route(self, probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        """Action per message (N,) of ``route`` / ``fallback`` / ``clarify``.

        Args:
            probs: (N, C) calibrated probabilities.
        """
        ranked = np.sort(probs, axis=1)
        conf = ranked[:, -1]
        second = ranked[:, -2] if probs.shape[1] > 1 else np.zeros(len(probs))
        pred = probs.argmax(axis=1)
        low = conf < self.threshold_vector(labels)[pred]
        close = (conf - second) < self.margin
        return np.where(low, FALLBACK, np.where(close, CLARIFY, ROUTE))


@dataclass
class Calibration:
    """What calibration.json holds: the temperature, the fallback policy and the fit's effect."""

    temperature: float = 1.0
    global_threshold: float = 0.6
    margin: float = 0.1
    thresholds: dict[str, float] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    fitted_on: str = ""
    n: int = 0
    nll_before: float | None = None
    nll_after: float | None = None
    ece_before: float | None = None
    ece_after: float | None = None
    target_precision: dict[str, float] = field(default_factory=dict)
    chosen_thresholds: dict[str, float] = field(default_factory=dict)
    unreached: list[str] = field(default_factory=list)

    @property
    def policy(self) -> FallbackPolicy:
        """The fallback rule these settings define."""
        return FallbackPolicy(self.global_threshold, self.margin, dict(self.thresholds))

    def save(self, path: Path) -> None:
        """Write JSON atomically (:mod:`mangaassist.atomic`): a crash leaves the old file."""
        write_json(path, {"version": SCHEMA_VERSION, **asdict(self)})

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """Read calibration.json; a malformed file is a UserError naming it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            data.pop("version", None)
            cal = cls(**data)
        except (OSError, ValueError, TypeError) as err:
            raise UserError(f"{path}: not a valid calibration file ({err})") from err
        if not cal.temperature > 0:
            raise UserError(f"{path}: temperature must be > 0, got {cal.temperature}")
        return cal


def decide(
    probs: np.ndarray, labels: Sequence[str], policy: FallbackPolicy, top_k: int = 3
) -> list[dict]:
    """The answer for each message: intent, confidence, top-k, fallback and its reason, route.

    Args:
        probs: (N, C) calibrated probabilities.
        labels: C intent names in logit order.
        policy: the fallback rule.
        top_k: how many (intent, probability) pairs to return, most probable first.

    Returns:
        N dicts with ``intent``, ``confidence``, ``top_k`` ([[intent, p], ...]), ``fallback``
        (bool), ``fallback_reason`` (None, ``low_confidence`` or ``ambiguous``), ``action``
        and ``route`` (the intent's downstream service, or the fallback route).

    Example:
        >>> p = np.array([[0.7, 0.2, 0.1]])
        >>> decide(p, ["faq", "promotion", "chitchat"], FallbackPolicy(0.6, 0.1), 2)[0]["top_k"]
        [['faq', 0.7], ['promotion', 0.2]]
    """
    actions = policy.route(probs, labels)
    k = min(top_k, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # (N, k)
    out = []
    for row, action, idx in zip(probs, actions, order, strict=True):
        intent = labels[int(idx[0])]
        routed = action == ROUTE
        out.append(
            {
                "intent": intent,
                "confidence": float(row[idx[0]]),
                "top_k": [[labels[int(i)], float(row[i])] for i in idx],
                "fallback": not routed,
                "fallback_reason": None if routed else REASONS[str(action)],
                "action": str(action),
                "route": ROUTES.get(intent, intent) if routed else FALLBACK_ROUTE,
            }
        )
    return out


# The second graph output of a bundle whose model has the secondary-intent head.
SECONDARY_OUTPUT = "secondary_logits"


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Elementwise ``1 / (1 + exp(-z))`` in float64, stable for large ``|z|``."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=np.float64)))


@dataclass(frozen=True)
class SecondaryRule:
    """Which other intents a multi-ask message names: the manifest's ``secondary`` entry.

    ``p = sigmoid(secondary_logits)``, no temperature (the head is its own multi-label model).
    Intent ``c`` is secondary when ``p[c] >= threshold`` and, with ``mask_primary``, ``c`` is
    not the predicted primary intent (argmax of the primary logits); they are ranked by ``p``,
    highest first. The rule of training's ``SecondaryPolicy``
    (``mangaassist.evaluation.secondary``), with the threshold it chose on validation.

    Example:
        >>> rule = SecondaryRule(threshold=0.5)
        >>> z = np.array([[0.0, 2.0, 3.0]])  # p = 0.5, 0.881, 0.953; primary is c
        >>> [(s["intent"], round(s["probability"], 3)) for s in rule.intents(z, [2], "abc")[0]]
        [('b', 0.881), ('a', 0.5)]
    """

    threshold: float
    mask_primary: bool = True
    output: str = SECONDARY_OUTPUT

    def mask(self, secondary_logits: np.ndarray, primary_pred: Sequence[int]) -> np.ndarray:
        """(N, C) bool predicted secondary intents from (N, C) logits and (N,) primary indices."""
        pred = sigmoid(secondary_logits) >= self.threshold
        if self.mask_primary:
            pred[np.arange(len(pred)), np.asarray(primary_pred, dtype=np.int64)] = False
        return pred

    def intents(
        self, secondary_logits: np.ndarray, primary_pred: Sequence[int], labels: Sequence[str]
    ) -> list[list[dict]]:
        """Per message, ``[{"intent", "probability"}, ...]`` ranked by probability (may be [])."""
        probs = sigmoid(secondary_logits)  # (N, C)
        out = []
        for p, keep in zip(probs, self.mask(secondary_logits, primary_pred), strict=True):
            ranked = [int(c) for c in np.argsort(-p, kind="stable") if keep[c]]
            out.append([{"intent": labels[c], "probability": float(p[c])} for c in ranked])
        return out

    @classmethod
    def from_manifest(cls, entry: object, where: str) -> SecondaryRule:
        """The rule of a manifest's ``secondary`` entry.

        Raises:
            UserError: not an object, a threshold outside (0, 1), a non-boolean
                ``mask_primary`` or an output name other than ``secondary_logits`` (``where``
                names the file).
        """
        ok = isinstance(entry, Mapping)
        threshold = entry.get("threshold") if ok else None
        mask = entry.get("mask_primary", True) if ok else None
        output = entry.get("output", SECONDARY_OUTPUT) if ok else None
        number = isinstance(threshold, int | float) and not isinstance(threshold, bool)
        if not (number and 0 < threshold < 1 and isinstance(mask, bool)):
            raise UserError(
                f"{where}: secondary must hold a threshold in (0, 1) and a boolean mask_primary, "
                f"got {entry!r}; re-export the run with `mangaassist export`"
            )
        if output != SECONDARY_OUTPUT:
            raise UserError(
                f"{where}: secondary output {output!r} is not {SECONDARY_OUTPUT!r}; "
                "re-export the run with this version"
            )
        return cls(float(threshold), mask, output)
