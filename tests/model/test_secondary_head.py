"""The secondary-intent head: its loss by hand, its wiring, and that weight 0 changes nothing."""

import math

import pytest
import torch
from torch import nn

from mangaassist.model.losses import secondary_bce, with_secondary
from mangaassist.model.module import IntentClassifier

LN3 = math.log(3.0)


def tiny(secondary_weight: float | None = None, seed: int = 0) -> IntentClassifier:
    torch.manual_seed(seed)
    kwargs = {} if secondary_weight is None else {"secondary_weight": secondary_weight}
    return IntentClassifier("bert", num_labels=3, init="tiny", dropout=0.0, **kwargs)


def test_bce_and_combined_loss_by_hand():
    # sigmoid(0, ln 3, -ln 3) = (1/2, 3/4, 1/4); target (0, 1, 0):
    # BCE entries -ln(1/2), -ln(3/4), -ln(3/4), mean = (ln 2 + 2 ln 4/3) / 3 = 0.422837
    z = torch.tensor([[0.0, LN3, -LN3]])
    y = torch.tensor([[0.0, 1.0, 0.0]])
    bce = (math.log(2) + 2 * math.log(4 / 3)) / 3
    assert float(secondary_bce(z, y)) == pytest.approx(bce, abs=1e-6)
    assert bce == pytest.approx(0.422837, abs=1e-6)
    # primary CE of uniform logits over 3 classes = ln 3; weight 0.5: ln 3 + 0.5 * 0.422837
    primary = nn.CrossEntropyLoss()(torch.zeros(1, 3), torch.tensor([0]))
    total = with_secondary(primary, z, y, 0.5)
    assert float(total) == pytest.approx(LN3 + 0.5 * bce, abs=1e-6)
    assert float(total) == pytest.approx(1.310031, abs=1e-6)


def test_bce_refuses_mismatched_targets():
    with pytest.raises(ValueError, match="differ"):
        secondary_bce(torch.zeros(2, 3), torch.zeros(2, 4))


def test_training_step_adds_weighted_bce_to_the_primary_loss(monkeypatch):
    """The module's training loss is CE + weight * BCE, on known logits (forward patched)."""
    model = tiny(secondary_weight=2.0)
    # Two messages: primary logits uniform (CE ln 3 each); secondary logits as above, and
    # all zero (BCE ln 2 on each of the 3 entries) for the second message.
    primary = torch.zeros(2, 3)
    secondary = torch.tensor([[0.0, LN3, -LN3], [0.0, 0.0, 0.0]])
    monkeypatch.setattr(model, "forward_with_secondary", lambda ids, mask: (primary, secondary))
    monkeypatch.setattr(model, "log", lambda *a, **k: None)
    batch = {
        "input_ids": torch.ones(2, 4, dtype=torch.long),
        "attention_mask": torch.ones(2, 4, dtype=torch.long),
        "labels": torch.tensor([0, 2]),
        "secondary_targets": torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]),
    }
    # BCE over the 6 entries: (ln 2 + 2 ln 4/3 + 3 ln 2) / 6 = 0.557992
    bce = (4 * math.log(2) + 2 * math.log(4 / 3)) / 6
    loss = model.training_step(batch, 0)
    assert float(loss) == pytest.approx(LN3 + 2.0 * bce, abs=1e-6)
    assert float(loss) == pytest.approx(2.214596, abs=1e-6)
    del batch["secondary_targets"]
    with pytest.raises(RuntimeError, match="secondary_targets"):
        model.training_step(batch, 0)


def test_weight_zero_means_no_head_and_the_same_model():
    before, off, on = tiny(), tiny(secondary_weight=0.0), tiny(secondary_weight=0.5)
    assert off.secondary_head is None
    assert before.state_dict().keys() == off.state_dict().keys()
    assert not [k for k in off.state_dict() if "secondary" in k]
    ids = torch.randint(5, 500, (2, 6))
    mask = torch.ones_like(ids)
    before.eval(), off.eval(), on.eval()
    torch.testing.assert_close(before(ids, mask), off(ids, mask), rtol=0, atol=0)
    # The head is created after the primary one: same seed, same primary weights and logits.
    torch.testing.assert_close(on(ids, mask), off(ids, mask), rtol=0, atol=0)
    z, z2 = on.forward_with_secondary(ids, mask)
    assert z.shape == z2.shape == (2, 3)
    torch.testing.assert_close(z, on(ids, mask))
    with pytest.raises(RuntimeError, match="no secondary head"):
        off.forward_with_secondary(ids, mask)
    with pytest.raises(ValueError, match=r"secondary\.weight"):
        tiny(secondary_weight=-1.0)


def test_the_head_has_its_own_param_groups_at_the_head_lr():
    from types import SimpleNamespace

    def groups(model: IntentClassifier) -> list[dict]:
        model.trainer = SimpleNamespace(precision="32-true", estimated_stepping_batches=10)
        return model.configure_optimizers()["optimizer"].param_groups

    off, on = groups(tiny(0.0)), groups(tiny(0.5))
    extra = [g for g in on if g["name"].startswith("secondary")]
    assert [g["name"] for g in on if not g["name"].startswith("secondary")] == [
        g["name"] for g in off
    ]
    assert [g["name"] for g in extra] == ["secondary_decay", "secondary_no_decay"]
    head_lr = max(g["lr"] for g in off)
    assert all(g["lr"] == pytest.approx(head_lr) for g in extra)
    assert [g["weight_decay"] for g in extra] == [0.01, 0.0]  # weight decays, bias does not
    assert sum(p.numel() for g in extra for p in g["params"]) == 32 * 3 + 3  # (H=32) x C + C
