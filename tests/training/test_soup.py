"""Weight soups: ingredients share splits, the soup is their mean and scores like any run."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest
import torch

from mangaassist.cli import main as cli_main
from mangaassist.errors import UserError
from mangaassist.training import load_run, train
from mangaassist.training import soup as soup_module
from mangaassist.training.soup import average_state_dicts, soup_runs
from mangaassist.training.train import build
from tests.conftest import TINY, compose_cfg


def _cfg(tmp_path: Path, toy_file: Path, name: str, *extra: str):
    return compose_cfg(
        [*TINY, "data=files", f"data.train={toy_file}", "trainer.max_epochs=2", *extra],
        tmp_path / name,
    )


@pytest.fixture
def ingredients(tmp_path, toy_file) -> list[Path]:
    """Two tiny runs on one carved split, differing only in batch order."""
    dirs = []
    for order in (0, 1):
        cfg = _cfg(tmp_path, toy_file, f"o{order}", f"data.module.order_seed={order}")
        train(cfg)
        dirs.append(Path(cfg.paths.output_dir))
    return dirs


def test_order_seed_changes_the_batch_order_but_not_the_split(tmp_path, toy_file):
    first = {}
    splits = {}
    for order in (None, 0, 5):
        extra = [] if order is None else [f"data.module.order_seed={order}"]
        dm, _, _ = build(_cfg(tmp_path, toy_file, "x", *extra))
        splits[order] = [e.text for e in dm.splits["val"]]
        dm.setup("fit")
        first[order] = next(iter(dm.train_dataloader()))["input_ids"]
    assert splits[None] == splits[0] == splits[5]
    assert torch.equal(first[None], first[0])  # null means "the data seed" (0 here)
    assert not torch.equal(first[0], first[5])


def test_soup_is_the_mean_of_its_ingredients_and_loads_as_a_run(ingredients, tmp_path):
    out = soup_runs(ingredients, tmp_path / "soup")
    heads = [load_run(d).model.head.weight for d in ingredients]
    soup = load_run(out)
    assert not torch.allclose(heads[0], heads[1])  # the batch order made them differ
    assert torch.allclose(soup.model.head.weight, (heads[0] + heads[1]) / 2, atol=1e-7)
    assert float(soup.model.temperature) == 1.0
    manifest = json.loads((out / "soup.json").read_text())
    assert [Path(i["run_dir"]) for i in manifest["ingredients"]] == [
        d.resolve() for d in ingredients
    ]
    assert (out / "data/val.jsonl").read_bytes() == (ingredients[0] / "data/val.jsonl").read_bytes()
    assert not list(tmp_path.glob(".soup.tmp"))


def test_cli_soup_then_post_train_scores_it(ingredients, tmp_path, capsys):
    out = tmp_path / "soup"
    assert cli_main(["soup", str(out), *map(str, ingredients)]) == 0
    assert f"[SOUP] path={out}" in capsys.readouterr().out
    assert cli_main(["post-train", str(out)]) == 0
    summary = json.loads((out / "eval/summary.json").read_text())
    assert 0.0 <= summary["test/acc"] <= 1.0
    assert (out / "calibration.json").is_file()  # fitted on the soup's own val split


def test_ingredients_from_other_splits_are_refused(ingredients, tmp_path, toy_file):
    cfg = _cfg(tmp_path, toy_file, "other_split", "seed=7")
    train(cfg)
    with pytest.raises(UserError, match=r"data/val.jsonl differs .*order_seed"):
        soup_runs([ingredients[0], cfg.paths.output_dir], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"text_preprocess": "romaji"}, r"differ in data\.module\.text_preprocess"),
        (
            {"truncation": "head_tail", "truncation_head_tokens": 4},
            r"differ in data\.module\.truncation",
        ),
    ],
)
def test_ingredients_that_read_text_otherwise_are_refused(ingredients, tmp_path, change, message):
    """Same split, but one ingredient was trained on other input ids (its config.yaml says)."""
    from omegaconf import OmegaConf

    config = ingredients[1] / "config.yaml"
    cfg = OmegaConf.load(config)
    cfg.data.module.update(change)
    OmegaConf.save(cfg, config)
    with pytest.raises(UserError, match=message):
        soup_runs(ingredients, tmp_path / "soup")
    assert not (tmp_path / "soup").exists()


def test_bad_requests_name_the_problem(ingredients, tmp_path):
    with pytest.raises(UserError, match="at least 2 runs"):
        soup_runs(ingredients[:1], tmp_path / "soup")
    with pytest.raises(UserError, match="not a complete run directory"):
        soup_runs([ingredients[0], tmp_path], tmp_path / "soup")
    (tmp_path / "taken").mkdir()
    with pytest.raises(UserError, match="exists"):
        soup_runs(ingredients, tmp_path / "taken")


def test_average_refuses_other_architectures():
    a = {"w": torch.zeros(2), "ids": torch.arange(3)}
    with pytest.raises(UserError, match="other weights"):
        average_state_dicts([a, {"w": torch.zeros(2)}])
    with pytest.raises(UserError, match="shapes"):
        average_state_dicts([a, {"w": torch.zeros(3), "ids": torch.arange(3)}])
    with pytest.raises(UserError, match="not a float tensor"):
        average_state_dicts([a, {"w": torch.zeros(2), "ids": torch.arange(1, 4)}])
    avg = average_state_dicts([a, {"w": torch.ones(2), "ids": torch.arange(3)}])
    assert torch.equal(avg["w"], torch.full((2,), 0.5)) and torch.equal(avg["ids"], a["ids"])


def test_doctest():
    assert doctest.testmod(soup_module).failed == 0
