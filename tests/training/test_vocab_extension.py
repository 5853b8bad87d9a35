"""vocab_extension: Japanese words join the tokenizer, start from their romaji, and ship.

The Japanese lines are written for this test (short shop phrases), not taken from the golden
set or the phrasing banks.
"""

from __future__ import annotations

import json

import pytest
import torch

from mangaassist.data.normalize import normalize_text
from mangaassist.data.vocabulary import japanese_tokens
from mangaassist.errors import UserError
from mangaassist.export.bundle import export_run
from mangaassist.inference import Predictor, open_bundle
from mangaassist.model.backbone import (
    add_tokens,
    init_added_embeddings,
    load_backbone,
    load_tokenizer,
)
from mangaassist.training.config_schema import validate_train_config
from mangaassist.training.run_dir import load_run
from mangaassist.training.train import train
from tests.conftest import TINY, compose_cfg, write_toy_jsonl

JAPANESE = {  # intent -> a phrase; each is written 4 times with a number after it
    "order_tracking": "注文した本が届かない",
    "return_request": "届いた本を返品したい",
    "promotion": "今月のクーポンはありますか",
    "faq": "送料はいくらですか",
}


def test_tokens_are_the_most_frequent_words_and_characters_not_in_the_vocab():
    texts = ["注文まだ", "注文できない", "注文", "hello まだ"]
    # 注文 x3, 注 x3, 文 x3, まだ x2 (its characters counted too), できない x1.
    assert japanese_tokens(texts, vocab=set(), size=10, min_count=2) == [
        "注文",
        "注",
        "文",
        "まだ",
        "ま",
        "だ",
    ]
    assert japanese_tokens(texts, vocab={"注", "ま"}, size=3, min_count=2) == ["注文", "文", "まだ"]
    assert japanese_tokens(["hello there"], vocab=set(), size=5) == []


def test_a_new_token_is_one_id_and_starts_from_its_romaji_pieces():
    tokenizer = load_tokenizer(None, "tiny")
    encoder = load_backbone("bert", None, "tiny")
    before = encoder.get_input_embeddings().weight.detach().clone()
    pieces = tokenizer("chuumon", add_special_tokens=False)["input_ids"]
    added = add_tokens(tokenizer, ["注文"], lambda t: "chuumon")
    (new_id,) = added
    assert added[new_id] == pieces and new_id == before.shape[0]
    init_added_embeddings(encoder, added)
    weight = encoder.get_input_embeddings().weight
    assert weight.shape[0] == before.shape[0] + 1
    torch.testing.assert_close(weight[new_id], before[pieces].mean(0))
    torch.testing.assert_close(weight[:-1], before)  # the old rows are kept
    ids = tokenizer("注文がまだ", add_special_tokens=False)["input_ids"]
    assert ids[0] == new_id and tokenizer.unk_token_id not in ids[:1]
    # Matched before the normaliser: が keeps its voicing mark (the normaliser makes it か).
    assert "が" not in tokenizer.convert_ids_to_tokens(ids)  # not added, so it is normalised
    add_tokens(tokenizer, ["が"], lambda t: "ga")
    assert "が" in tokenizer.convert_ids_to_tokens(tokenizer("注文がまだ")["input_ids"])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("vocab")
    toy = write_toy_jsonl(root / "toy.jsonl", n_per_class=6)
    with toy.open("a") as f:
        for label, phrase in JAPANESE.items():
            for i in range(4):
                row = {
                    "text": f"{phrase} {i}",
                    "label": label,
                    "conversation_id": f"ja-{label}-{i}",
                }
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    cfg = compose_cfg(
        [
            *TINY,
            "data=files",
            f"data.train={toy}",
            "vocab_extension.size=40",
            "vocab_extension.min_count=2",
        ],
        root / "run",
    )
    train(cfg)
    return root / "run"


def test_the_run_trains_reloads_and_serves_with_the_added_tokens(run_dir, capsys):
    run = load_run(run_dir)
    added = [
        t for t in run.tokenizer.get_added_vocab() if t not in run.tokenizer.all_special_tokens
    ]
    assert "届" in added and 0 < len(added) <= 40
    assert run.model.encoder.get_input_embeddings().weight.shape[0] == len(run.tokenizer)
    text = "注文した本が届かない 9"
    ids = run.token_ids([text])[0]
    assert run.tokenizer.unk_token_id not in ids
    bundle = export_run(run_dir, run_dir / "export")  # its tokenizer check passes: same ids
    served = Predictor.from_bundle(open_bundle(bundle))
    assert served.tokenizer.encode([text])[0] == ids
    torch.testing.assert_close(
        torch.tensor(served.logits([text])),
        torch.tensor(run.predict_logits([text])),
        atol=1e-4,
        rtol=0,
    )
    assert normalize_text(text) == text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["vocab_extension.size=-1"], r"vocab_extension\.size=-1 is not allowed: use a whole"),
        (["vocab_extension.min_count=0"], r"vocab_extension\.min_count=0 is not allowed"),
        (
            ["vocab_extension.size=10", "data.module.text_preprocess=romaji"],
            r"leaves no Japanese script to add tokens for",
        ),
    ],
)
def test_bad_settings_are_refused_before_work(tmp_path, overrides, message):
    with pytest.raises(UserError, match=message):
        validate_train_config(compose_cfg([*TINY, *overrides], tmp_path))


def test_the_mangaassist_corpus_turns_the_chosen_levers_on_and_other_data_does_not(tmp_path):
    from mangaassist.training.train import secondary_weight_of

    ours = compose_cfg(["data=mangaassist"], tmp_path)  # chosen on validation (ABLATION.md)
    assert ours.vocab_extension.size == 1000 and secondary_weight_of(ours) == 5.0
    assert ours.data.module.text_preprocess == "none"  # the extension needs the script kept
    validate_train_config(ours)
    files = compose_cfg(["data=files", "data.train=x.jsonl"], tmp_path)
    assert files.vocab_extension.size == 0 and secondary_weight_of(files) == 0.0
    romaji = compose_cfg(["data=mangaassist", "data.module.text_preprocess=romaji"], tmp_path)
    with pytest.raises(UserError, match=r"Use one lever: vocab_extension\.size=0"):
        validate_train_config(romaji)
