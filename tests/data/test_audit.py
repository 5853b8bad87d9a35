"""Audit: its estimates land near the truth injected into a fixture, and its files are complete."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
import yaml

from mangaassist.data.audit import (
    DEFAULTS,
    AuditReport,
    TextChecks,
    approx_token_count,
    audit_examples,
    audit_file,
    foreign_language,
    has_multi_intent_cue,
    has_repeated_phrase,
    is_jp_en_mixed,
)
from mangaassist.data.cleaning import clean
from mangaassist.data.schema import INTENTS, Example, write_examples
from mangaassist.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
FILLER = ["i", "you", "the", "is", "my", "can", "please", "need", "want", "now", "here", "any"]
LABEL_NOISE = 0.05
SYNTHETIC_LOW_QUALITY = 0.10


def _corpus(n_prod: int, n_syn: int, seed: int = 0) -> tuple[list[Example], set[str], set[str]]:
    """Ten classes with their own made-up words; flip LABEL_NOISE of production labels and
    spoil SYNTHETIC_LOW_QUALITY of synthetic rows. Returns (examples, flipped, spoiled) ids."""
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(3))

    vocab = {lab: [word() for _ in range(25)] for lab in INTENTS}

    def message(label: str) -> str:
        toks = [rng.choice(vocab[label]) if rng.random() < 0.5 else rng.choice(FILLER)]
        toks += [rng.choice(vocab[label] + FILLER) for _ in range(rng.randint(2, 7))]
        return " ".join([rng.choice(vocab[label]), *toks, rng.choice(vocab[label])])

    def other(label: str) -> str:
        return rng.choice([lab for lab in INTENTS if lab != label])

    examples, flipped, spoiled = [], set(), set()
    n_flip = round(n_prod * LABEL_NOISE)
    for i in range(n_prod):
        label = INTENTS[i % len(INTENTS)]
        ex = Example(text=message(label), label=label, id=f"p{i}")
        if i % 7 == 0:
            ex.secondary_intents = ["chitchat"]
        if i < n_flip:  # labels are cycled, so the flips spread over all classes
            ex.label = other(label)
            flipped.add(ex.id)
        examples.append(ex)
    spoilers = [
        lambda t, lab: (t + " {product_name}", lab),
        lambda t, lab: (t + " " + rng.choice(vocab[lab])[:3], lab),  # cut mid-word
        lambda t, lab: ("hola quiero el pedido por favor donde esta mi libro", lab),
        lambda t, lab: (t + " " + t, lab),
        lambda t, lab: (t, other(lab)),  # wrong label
    ]
    n_spoil = round(n_syn * SYNTHETIC_LOW_QUALITY)
    for i in range(n_syn):
        label = INTENTS[i % len(INTENTS)]
        text = message(label)
        if i < n_spoil:
            text, label = spoilers[i % len(spoilers)](text, label)
            spoiled.add(f"s{i}")
        examples.append(Example(text=text, label=label, id=f"s{i}", source="synthetic"))
    rng.shuffle(examples)
    return examples, flipped, spoiled


@pytest.fixture(scope="module")
def audited() -> tuple[AuditReport, set[str], set[str]]:
    examples, flipped, spoiled = _corpus(2000, 500)
    return audit_examples(examples, verbose=False), flipped, spoiled


def test_label_noise_estimate_near_injected(audited) -> None:
    report, flipped, _ = audited
    assert abs(report.figures["label_noise_est"] - LABEL_NOISE) < 0.02
    assert abs(report.figures["production_suspect_rate"] - LABEL_NOISE) < 0.02
    suspects = {s["id"] for s in report.suspects if s["source"] == "production"}
    assert len(suspects & flipped) / len(suspects) > 0.8  # most suspects were really flipped
    row = report.suspects[0]
    assert set(row) >= {"id", "given", "suggested", "confidence", "given_prob"}
    assert row["suggested"] != row["given"] and row["confidence"] > row["given_prob"]


def test_synthetic_low_quality_estimate_near_injected(audited) -> None:
    report, _, spoiled = audited
    assert abs(report.figures["synthetic_low_quality_est"] - SYNTHETIC_LOW_QUALITY) < 0.03
    flagged = set(report.flagged_synthetic_ids)
    assert len(flagged & spoiled) / len(flagged) > 0.8
    reasons = report.extra["synthetic_reasons"]
    for reason in ("template_artifact", "truncated", "wrong_language", "repeated_phrase"):
        assert reasons.get(reason, 0) > 0, reason


def test_other_figures_and_decisions(audited) -> None:
    report, _, _ = audited
    f = report.figures
    assert (f["total"], f["production"], f["synthetic"]) == (2500, 2000, 500)
    assert f["multi_intent_field"] == pytest.approx(286 / 2000)  # every 7th production row
    assert f["multi_intent"] == f["multi_intent_field"]
    assert report.decisions["filter_synthetic"]["value"] == "yes"
    assert report.decisions["relabel_review"]["value"] == "yes"
    lines = report.lines()
    assert lines[0].startswith("[DATA_AUDIT] total_examples=2500 production=2000 synthetic=500")
    assert any(line.startswith("[DECISION] filter_synthetic=yes reason=") for line in lines)


def test_audit_file_writes_json_plots_and_lines(tmp_path: Path, capsys) -> None:
    examples, _, _ = _corpus(400, 100, seed=1)
    src = tmp_path / "corpus.jsonl"
    write_examples(examples, src)
    report = audit_file(src, tmp_path / "out", max_length=12, tokenizer=None, verbose=True)
    data = json.loads((tmp_path / "out" / "audit.json").read_text(encoding="utf-8"))
    assert data["config"]["seed"] == 0 and len(data["sha256"]) == 64
    assert data["synthetic_flagged"] and data["suspects"]
    assert {"id", "given", "suggested", "confidence"} <= set(data["suspects"][0])
    for name in ("class_distribution.png", "length_histogram.png", "suspect_confidence.png"):
        assert (tmp_path / "out" / name).stat().st_size > 1000
    out = capsys.readouterr().out
    assert f"[DATA_AUDIT] file=corpus.jsonl sha256={data['sha256'][:12]} total_examples=500" in out
    assert "truncated_at_12=" in out and "[DECISION] relabel_review=" in out
    assert 0 < report.figures["truncated"] < 1
    # the audit's ids feed clean() directly
    _kept, counts = clean(examples, report.flagged_synthetic_ids, verbose=False)
    assert counts["dropped_synthetic"] == len(report.flagged_synthetic_ids)


def test_duplicate_and_contradiction_figures() -> None:
    examples, _, _ = _corpus(200, 0, seed=4)
    for i, ex in enumerate(examples):
        ex.user_id = f"u{i}"
    first, second = examples[0], examples[1]
    examples += [
        Example(first.text.upper() + "!!", first.label, user_id=first.user_id),  # a re-send
        Example(second.text, second.label, user_id="someone else"),  # same words, new sender
        Example(second.text, "label_b", user_id="a third"),  # 2 vs 1: the majority stays
    ]
    f = audit_examples(examples, {"cv_folds": 2}, verbose=False).figures
    n = len(examples)
    assert f["duplicate_rate"] == pytest.approx(1 / n)
    assert f["exact_duplicate_rate"] == pytest.approx(2 / n)
    assert f["near_duplicate_rate"] == pytest.approx(3 / n)
    assert (f["contradictory_examples"], f["contradictory_dropped"]) == (3, 1)


def test_class_too_small_to_cross_validate_is_not_judged() -> None:
    examples, _, _ = _corpus(300, 0, seed=5)
    examples += [Example(f"rare thing {i}", "rare_class", id=f"r{i}") for i in range(3)]
    report = audit_examples(examples, verbose=False)  # 5 folds, 3 examples
    assert not any(s["given"] == "rare_class" for s in report.suspects)
    assert report.extra["thresholds"]["rare_class"] is None
    json.dumps(report.to_dict(), allow_nan=False)  # strict JSON: no Infinity


def test_deterministic_for_a_seed() -> None:
    examples, _, _ = _corpus(300, 60, seed=2)
    first = audit_examples(examples, verbose=False)
    again = audit_examples(examples, {"seed": 0}, verbose=False)
    assert first.suspects == again.suspects and first.figures == again.figures


def test_tokenizer_lengths_are_used() -> None:
    class Fake:  # a tokenizer that gives 200 ids per text: everything is truncated at 128
        def __call__(self, texts, **kwargs):
            return {"input_ids": [[0] * 200 for _ in texts]}

    examples, _, _ = _corpus(100, 0, seed=3)
    report = audit_examples(examples, {"cv_folds": 2}, tokenizer=Fake(), verbose=False)
    assert report.figures["truncated"] == 1.0 and report.tokenizer == "Fake"


def test_truncation_counts_messages_over_max_length_and_their_excess() -> None:
    class ByWords:  # one token per word plus [CLS]/[SEP]
        def __call__(self, texts, **kwargs):
            return {"input_ids": [[0] * (len(t.split()) + 2) for t in texts]}

    examples, _, _ = _corpus(100, 0, seed=3)
    # Four messages over a budget of 12 tokens: 13, 14, 16 and 32 tokens, so 1, 2, 4 and 20
    # tokens are cut off; p50 of (1, 2, 4, 20) = 3.0, p95 = 4 + 0.85 x 16 = 17.6 (linear).
    for i, words in enumerate((11, 12, 14, 30)):
        examples[i].text = " ".join(["order"] * words)
    short = [ex for ex in examples if len(ex.text.split()) + 2 <= 12]
    assert len(short) == len(examples) - 4  # the fixture's own messages fit in 12 tokens
    report = audit_examples(examples, {"cv_folds": 2}, 12, tokenizer=ByWords(), verbose=False)
    over = report.token_lengths["over_max_length"]
    assert over == {
        "max_length": 12,
        "count": 4,
        "share": 4 / len(examples),
        "excess_p50": 3.0,
        "excess_p95": pytest.approx(17.6),
        "excess_max": 20,
    }
    assert report.figures["truncated"] == pytest.approx(4 / len(examples))
    line = next(x for x in report.lines() if x.startswith("[DATA_AUDIT] truncation "))
    assert line == (
        f"[DATA_AUDIT] truncation max_length=12 over=4 share={4 / len(examples):.1%} "
        "excess_tokens_p50=3 excess_tokens_p95=17.6 excess_tokens_max=20 tokenizer=ByWords"
    )
    # Nothing over the budget: the excess is None, not 0 (no message lost a token).
    none = audit_examples(examples[4:], {"cv_folds": 2}, 12, tokenizer=ByWords(), verbose=False)
    assert none.token_lengths["over_max_length"]["count"] == 0
    assert none.token_lengths["over_max_length"]["excess_max"] is None
    json.dumps(report.to_dict(), allow_nan=False)


def test_defaults_match_the_config_file() -> None:
    conf = yaml.safe_load((ROOT / "conf" / "audit" / "default.yaml").read_text())
    assert conf == DEFAULTS


def test_unknown_config_key_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown key 'label_noise'"):
        audit_examples([Example("hi", "chitchat")], {"label_noise": 0.1})


@pytest.mark.parametrize(
    ("text", "mixed"),
    [
        ("この漫画の在庫ありますか", True),
        ("注文まだ届かない", True),
        ("kono manga no zaiko aru?", True),
        ("osusume manga onegai", True),
        ("kessai ga dekinai", True),  # particle + verb ending
        ("henpin shitai kedo, souryou wa kakarimasu ka", True),
        ("yo is kaiju no 8 done or nah", False),  # a title's "no" alone is not mixing
        ("is vol 12 of one piece in stock", False),
        ("anything like naruto but darker", False),
    ],
)
def test_jp_en_mixed(text: str, mixed: bool) -> None:
    assert is_jp_en_mixed(text) is mixed


@pytest.mark.parametrize(
    ("text", "multi"),
    [
        ("thanks! also where's my package", True),
        ("any sales? btw something like naruto", True),
        ("hi, where is my order from last week", True),
        ("refund + cancel the rest", True),
        ("how much is vol 1 and is there a coupon for it", True),
        ("こんにちは、注文した本がまだ届いていません", True),
        ("top 3 basketball manga. ty ty!!", True),  # thanks after an ask
        ("where is my order", False),
        ("hi!", False),
        ("thanks so much", False),
    ],
)
def test_multi_intent_cues(text: str, multi: bool) -> None:
    assert has_multi_intent_cue(text) is multi


def test_text_heuristics() -> None:
    assert foreign_language("hola quiero el pedido por favor") == "es"
    assert foreign_language("où est ma commande s'il vous plaît") == "fr"
    assert foreign_language("wo ist meine bestellung bitte") == "de"
    assert foreign_language("kono manga no zaiko aru? where is my order") is None
    assert foreign_language("is the berserk deluxe edition in stock") is None
    assert has_repeated_phrase("where is my order where is my order")
    assert has_repeated_phrase("pls pls pls help")
    assert not has_repeated_phrase("where is my order and my refund")
    assert foreign_language("Lohnt sich Gantz?") == "de"  # short, no English function word
    assert foreign_language("¿Cuántos tomos tiene Magi?") == "es"
    assert has_repeated_phrase("do you ship to PO to PO boxes?")
    assert approx_token_count("where is my order?") == 9  # 5 pieces x 1.3 -> 7, + 2 specials


@pytest.mark.parametrize(
    "text",
    [
        "User query: where is my order?",
        "Sure! Here is a customer message: any sales this weekend?",
        "Is {title} volume 3 in stock?",
        "I received the wrong item. <|endoftext|>",
        "[return_request] I want a refund.",
    ],
)
def test_template_artifacts(text: str) -> None:
    checks = TextChecks([Example(text, "faq")])
    assert "template_artifact" in checks.issues(Example(text, "faq"))


def test_truncation_learns_the_source_style() -> None:
    # A generator that ends every sentence with punctuation: a text without is cut off.
    rows = [
        Example(f"Is volume {i} of Berserk in stock?", "product_question", source="synthetic")
        for i in range(30)
    ]
    rows += [Example("where is my order", "order_tracking") for _ in range(30)]
    checks = TextChecks(rows)
    assert checks.truncated("Is volume 3 of Berserk in st", source="synthetic")
    assert checks.truncated("Is volume 3 of Berserk in", source="synthetic")
    assert not checks.truncated("Is volume 3 of Berserk in stock?", source="synthetic")
    assert not checks.truncated("kono manga no zaiko aru", source="synthetic")  # romaji exempt
    # Chat logs rarely punctuate: only a cut inside a known word counts.
    assert not checks.truncated("where is my order", source="production")
    assert checks.truncated("where is my ord", source="production")
    assert checks.truncated("where is my order and the", source="production")


def _audit_cli(tmp_path: Path, examples: list[Example], *flags: str) -> tuple[int, Path]:
    from mangaassist.cli import main

    src = tmp_path / "corpus.jsonl"
    write_examples(examples, src)
    out = tmp_path / "audit"
    return main(["data", "audit", str(src), "--out", str(out), *flags]), out


def _noisy(flip_share: float) -> list[Example]:
    """Production examples with only ``flip_share`` of their labels wrong."""
    examples, flipped, _ = _corpus(600, 0, seed=7)
    examples = [ex for ex in examples if ex.id not in flipped]
    for ex in examples[: round(flip_share * len(examples))]:
        ex.label = INTENTS[(INTENTS.index(ex.label) + 1) % len(INTENTS)]
    return examples


def test_audit_command_exits_1_while_label_noise_blocks(tmp_path: Path, capsys) -> None:
    status, out = _audit_cli(tmp_path, _noisy(0.15))
    log = capsys.readouterr().out
    assert status == 1
    assert "[DECISION] relabel_review=yes" in log and "blocking=yes" in log
    blocked = [line for line in log.splitlines() if line.startswith("[DECISION] blocked=")]
    assert blocked == [
        f'[DECISION] blocked=yes by=relabel_review reason="too many wrong labels to train on as '
        f'is: relabel {out / "label_suspects.csv"} (fill in new_label)" '
        'then="exit 1; --no-fail to go on anyway"'
    ]
    # The suspects open in a spreadsheet (UTF-8 with BOM), one row each, ready to relabel.
    with (out / "label_suspects.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    report = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert len(rows) == len(report["suspects"]) > 0
    assert list(rows[0]) == [
        "line", "id", "source", "text", "given", "suggested", "confidence", "given_prob",
        "new_label",
    ]  # fmt: skip
    first = report["suspects"][0]
    assert (rows[0]["id"], rows[0]["given"], rows[0]["suggested"], rows[0]["new_label"]) == (
        first["id"],
        first["given"],
        first["suggested"],
        "",
    )

    status, _ = _audit_cli(tmp_path, _noisy(0.15), "--no-fail")
    assert status == 0 and 'then="exit 0 (--no-fail)"' in capsys.readouterr().out


def test_audit_command_exits_0_when_nothing_blocks(tmp_path: Path, capsys) -> None:
    status, out = _audit_cli(tmp_path, _noisy(0.0))
    log = capsys.readouterr().out
    assert status == 0 and "blocking=no" in log and "blocked=" not in log
    assert (out / "label_suspects.csv").exists()
