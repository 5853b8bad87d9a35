"""The distillation loss against values computed by hand."""

import doctest
import math

import pytest
import torch
from torch import nn

from mangaassist.model import distill
from mangaassist.model.distill import DistillationLoss, soft_kl
from mangaassist.model.losses import FocalLoss

LN2, LN3 = math.log(2.0), math.log(3.0)
# Teacher 3:1 (p = [0.75, 0.25]) against an undecided student (q = [0.5, 0.5]):
# KL(p || q) = 0.75 ln(0.75 / 0.5) + 0.25 ln(0.25 / 0.5) = 0.75 ln 1.5 - 0.25 ln 2.
KL_31 = 0.75 * math.log(1.5) - 0.25 * LN2  # 0.130812...


def test_doctest():
    assert doctest.testmod(distill).failed == 0


def test_kl_by_hand_at_temperature_one():
    s, t = torch.zeros(1, 2), torch.tensor([[LN3, 0.0]])
    assert float(soft_kl(s, t, 1.0)) == pytest.approx(KL_31, abs=1e-6)
    assert float(soft_kl(t, t, 1.0)) == pytest.approx(0.0, abs=1e-7)  # same distribution


def test_temperature_divides_the_logits_before_the_softmax():
    # Teacher logits [2 ln 3, 0] at T = 2 are [ln 3, 0]: again p = [0.75, 0.25].
    s, t = torch.zeros(1, 2), torch.tensor([[2 * LN3, 0.0]])
    assert float(soft_kl(s, t, 2.0)) == pytest.approx(KL_31, abs=1e-6)
    # At T = 1 the same teacher is 9:1 (p = [0.9, 0.1]).
    kl_91 = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert float(soft_kl(s, t, 1.0)) == pytest.approx(kl_91, abs=1e-6)


def test_the_soft_term_is_scaled_by_t_squared():
    s, t, y = torch.zeros(1, 2), torch.tensor([[2 * LN3, 0.0]]), torch.tensor([0])
    kd = DistillationLoss(nn.CrossEntropyLoss(), temperature=2.0, alpha=1.0)
    soft, hard = kd.parts(s, y, t)
    assert float(soft) == pytest.approx(4.0 * KL_31, abs=1e-6)  # T^2 = 4
    assert float(hard) == pytest.approx(LN2, abs=1e-6)  # CE of [0.5, 0.5] on class 0
    assert float(kd(s, y, t)) == pytest.approx(4.0 * KL_31, abs=1e-6)  # alpha 1: soft only


@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.9])
def test_alpha_mixes_soft_and_hard(alpha):
    s, t, y = torch.zeros(1, 2), torch.tensor([[2 * LN3, 0.0]]), torch.tensor([0])
    kd = DistillationLoss(nn.CrossEntropyLoss(), temperature=2.0, alpha=alpha)
    expected = alpha * 4.0 * KL_31 + (1 - alpha) * LN2
    assert float(kd(s, y, t)) == pytest.approx(expected, abs=1e-6)
    if alpha == 0.5:
        assert float(kd(s, y, t)) == pytest.approx(0.6082, abs=1e-4)


def test_alpha_zero_is_exactly_the_hard_loss():
    torch.manual_seed(0)
    s, t = torch.randn(8, 10), torch.randn(8, 10)
    y = torch.randint(0, 10, (8,))
    hard = FocalLoss(gamma=2.0, weight=torch.rand(10))  # the configured loss=focal_weighted
    kd = DistillationLoss(hard, temperature=4.0, alpha=0.0)
    assert torch.equal(kd(s, y, t), hard(s, y))


def test_batch_mean_over_examples_sum_over_classes():
    # Two examples: one as above, one where teacher and student agree (KL 0): mean KL / 2.
    s = torch.zeros(2, 2)
    t = torch.tensor([[LN3, 0.0], [0.0, 0.0]])
    assert float(soft_kl(s, t, 1.0)) == pytest.approx(KL_31 / 2, abs=1e-6)


def test_gradient_pulls_the_student_towards_the_teacher():
    s = torch.zeros(1, 2, requires_grad=True)
    t = torch.tensor([[LN3, 0.0]])
    DistillationLoss(nn.CrossEntropyLoss(), 1.0, 1.0)(s, torch.tensor([1]), t).backward()
    # d KL / d s = q - p = [0.5 - 0.75, 0.5 - 0.25]: raise class 0, lower class 1.
    torch.testing.assert_close(s.grad, torch.tensor([[-0.25, 0.25]]))


def test_bf16_logits_are_scored_in_float32():
    s = torch.zeros(1, 2, dtype=torch.bfloat16)
    assert soft_kl(s, torch.tensor([[LN3, 0.0]]), 1.0).dtype == torch.float32


def test_bad_settings_and_shapes():
    with pytest.raises(ValueError, match="temperature"):
        DistillationLoss(nn.CrossEntropyLoss(), temperature=0.0)
    with pytest.raises(ValueError, match="alpha"):
        DistillationLoss(nn.CrossEntropyLoss(), alpha=1.5)
    kd = DistillationLoss(nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match="same labels"):
        kd(torch.zeros(2, 3), torch.tensor([0, 1]), torch.zeros(2, 4))
