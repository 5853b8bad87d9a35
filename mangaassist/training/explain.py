"""``mangaassist explain RUN TEXT [--label L]``: one message through the model, with real numbers.

The same walk-through as the team's dry run, computed by the run's own model (PyTorch, its
checkpoint), tokenizer, calibration and loss:

1. the training normalisation and the WordPiece tokens the model sees;
2. the logits, ``softmax(z)`` at T = 1 and ``softmax(z / T)`` at the calibrated T
   (``calibration.json``; T = 1 before calibration, and the output says so);
3. the predicted intent and the fallback decision, by
   :func:`mangaassist.inference.policy.decide`, the rule the server applies;
4. with a label: the cross-entropy ``-log p_t`` (T = 1, as training sees it), the configured
   loss of this one message (``alpha_t (1 - p_t)^gamma CE`` for focal loss), the focal factor,
   the class weight, and the gradient norm this loss sends to the head and to the top and the
   bottom encoder block (one backward pass on this message alone).

The model stays in eval mode (dropout off), so the numbers are reproducible; a training step
also applies dropout and divides the batch's summed loss by its summed ``alpha_t``.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from mangaassist.errors import UserError

# Encoder layers reported, named as the [TRAIN] grad_norm/* lines name them; the layer index is
# the one mangaassist.model.param_groups gives (0 embeddings, i + 1 block i, L = head).
GROUPS = ("head", "top_layer", "bottom_layer", "embeddings")


@dataclass
class LossPart:
    """The loss of one labelled message and where its gradient goes.

    Attributes:
        label: the true intent; ``index`` its logit index.
        p_t: its probability at T = 1 (training applies no temperature).
        ce: ``-log p_t``, unweighted and unsmoothed.
        loss_name: ``cfg.loss.name``; ``criterion`` the class training instantiated.
        gamma: the focusing parameter (0 for cross-entropy).
        weighted: whether the loss has class weights (``loss.class_weights``).
        alpha_t: the label's class weight (1 without class weights).
        focal_factor: ``(1 - p_t) ** gamma``.
        label_smoothing: eps of the criterion (0 = the formula below is exact).
        loss: the criterion's value for this message (``reduction="none"``).
        grad_norms: group -> (layer index, param group names, L2 norm of the gradient).
    """

    label: str
    index: int
    p_t: float
    ce: float
    loss_name: str
    criterion: str
    gamma: float
    weighted: bool
    alpha_t: float
    focal_factor: float
    label_smoothing: float
    loss: float
    grad_norms: dict[str, tuple[int, list[str], float]] = field(default_factory=dict)


@dataclass
class Explanation:
    """Everything ``explain`` prints, as numbers."""

    run: Path
    text: str
    normalised: str
    tokens: list[str]
    token_ids: list[int]
    labels: list[str]
    logits: list[float]
    temperature: float
    calibrated: bool
    probs_t1: list[float]
    probs: list[float]
    answer: dict
    threshold: float
    margin: float
    loss: LossPart | None = None


def _label_index(labels: list[str], label: str) -> int:
    """Index of ``label``; an unknown one is a UserError with the closest names."""
    if label in labels:
        return labels.index(label)
    close = difflib.get_close_matches(label, labels, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise UserError(f"--label {label!r} is not one of the run's labels; {hint}labels: {labels}")


def _criterion(run, labels: list[str]):  # run: LoadedRun -> torch.nn.Module
    """The run's training loss, built as ``training.train.build`` builds it, per message.

    ``reduction="none"`` keeps this message's own term ``alpha_t (1 - p_t)^gamma CE``: with
    ``mean`` a batch of one would divide ``alpha_t`` back out.
    """
    from hydra.utils import instantiate

    from mangaassist.model.losses import class_weights

    cfg = run.config
    weight = None
    if cfg.loss.class_weights:
        path = run.path / "class_counts.json"
        if not path.is_file():
            raise UserError(
                f"{path} is missing: the class weights of loss={cfg.loss.name} come from it"
            )
        counts = json.loads(path.read_text())
        weight = class_weights([counts[lb] for lb in labels])
    return instantiate(cfg.loss.criterion, weight=weight, reduction="none")


def _grad_norms(model) -> dict[str, tuple[int, list[str], float]]:
    """Gradient L2 norm per reported layer, over the param groups training builds."""
    import torch

    from mangaassist.model.param_groups import count_blocks, layerwise_param_groups

    n_blocks = count_blocks(model.encoder)
    layer_of = {"head": n_blocks + 1, "top_layer": n_blocks, "bottom_layer": 1, "embeddings": 0}
    # The groups of configure_optimizers (lr values are irrelevant here, the names are not).
    groups = layerwise_param_groups(model.encoder, model.head, base_lr=1.0)
    out = {}
    for name in GROUPS:
        layer = layer_of[name]
        chosen = [g for g in groups if g["name"].startswith(f"layer{layer:02d}_")]
        grads = [p.grad for g in chosen for p in g["params"] if p.grad is not None]
        norm = float(torch.stack([g.norm() for g in grads]).norm()) if grads else 0.0
        out[name] = (layer, [g["name"] for g in chosen], norm)
    return out


def explain(run_dir: str | Path, text: str, label: str | None = None) -> Explanation:
    """Run one message through a trained run and, with ``label``, through its loss.

    Args:
        run_dir: a finished run directory (``checkpoints/best.ckpt`` and its files).
        text: the message, as a user typed it.
        label: the true intent; None skips the loss and gradient part.

    Raises:
        UserError: not a run directory, an unknown label, a bad calibration.json.
    """
    import torch

    from mangaassist.inference.policy import CALIBRATION_FILE, Calibration, decide, softmax
    from mangaassist.training.run_dir import load_run

    run = load_run(run_dir)
    labels = list(run.labels)
    index = _label_index(labels, label) if label is not None else None  # fail before work
    cal_path = run.path / CALIBRATION_FILE
    calibrated = cal_path.is_file()
    # No calibration.json: the server answers with these same defaults (Predictor, bundle).
    calib = Calibration.load(cal_path) if calibrated else Calibration(labels=labels)

    normalised = run.preprocess(text)  # normalise (+ romaji when the run was trained so)
    # As LoadedRun.predict_logits encodes a batch of one: no padding, the run's truncation
    # (first, or head_tail: what a long message shows the model is its start and its end).
    ids = run.token_ids([text])[0]
    input_ids = torch.tensor([ids])  # (1, L)
    model = run.model
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        logits = model(input_ids, torch.ones_like(input_ids)).float()  # (1, C)
    z = logits.detach().numpy().astype("float64")
    probs_t1, probs = softmax(z, 1.0), softmax(z, calib.temperature)
    answer = decide(probs, labels, calib.policy, top_k=3)[0]
    pred = labels.index(answer["intent"])
    exp = Explanation(
        run=run.path,
        text=text,
        normalised=normalised,
        tokens=run.tokenizer.convert_ids_to_tokens(ids),
        token_ids=ids,
        labels=labels,
        logits=z[0].tolist(),
        temperature=float(calib.temperature),
        calibrated=calibrated,
        probs_t1=probs_t1[0].tolist(),
        probs=probs[0].tolist(),
        answer=answer,
        threshold=float(calib.policy.threshold_vector(labels)[pred]),
        margin=float(calib.margin),
    )
    if index is None:
        return exp

    criterion = _criterion(run, labels)
    loss = criterion(logits, torch.tensor([index]))[0]
    loss.backward()
    weight = getattr(criterion, "weight", None)
    p_t = float(probs_t1[0, index])
    gamma = float(getattr(criterion, "gamma", 0.0))  # CrossEntropyLoss is focal with gamma 0
    exp.loss = LossPart(
        label=label,
        index=index,
        p_t=p_t,
        ce=-math.log(p_t),
        loss_name=str(run.config.loss.name),
        criterion=type(criterion).__name__,
        gamma=gamma,
        weighted=weight is not None,
        alpha_t=float(weight[index]) if weight is not None else 1.0,
        focal_factor=(1.0 - p_t) ** gamma,
        label_smoothing=float(getattr(criterion, "label_smoothing", 0.0)),
        loss=float(loss.detach()),
        grad_norms=_grad_norms(model),
    )
    model.zero_grad(set_to_none=True)
    return exp


def format_explanation(e: Explanation) -> str:
    """The explanation as the command prints it: aligned, one figure per line or cell."""
    a = e.answer
    if e.calibrated:
        t_note = f"T={e.temperature:.4f} (calibration.json)"
    else:
        t_note = (
            "T=1.0000 (no calibration.json yet: `mangaassist post-train RUN` fits T; "
            "the default thresholds apply, as the server would use them)"
        )
    lines = [
        f"run: {e.run}",
        f"text: {e.text!r}",
        f"normalised: {e.normalised!r}",
        f"tokens ({len(e.tokens)}): {' '.join(e.tokens)}",
        f"token_ids: {' '.join(map(str, e.token_ids))}",
        f"temperature: {t_note}",
        "",
        f"{'intent':<20} {'logit':>9} {'p(T=1)':>8} {f'p(T={e.temperature:.2f})':>9}",
    ]
    order = sorted(range(len(e.labels)), key=lambda i: -e.probs[i])
    for i in order:
        lines.append(
            f"{e.labels[i]:<20} {e.logits[i]:>9.4f} {e.probs_t1[i]:>8.4f} {e.probs[i]:>9.4f}"
        )
    second = e.probs[order[1]] if len(order) > 1 else 0.0
    lines += [
        "",
        f"prediction: {a['intent']} confidence={a['confidence']:.4f}",
        f"  rule: fallback if confidence < threshold {e.threshold:.4f} ({a['intent']}); "
        f"clarify if top-2 gap {a['confidence'] - second:.4f} < margin {e.margin:.4f}",
    ]
    if a["fallback"]:
        lines.append(f"decision: {a['action']} ({a['fallback_reason']}) -> {a['route']}")
    else:
        lines.append(f"decision: route -> {a['route']}")
    if e.loss is None:
        return "\n".join(lines)

    lp = e.loss
    # With label smoothing the target mass is spread over every class: no one-term formula.
    formula = (
        "(= alpha_t x focal_factor x CE)"
        if lp.label_smoothing == 0
        else "(label smoothing: a sum over every class, not alpha_t x focal_factor x CE)"
    )
    lines += [
        "",
        f"label: {lp.label} (index {lp.index})",
        f"  {'p_t (T=1):':<29}{lp.p_t:.6f}",
        f"  {'cross_entropy -log p_t:':<29}{lp.ce:.6f}",
        f"  loss: {lp.loss_name} ({lp.criterion}, gamma={lp.gamma:g}, "
        f"class_weights={'on' if lp.weighted else 'off'}, label_smoothing={lp.label_smoothing:g})",
        f"  {'focal_factor (1-p_t)^gamma:':<29}{lp.focal_factor:.6f}",
        f"  {'alpha_t:':<29}{lp.alpha_t:.6f}",
        f"  {'loss of this message:':<29}{lp.loss:.6f}  {formula}",
        "gradient norm of that loss (one backward pass, dropout off):",
    ]
    for name, (layer, groups, norm) in lp.grad_norms.items():
        lines.append(f"  {name:<13} layer{layer:02d} [{', '.join(groups)}]: {norm:.6e}")
    return "\n".join(lines)
