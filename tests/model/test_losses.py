import math

import pytest
import torch

from mangaassist.data.schema import INTENTS
from mangaassist.model.losses import FocalLoss, class_weights

# The taxonomy's production mix (%), in INTENTS order.
PRODUCTION_MIX = {
    "product_discovery": 22.1,
    "product_question": 15.2,
    "recommendation": 18.0,
    "faq": 8.0,
    "order_tracking": 12.1,
    "return_request": 7.0,
    "promotion": 5.0,
    "checkout_help": 4.1,
    "escalation": 3.0,
    "chitchat": 5.5,
}


def logits_for(p_t: float, num_classes: int = 2) -> torch.Tensor:
    """Logits whose softmax gives the target (class 0) probability p_t."""
    rest = (1 - p_t) / (num_classes - 1)
    return torch.log(torch.tensor([[p_t] + [rest] * (num_classes - 1)]))


def test_focal_factor_is_one_percent_at_pt_0_9_gamma_2():
    ce = -math.log(0.9)
    loss = FocalLoss(gamma=2.0, reduction="none")(logits_for(0.9), torch.tensor([0]))
    assert loss.item() == pytest.approx(0.01 * ce, rel=1e-5)  # (1 - 0.9)^2 = 0.01


def test_focal_hand_computed_values_with_alpha():
    alpha = torch.tensor([0.25, 0.75])
    fl = FocalLoss(gamma=2.0, weight=alpha, reduction="none")
    # p_t = 0.6 for target 1: -0.75 * 0.4^2 * ln 0.6
    logits = torch.log(torch.tensor([[0.4, 0.6]]))
    assert fl(logits, torch.tensor([1])).item() == pytest.approx(
        -0.75 * 0.16 * math.log(0.6), rel=1e-5
    )


def test_gamma_zero_equals_cross_entropy_weighted_or_not():
    torch.manual_seed(0)
    logits, target = torch.randn(16, 5), torch.randint(0, 5, (16,))
    w = torch.rand(5) + 0.1
    assert FocalLoss(0.0)(logits, target).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, target).item(), rel=1e-5
    )
    assert FocalLoss(0.0, weight=w)(logits, target).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, target, weight=w).item(), rel=1e-5
    )


def test_focal_downweights_easy_examples_more_than_hard_ones():
    fl = FocalLoss(gamma=2.0, reduction="none")
    easy, hard = fl(logits_for(0.95), torch.tensor([0])), fl(logits_for(0.3), torch.tensor([0]))
    ce_easy, ce_hard = -math.log(0.95), -math.log(0.3)
    assert easy.item() / ce_easy < hard.item() / ce_hard


def test_class_weights_inverse_frequency_sum_to_one_and_production_ratio():
    counts = [PRODUCTION_MIX[i] * 100 for i in INTENTS]
    w = class_weights(counts)
    assert w.sum().item() == pytest.approx(1.0, abs=1e-6)
    esc, disc = INTENTS.index("escalation"), INTENTS.index("product_discovery")
    assert (w[esc] / w[disc]).item() == pytest.approx(22.1 / 3.0, rel=1e-4)  # ~7.37x
    assert (w[esc] / w[disc]).item() == pytest.approx(7.3, abs=0.1)


def test_class_weights_reject_empty_class():
    with pytest.raises(ValueError, match="no training examples"):
        class_weights([10, 0, 3])


def test_negative_gamma_rejected():
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1)


@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothing_at_gamma_zero_equals_torch_cross_entropy(weighted):
    torch.manual_seed(0)
    logits, target = torch.randn(16, 5), torch.randint(0, 5, (16,))
    weight = torch.rand(5) if weighted else None
    ours = FocalLoss(gamma=0.0, weight=weight, label_smoothing=0.1)(logits, target)
    ref = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1)(logits, target)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)


def test_label_smoothing_pulls_a_confident_right_answer_up():
    # eps moves target mass to the other classes, so a near-one-hot prediction costs more.
    logits, target = torch.tensor([[8.0, 0.0, 0.0]]), torch.tensor([0])
    plain = FocalLoss(gamma=2.0)(logits, target)
    smoothed = FocalLoss(gamma=2.0, label_smoothing=0.1)(logits, target)
    assert smoothed.item() > plain.item()
    with pytest.raises(ValueError, match="label_smoothing"):
        FocalLoss(label_smoothing=1.0)
