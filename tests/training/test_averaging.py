"""EMA weight averaging: the averaged weights are what gets checkpointed, tested and served."""

from pathlib import Path

import pytest
import torch

from mangaassist.training import load_run, train
from mangaassist.training.averaging import EMAWeights
from mangaassist.training.train import build

EMA = ("averaging=ema", "callbacks.weight_averaging.decay=0.9")


def test_checkpoint_holds_the_average_and_test_scores_it(tiny_cfg):
    cfg = tiny_cfg(*EMA, "trainer.max_epochs=2", "trainer.limit_train_batches=4")
    dm, model, trainer = build(cfg)
    trainer.fit(model, datamodule=dm)
    ckpt = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)
    averaged, raw = ckpt["state_dict"]["head.weight"], ckpt["current_model_state"]["head.weight"]
    assert not torch.allclose(averaged, raw)  # 8 steps at lr 1e-3: the average lags behind
    # Lightning's own EMA callback would reload the raw weights when test restores "best".
    trainer.test(model, datamodule=dm, ckpt_path="best", verbose=False)
    assert torch.equal(model.head.weight.detach(), averaged)


def test_served_model_is_the_average(tiny_cfg):
    cfg = tiny_cfg(*EMA, "trainer.max_epochs=2")
    train(cfg)
    run = load_run(cfg.paths.output_dir)
    ckpt = Path(cfg.paths.output_dir) / "checkpoints/best.ckpt"
    averaged = torch.load(ckpt, weights_only=True)["state_dict"]["head.weight"]
    assert torch.equal(run.model.head.weight, averaged)


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5])
def test_decay_outside_0_1_is_refused(decay):
    with pytest.raises(ValueError, match="decay must be in"):
        EMAWeights(decay=decay)
