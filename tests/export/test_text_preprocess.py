"""text_preprocess=romaji end to end: a tiny run trained with it, its bundle, serving, teacher.

The Japanese messages are written for this test (not from the golden set or the phrasing
banks), so the run's validation split (the export's parity messages) holds some of them.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mangaassist.data.normalize import normalize_text
from mangaassist.data.transliterate import normalize_romaji
from mangaassist.errors import UserError
from mangaassist.export import bundle as export_bundle
from mangaassist.export.bundle import export_run
from mangaassist.inference import Predictor, open_bundle
from mangaassist.inference.bundle import BundleError
from mangaassist.training.run_dir import load_run
from mangaassist.training.teacher import read_cache, teacher_identity, text_key, write_cache
from mangaassist.training.train import train
from tests.conftest import TINY, compose_cfg, write_toy_jsonl
from tests.export.edit import with_manifest

JAPANESE = {
    "order_tracking": ["注文した荷物がまだ来ない", "にもつ いつ とどく"],
    "return_request": ["キャンセルお願いします", "届いた本を交換したい"],
    "promotion": ["割引はある?", "クーポンある?"],
    "chitchat": ["こんばんは〜", "どうもありがと😊"],
    "faq": ["送料はいくらですか", "支払い方法を教えて"],
    "product_question": ["ワンピース12巻の在庫ある?", "この本は完結してる?"],
    "escalation": ["人間と話したい", "責任者を呼んで"],
    "checkout_help": ["カードが使えない", "住所が変更できない"],
    "recommendation": ["おすすめの漫画ある?", "似てる作品を教えて"],
    "product_discovery": ["新刊を見せて", "ホラー漫画ある?"],
}
_SCRIPT = ("\u3040", "\u30ff")  # hiragana and katakana: what marks a message as Japanese here


def _japanese(text: str) -> bool:
    return any(_SCRIPT[0] <= c <= _SCRIPT[1] or "\u4e00" <= c <= "\u9fff" for c in text)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("romaji")
    toy = write_toy_jsonl(root / "toy.jsonl", n_per_class=6)
    with toy.open("a") as f:
        for label, phrases in JAPANESE.items():
            for i in range(4):  # a distinct number each: not normalised duplicates
                row = {
                    "text": f"{phrases[i % 2]} {i}",
                    "label": label,
                    "conversation_id": f"jp-{label}-{i}",
                }
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    cfg = compose_cfg(
        [*TINY, "data=files", f"data.train={toy}", "data.module.text_preprocess=romaji"],
        root / "run",
    )
    train(cfg)
    return root / "run"


@pytest.fixture(scope="module")
def bundle_dir(run_dir):
    return export_run(run_dir, run_dir / "export")


def test_the_default_is_none(tmp_path):
    cfg = compose_cfg([*TINY, "data=files", "data.train=x.jsonl"], tmp_path)
    assert cfg.data.module.text_preprocess == "none"


def test_the_run_and_its_bundle_record_the_option(run_dir, bundle_dir):
    assert OmegaConf.load(run_dir / "config.yaml").data.module.text_preprocess == "romaji"
    assert load_run(run_dir).text_preprocess == "romaji"
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["text_preprocess"] == "romaji"
    assert open_bundle(bundle_dir).text_preprocess == "romaji"
    assert "normalize_romaji" in (bundle_dir / "README.md").read_text()
    val = [
        e["text"] for e in map(json.loads, (run_dir / "data/val.jsonl").read_text().splitlines())
    ]
    assert any(map(_japanese, val))  # the export's tokenizer check saw Japanese messages


def test_served_ids_are_the_ids_training_fed_the_model(run_dir, bundle_dir):
    """The DataModule rebuilt from the run's own config.yaml (as training built it) and the
    bundle's tokenizer (as serving builds it) give the same ids on every Japanese message."""
    run = load_run(run_dir)
    cfg = run.config
    dm = instantiate(cfg.data.module, _partial_=True)(
        source=instantiate(cfg.data.source), tokenizer=run.tokenizer, name=cfg.data.name
    )
    predictor = Predictor.from_bundle(open_bundle(bundle_dir))
    unk = run.tokenizer.unk_token_id
    for split in ("train", "val", "test"):
        enc = dm._encode(split)
        rows = [i for i, t in enumerate(enc["texts"]) if _japanese(t)]
        assert rows, f"no Japanese message in the {split} split"
        served = predictor.tokenizer.encode([enc["texts"][i] for i in rows])
        assert served == [list(enc["input_ids"][i]) for i in rows]
        # Every kana and kanji read: an [UNK] is left only where the message had an emoji.
        assert [unk in ids for ids in served] == ["😊" in enc["texts"][i] for i in rows]
    texts = [f"{p} 9" for phrases in JAPANESE.values() for p in phrases]
    # The run's PyTorch scoring (evaluation, teacher) and the bundle answer alike.
    np.testing.assert_allclose(predictor.logits(texts), run.predict_logits(texts), atol=1e-4)
    # Without the option the same messages reach the tokenizer as kana and kanji.
    assert (
        run.tokenizer(normalize_text(texts[0]))["input_ids"]
        != predictor.tokenizer.encode(texts[:1])[0]
    )
    assert (
        predictor.tokenizer.encode(texts[:1])[0]
        == run.tokenizer(normalize_romaji(texts[0]))["input_ids"]
    )


def test_export_refuses_a_served_path_without_the_romaji_step(run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(export_bundle, "preprocessor", lambda name: normalize_text)
    with pytest.raises(UserError, match=r"tokenizes .* differently from the tokenizer"):
        export_run(run_dir, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_a_bundle_without_the_key_loads_as_none(bundle_dir, tmp_path):
    old = with_manifest(bundle_dir, tmp_path, lambda m: m.pop("text_preprocess"))
    bundle = open_bundle(old)
    assert bundle.text_preprocess == "none"
    assert Predictor.from_bundle(bundle).tokenizer.preprocess is normalize_text


def test_a_bundle_with_an_unknown_value_is_refused_at_load(bundle_dir, tmp_path):
    bad = with_manifest(bundle_dir, tmp_path, lambda m: m.update(text_preprocess="kana"))
    with pytest.raises(BundleError, match=r"manifest\.json: text_preprocess='kana' is not allowed"):
        open_bundle(bad)
    with pytest.raises(UserError, match="use one of none, romaji"):
        open_bundle(bad)


def test_a_teacher_cache_is_keyed_by_text_and_checked_for_the_teacher_preprocess(run_dir, tmp_path):
    identity = teacher_identity(run_dir)
    assert identity["text_preprocess"] == "romaji"
    # Keys are of the normalised message, whatever the preprocessing.
    assert text_key("注文  まだ") == text_key("注文 まだ") != text_key("chuumon mada")
    keys = [text_key("注文まだ")]
    logits = np.zeros((1, 10), dtype=np.float32)
    stale = tmp_path / "none.safetensors"
    write_cache(stale, {**identity, "text_preprocess": "none"}, keys, logits)
    with pytest.raises(UserError, match=r"text_preprocess='none'.*text_preprocess='romaji'"):
        read_cache(stale, identity, keys)
    # A cache from before the option (no text_preprocess) was computed with none.
    old = tmp_path / "old.safetensors"
    write_cache(old, {k: v for k, v in identity.items() if k != "text_preprocess"}, keys, logits)
    none_teacher = {**identity, "text_preprocess": "none"}
    np.testing.assert_array_equal(read_cache(old, none_teacher, keys), logits)
    with pytest.raises(UserError, match="stale"):
        read_cache(old, identity, keys)


def test_a_soup_refuses_ingredients_trained_with_different_preprocessing(run_dir, tmp_path):
    from mangaassist.training.soup import _check_ingredients

    other = tmp_path / "run_none"
    shutil.copytree(run_dir, other, ignore=shutil.ignore_patterns("export"))
    cfg = OmegaConf.load(other / "config.yaml")
    cfg.data.module.text_preprocess = "none"
    (other / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    with pytest.raises(UserError, match=r"differ in data\.module\.text_preprocess"):
        _check_ingredients([run_dir, other])
