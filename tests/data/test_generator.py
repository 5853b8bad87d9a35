"""The corpus generator: determinism, configured mixes, label rules, conversations, truth."""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from mangaassist.data.generator import Corpus, generate, write_corpus
from mangaassist.data.generator import lexicon as lx
from mangaassist.data.generator.compose import LOW_QUALITY_KINDS, SLOT, Filler
from mangaassist.data.generator.corpus import CONFUSABLE, LABEL_MIX
from mangaassist.data.generator.phrasings import BACKSTORY, BANKS, CLOSERS, FAN_TALK, OPENERS
from mangaassist.data.normalize import dedup_key
from mangaassist.data.schema import INTENTS, PRIORITY, SOURCES, primary_intent, read_examples
from mangaassist.errors import UserError

N = 4000  # big enough for rates within a point, small enough to build in well under a second


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return generate(n=N, seed=0)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Three corpora on disk: seed 7 twice, seed 8 once."""
    dirs = [tmp_path_factory.mktemp(name) for name in ("seed7a", "seed7b", "seed8")]
    for out, seed in zip(dirs, (7, 7, 8), strict=True):
        write_corpus(out, n=3000, seed=seed)
    return dirs[0], dirs[1], dirs[2]


def _by_id(corpus: Corpus) -> dict:
    return {ex.id: ex for ex in corpus.examples}


def _template_regex(template: str) -> re.Pattern[str]:
    parts = SLOT.split(template)[::2]  # split() keeps slot names at odd positions
    return re.compile(".+?".join(re.escape(p) for p in parts), re.DOTALL)


def _has_kana_or_kanji(text: str) -> bool:
    return any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in text)


# ----- determinism -------------------------------------------------------------------------


def test_same_seed_writes_byte_identical_files(written: tuple[Path, Path, Path]) -> None:
    a, b, _ = written
    for name in ("corpus.jsonl", "injected.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    report_a = json.loads((a / "generation_report.json").read_text())
    report_b = json.loads((b / "generation_report.json").read_text())
    report_a.pop("elapsed_s"), report_b.pop("elapsed_s")
    assert report_a == report_b


def test_different_seed_gives_a_different_corpus(written: tuple[Path, Path, Path]) -> None:
    a, _, c = written
    texts_a = [json.loads(line)["text"] for line in (a / "corpus.jsonl").read_text().splitlines()]
    texts_c = [json.loads(line)["text"] for line in (c / "corpus.jsonl").read_text().splitlines()]
    assert len(texts_a) == len(texts_c) == 3000
    assert sum(x != y for x, y in zip(texts_a, texts_c, strict=True)) > 2700


def test_output_does_not_depend_on_hash_randomisation() -> None:
    # Set or dict-of-hash iteration would change with PYTHONHASHSEED; the corpus must not.
    code = (
        "import hashlib, json; from mangaassist.data.generator import generate; "
        "c = generate(n=600, seed=3); "
        "print(hashlib.sha256(json.dumps([e.to_dict() for e in c.examples]).encode()).hexdigest())"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=Path(__file__).resolve().parents[2],  # the repository root, where the package is
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(out.stdout.strip().splitlines()[-1])
    assert len(digests) == 1


# ----- files and report --------------------------------------------------------------------


def test_written_files_agree_with_each_other(written: tuple[Path, Path, Path]) -> None:
    out = written[0]
    examples = read_examples(out / "corpus.jsonl", labels=INTENTS)  # every label valid
    report = json.loads((out / "generation_report.json").read_text())
    injected = json.loads((out / "injected.json").read_text())
    assert report["sha256"] == hashlib.sha256((out / "corpus.jsonl").read_bytes()).hexdigest()
    assert report["n"] == len(examples) == 3000
    assert report["production"] + report["synthetic"] == 3000
    ids = {ex.id for ex in examples}
    for section in ("label_noise", "low_quality_synthetic", "duplicates"):
        assert injected[section], section
        assert set(injected[section]) <= ids, section
    assert report["label_noise_share"] == round(
        len(injected["label_noise"]) / report["production"], 4
    )
    assert abs(sum(report["label_mix"].values()) - 1) < 1e-3


def test_write_corpus_prints_a_summary_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_corpus(tmp_path, n=300, seed=1, label_noise=0.05)
    assert path == tmp_path / "corpus.jsonl"
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("[GENERATE] n=300 seed=1 production=273 synthetic=27 ")
    for key in ("jp_en_mixed=", "multi_intent=", "duplicates=", "label_noise=5.1%", "sha256="):
        assert key in last, key


# ----- configured mixes --------------------------------------------------------------------


def test_label_mix_matches_the_audit(corpus: Corpus) -> None:
    truth = {**corpus.injected["label_noise"], **corpus.injected["low_quality_synthetic"]}
    true_labels = [
        truth[ex.id]["true_label"] if ex.id in truth else ex.label for ex in corpus.examples
    ]
    for intent, target in LABEL_MIX.items():
        # Quotas are exact; only duplicates drift the true mix. Noise moves a few labels more.
        true_share = 100 * true_labels.count(intent) / N
        seen_share = 100 * sum(ex.label == intent for ex in corpus.examples) / N
        assert abs(true_share - target) < 0.5, (intent, true_share)
        assert abs(seen_share - target) < 1.5, (intent, seen_share)


def test_feature_rates_match_the_configuration(corpus: Corpus) -> None:
    production = [ex for ex in corpus.examples if ex.source == "production"]
    synthetic = [ex for ex in corpus.examples if ex.source == "synthetic"]
    assert len(synthetic) == round(N * 5000 / 55000)
    assert len(corpus.jp_en_mixed) / N == pytest.approx(0.117, abs=0.005)
    multi = sum(bool(ex.secondary_intents) for ex in corpus.examples) / N
    assert multi == pytest.approx(0.179, abs=0.01)
    assert len(corpus.injected["duplicates"]) / N == pytest.approx(0.018, abs=0.002)
    assert len(corpus.injected["low_quality_synthetic"]) / len(synthetic) == pytest.approx(
        0.10, abs=0.005
    )
    assert len(corpus.injected["label_noise"]) / len(production) == pytest.approx(0.03, abs=0.001)


def test_rates_follow_the_arguments() -> None:
    noisy = generate(n=1000, seed=2, synthetic=200, label_noise=0.1, synthetic_low_quality=0.5)
    assert sum(ex.source == "synthetic" for ex in noisy.examples) == 200
    assert len(noisy.injected["label_noise"]) == 80  # 10% of 800 production
    assert len(noisy.injected["low_quality_synthetic"]) == 100
    clean = generate(n=1000, seed=2, synthetic=0, label_noise=0.0)
    assert all(ex.source == "production" for ex in clean.examples)
    assert not clean.injected["label_noise"] and not clean.injected["low_quality_synthetic"]


@pytest.mark.parametrize(
    "kwargs", [{"n": 0}, {"n": 100, "synthetic": 101}, {"label_noise": 1.5}, {"synthetic": -1}]
)
def test_bad_arguments_are_user_errors(kwargs: dict) -> None:
    with pytest.raises(UserError):
        generate(**{"n": 100, **kwargs})


def test_lengths_have_a_short_median_and_a_long_tail(corpus: Corpus) -> None:
    words = [len(ex.text.split()) for ex in corpus.examples]
    assert 6 <= statistics.median(words) <= 10
    assert sum(w <= 2 for w in words) / N > 0.05  # "cancel", "order??", "hi"
    assert sum(w > 80 for w in words) / N > 0.005  # rambling past the 128-token budget


# ----- label rules -------------------------------------------------------------------------


def test_multi_intent_label_is_the_priority_winner(corpus: Corpus) -> None:
    injected_labels = set(corpus.injected["label_noise"]) | set(
        corpus.injected["low_quality_synthetic"]
    )
    checked = 0
    for ex in corpus.examples:
        if not ex.secondary_intents or ex.id in injected_labels:
            continue
        assert ex.label not in ex.secondary_intents, ex
        assert ex.label == primary_intent([ex.label, *ex.secondary_intents]), ex
        checked += 1
    assert checked > 0.15 * N
    greeted = [ex for ex in corpus.examples if "chitchat" in ex.secondary_intents]
    assert len(greeted) > 0.05 * N  # a greeting or thanks beside an ask is the common case


def test_every_example_is_well_formed(corpus: Corpus) -> None:
    ids = [ex.id for ex in corpus.examples]
    assert len(set(ids)) == len(ids) == N
    for ex in corpus.examples:
        assert ex.text.strip(), ex
        assert ex.label in INTENTS and set(ex.secondary_intents) <= set(INTENTS), ex
        assert ex.source in SOURCES and ex.conversation_id, ex
        assert datetime.strptime(ex.timestamp, "%Y-%m-%dT%H:%M:%SZ")
        if ex.source == "production":
            assert ex.user_id and not SLOT.search(ex.text), ex  # no unfilled {slot}
    stamps = [ex.timestamp for ex in corpus.examples]
    assert stamps == sorted(stamps)


def test_conversations_have_one_to_six_turns_one_user_and_increasing_time(
    corpus: Corpus,
) -> None:
    conversations: dict[str, list] = {}
    for ex in corpus.examples:
        conversations.setdefault(ex.conversation_id, []).append(ex)
    sizes = [len(turns) for turns in conversations.values()]
    assert min(sizes) == 1 and max(sizes) == 6
    assert sum(s > 1 for s in sizes) > 0.3 * len(sizes)
    for turns in conversations.values():
        assert len({t.user_id for t in turns}) == 1
        assert len({t.source for t in turns}) == 1
        stamps = [t.timestamp for t in turns]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), turns


def test_japanese_mixing_is_where_the_truth_says(corpus: Corpus) -> None:
    mixed = set(corpus.jp_en_mixed)
    texts = _by_id(corpus)
    with_script = sum(_has_kana_or_kanji(texts[i].text) for i in mixed)
    assert 0.3 < with_script / len(mixed) < 0.9  # kana/kanji and romaji both present
    plain = [ex for ex in corpus.examples if ex.id not in mixed]
    assert not any(_has_kana_or_kanji(ex.text) for ex in plain)


# ----- injected ground truth ---------------------------------------------------------------


def test_label_noise_flips_to_a_confusable_intent(corpus: Corpus) -> None:
    texts = _by_id(corpus)
    for rid, truth in corpus.injected["label_noise"].items():
        ex = texts[rid]
        assert ex.source == "production" and ex.label == truth["label"]
        confusable = [intent for intent, _ in CONFUSABLE[truth["true_label"]]]
        assert ex.label != truth["true_label"] and ex.label in confusable


def test_duplicates_repeat_an_earlier_message(corpus: Corpus) -> None:
    texts = _by_id(corpus)
    kinds = set()
    for rid, truth in corpus.injected["duplicates"].items():
        dup, orig = texts[rid], texts[truth["of"]]
        kinds.add(truth["kind"])
        assert dedup_key(dup.text) == dedup_key(orig.text)
        assert dup.source == orig.source and dup.timestamp >= orig.timestamp
        assert (dup.text == orig.text) == (truth["kind"] == "exact"), (dup.text, orig.text)
        if truth["placement"] == "same_conversation":
            assert dup.conversation_id == orig.conversation_id
    assert {"exact", "case", "punctuation"} <= kinds


def test_low_quality_synthetic_rows_carry_their_kind(corpus: Corpus) -> None:
    texts = _by_id(corpus)
    by_kind: dict[str, list] = {}
    for rid, truth in corpus.injected["low_quality_synthetic"].items():
        by_kind.setdefault(truth["kind"], []).append((texts[rid], truth))
    assert sorted(by_kind) == sorted(LOW_QUALITY_KINDS)
    for ex, truth in by_kind["wrong_label"]:
        assert ex.source == "synthetic" and ex.label != truth["true_label"]
    for ex, truth in by_kind["truncated"]:
        assert ex.text[-1].isalpha() and ex.label == truth["true_label"]
    for ex, _ in by_kind["template_artifact"]:
        assert any(mark in ex.text for mark in ("{", "[", "<", "$TITLE", ":")), ex.text
    for ex, truth in by_kind["wrong_language"]:
        # The text is one of the label's Spanish/French/German phrasings, slots filled.
        foreign = [_template_regex(t) for t in BANKS[truth["true_label"]].foreign]
        assert any(r.fullmatch(ex.text) for r in foreign), ex.text


# ----- phrasing banks and lexicons ---------------------------------------------------------


def test_each_intent_has_a_large_bank_of_distinct_phrasings() -> None:
    owner: dict[str, str] = {}
    for intent in INTENTS:
        bank = BANKS[intent]
        assert len(set(bank.single)) >= 150, intent
        assert len(bank.japanese) >= 20 and len(bank.synthetic) >= 20, intent
        slotless = sum(not SLOT.search(p) for p in bank.single)
        assert slotless > 0.25 * len(bank.single), intent  # many asks name no entity
        for phrase in bank.single:
            # One phrasing, one label: the same words under two intents would teach noise.
            assert owner.setdefault(phrase.lower(), intent) == intent, phrase


def test_built_in_multi_intent_phrasings_keep_the_priority_rule() -> None:
    for intent in INTENTS:
        for _, others in BANKS[intent].built_in_multi:
            assert others and set(others) <= set(INTENTS)
            assert primary_intent([intent, *others]) == intent


def test_every_slot_in_every_bank_is_fillable() -> None:
    import random

    filler = Filler(random.Random(0))
    texts = [*BACKSTORY, *OPENERS, *CLOSERS, *FAN_TALK]
    for bank in BANKS.values():
        texts += [*bank.single, *bank.japanese, *bank.synthetic, *bank.foreign, *bank.tails]
        texts += [phrase for phrase, _ in bank.built_in_multi]
    for text in texts:
        assert not SLOT.search(filler.fill(text)), text


def test_lexicons_are_real_and_large() -> None:
    names = [name for name, _, _ in lx.TITLES]
    assert len(names) >= 300 and len(set(names)) == len(names)
    assert {"One Piece", "Berserk", "Oyasumi Punpun", "Yotsuba&!", "Delicious in Dungeon"} <= set(
        names
    )
    aliases = {alias for _, spellings, _ in lx.TITLES for alias in spellings}
    assert {"jjk", "aot", "csm", "mha", "frieren", "berserk deluxe"} <= aliases
    assert set(lx.POPULAR_TITLES) <= set(names)
    assert len(lx.AUTHORS) >= 80 and len(lx.CARRIERS) >= 15 and len(lx.PAYMENT_METHODS) >= 20
    assert PRIORITY[-1] == "chitchat"  # the composer relies on chitchat ranking last
