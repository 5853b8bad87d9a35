"""data.module.truncation: the token selection on hand-made ids, its checks, its config and audit.

Ids are made by hand: 101 and 102 stand for [CLS] and [SEP], 1, 2, 3, ... for the message's
word pieces in order, so the expected lists can be read off directly.
"""

from __future__ import annotations

import doctest
import json

import pytest

import mangaassist.data.truncation as truncation_module
from mangaassist.data.audit import AuditReport, audit_examples
from mangaassist.data.normalize import normalize_text
from mangaassist.data.schema import read_examples
from mangaassist.data.truncation import DEFAULT_HEAD_TOKENS, Truncation, check_truncation
from mangaassist.errors import UserError
from mangaassist.inference.tokenize import BatchTokenizer, default_tokenizer_file
from mangaassist.training.config_schema import validate_train_config
from tests.conftest import TINY, compose_cfg, write_toy_jsonl

CLS, SEP = 101, 102
HEAD_TAIL = Truncation("head_tail", head_tokens=3)  # max_length 8: 6 word pieces, 3 + 3


def message(n_pieces: int) -> list[int]:
    """[CLS] 1 2 ... n [SEP]: ``n_pieces + 2`` tokens."""
    return [CLS, *range(1, n_pieces + 1), SEP]


@pytest.mark.parametrize(
    ("n_tokens", "expected"),
    [
        (7, [CLS, 1, 2, 3, 4, 5, SEP]),  # max_length - 1: fits, unchanged
        (8, [CLS, 1, 2, 3, 4, 5, 6, SEP]),  # max_length: fits, unchanged
        (9, [CLS, 1, 2, 3, 5, 6, 7, SEP]),  # max_length + 1: piece 4 (the middle) goes
        (40, [CLS, 1, 2, 3, 36, 37, 38, SEP]),  # 38 pieces: the first 3 and the last 3
    ],
)
def test_head_tail_keeps_the_first_and_last_pieces_at_the_edges(n_tokens, expected):
    ids = message(n_tokens - 2)
    assert HEAD_TAIL.keep(ids, max_length=8) == expected


@pytest.mark.parametrize(
    ("n_tokens", "expected"),
    [
        (7, [CLS, 1, 2, 3, 4, 5, SEP]),
        (8, [CLS, 1, 2, 3, 4, 5, 6, SEP]),
        (9, [CLS, 1, 2, 3, 4, 5, 6, SEP]),  # the end goes: piece 7
        (40, [CLS, 1, 2, 3, 4, 5, 6, SEP]),
    ],
)
def test_first_keeps_the_first_pieces(n_tokens, expected):
    assert Truncation().keep(message(n_tokens - 2), max_length=8) == expected


def test_the_head_size_at_its_limits():
    ids = message(38)
    assert Truncation("head_tail", 0).keep(ids, 8) == [CLS, 33, 34, 35, 36, 37, 38, SEP]
    assert Truncation("head_tail", 6).keep(ids, 8) == Truncation().keep(ids, 8)  # all head
    assert Truncation("head_tail", 5).keep(ids, 8) == [CLS, 1, 2, 3, 4, 5, 38, SEP]


def test_keep_returns_a_new_list_and_never_changes_its_input():
    ids = message(5)
    kept = HEAD_TAIL.keep(ids, 8)
    assert kept == ids and kept is not ids
    long = message(20)
    HEAD_TAIL.keep(long, 8)
    assert long == message(20)


def test_check_truncation_defaults_and_old_runs():
    # An old run or bundle has no key: first, as everything truncated before the option.
    assert check_truncation(None, None, 128) == Truncation("first", None)
    assert check_truncation("first", 64, 128) == Truncation("first", None)  # head unused
    assert check_truncation("head_tail", None, 128) == Truncation("head_tail", DEFAULT_HEAD_TOKENS)
    assert check_truncation("head_tail", 126, 128).head_tokens == 126


@pytest.mark.parametrize("bad", ["middle", "HEAD_TAIL", "", 3, True])
def test_an_unknown_strategy_is_refused_naming_the_key_and_the_choices(bad):
    with pytest.raises(UserError) as err:
        check_truncation(bad, 64, 128)
    assert str(err.value).startswith(f"data.module.truncation={bad!r} is not allowed: ")
    assert "use one of first, head_tail" in str(err.value)


@pytest.mark.parametrize("bad", [127, -1, 2.5, "64", True])
def test_a_head_that_does_not_fit_is_refused(bad):
    with pytest.raises(UserError) as err:
        check_truncation("head_tail", bad, 128)
    assert str(err.value).startswith(
        f"data.module.truncation_head_tokens={bad!r} is not allowed with max_length=128: "
        "use a whole number from 0 to 126"
    )


def test_describe_says_what_is_applied():
    assert Truncation().describe(128) == "first 128 tokens, [CLS] and [SEP] included"
    assert check_truncation("head_tail", 64, 128).describe(128) == (
        "head_tail: a message over 128 tokens keeps [CLS], its first 64 and last 62 word "
        "pieces, and [SEP]; a shorter one is kept whole"
    )


def test_the_module_examples_run():
    result = doctest.testmod(truncation_module)
    assert result.attempted > 0 and result.failed == 0


def test_batch_tokenizer_on_the_real_vocabulary():
    """first gives the Hugging Face tokenizer's own truncation; head_tail keeps the ask."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(default_tokenizer_file().parent)
    story = "so last week my sister and i went to the big book fair downtown and " * 4
    text = story + "where is my order"
    full = hf(normalize_text(text))["input_ids"]  # no truncation
    assert len(full) == 15 * 4 + 4 + 2  # one piece a word, [CLS] and [SEP]
    first = BatchTokenizer.from_file(default_tokenizer_file(), 32).encode([text])[0]
    assert first == hf(normalize_text(text), truncation=True, max_length=32)["input_ids"]
    served = BatchTokenizer.from_file(
        default_tokenizer_file(), 32, truncation=Truncation("head_tail", 10)
    ).encode([text, "where is my order"])
    assert served[0] == [*full[:11], *full[-21:]]  # [CLS] + 10, then 20 + [SEP]
    assert hf.decode(served[0][-5:-1]) == "where is my order"  # the ask reaches the model
    assert served[1] == hf("where is my order")["input_ids"]  # a short one is kept whole


def test_the_config_default_is_first_and_bad_values_are_refused(tmp_path):
    cfg = compose_cfg([*TINY, "data=files", "data.train=x.jsonl"], tmp_path)
    assert cfg.data.module.truncation == "first"
    assert cfg.data.module.truncation_head_tokens == 16  # experiment=smoke's, for max_length 32
    # The MangaAssist corpus chose head_tail on validation (experiments/hard_messages).
    ours = compose_cfg(["data=mangaassist"], tmp_path)
    assert ours.data.module.truncation == "head_tail"
    assert ours.data.module.truncation_head_tokens == DEFAULT_HEAD_TOKENS
    bad = compose_cfg(
        [*TINY, "data=files", "data.train=x.jsonl", "data.module.truncation=mid"], tmp_path
    )
    with pytest.raises(
        UserError, match=r"data\.module\.truncation=mid is not allowed: use one of first, head_tail"
    ):
        validate_train_config(bad)
    # smoke's max_length is 32: at most 30 word pieces from the start.
    big = compose_cfg(
        [
            *TINY,
            "data=files",
            "data.train=x.jsonl",
            "data.module.truncation=head_tail",
            "data.module.truncation_head_tokens=31",
        ],
        tmp_path,
    )
    with pytest.raises(
        UserError, match=r"truncation_head_tokens=31 is not allowed with max_length=32"
    ):
        validate_train_config(big)


def test_the_audit_names_the_strategy(tmp_path):
    examples = read_examples(write_toy_jsonl(tmp_path / "toy.jsonl", n_per_class=6))
    first = audit_examples(examples, {"cv_folds": 2}, 12, verbose=False)
    assert "[DATA_AUDIT] truncation_strategy=first max_length=12 cut=end" in first.lines()
    report = audit_examples(
        examples, {"cv_folds": 2}, 12, verbose=False, truncate=Truncation("head_tail", 4)
    )
    assert (
        "[DATA_AUDIT] truncation_strategy=head_tail max_length=12 head_tokens=4 "
        "tail_tokens=6 cut=middle"
    ) in report.lines()
    # It changes no count, and it is kept in audit.json.
    assert report.token_lengths == first.token_lengths
    back = AuditReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert (back.truncation_strategy, back.truncation_head_tokens) == ("head_tail", 4)


def test_the_corpus_audit_names_the_runs_strategy_also_from_its_cache(tmp_path, capsys):
    """data=mangaassist passes data.module.truncation to its audit; a cached report (the
    same corpus and settings) is printed with this run's strategy, not the first run's."""
    from mangaassist.data.sources import mangaassist

    corpus = write_toy_jsonl(tmp_path / "toy.jsonl", n_per_class=6)

    def audit(name: str, **kw) -> str:
        mangaassist(
            path=str(corpus),
            cache_dir=str(tmp_path / "cache"),
            audit={"cv_folds": 2},
            audit_out=str(tmp_path / name),
            max_length=12,
            **kw,
        )
        return capsys.readouterr().out

    log1 = audit("a")
    log2 = audit("b", truncation="head_tail", truncation_head_tokens=4)
    assert "[DATA_AUDIT] truncation_strategy=first max_length=12 cut=end" in log1
    assert "[DATA_AUDIT] cached=" in log2  # the report is reused
    assert (
        "[DATA_AUDIT] truncation_strategy=head_tail max_length=12 head_tokens=4 tail_tokens=6 "
        "cut=middle"
    ) in log2
    saved = json.loads((tmp_path / "b" / "audit.json").read_text(encoding="utf-8"))
    assert saved["truncation_strategy"] == "head_tail" and saved["truncation_head_tokens"] == 4
    with pytest.raises(UserError, match=r"data\.module\.truncation='middle' is not allowed"):
        audit("c", truncation="middle")


def test_the_corpus_config_passes_the_runs_strategy(tmp_path):
    over = ["data.module.truncation=head_tail", "data.module.truncation_head_tokens=5"]
    cfg = compose_cfg(["experiment=smoke", *over], tmp_path)
    assert cfg.data.source.truncation == "head_tail"
    assert cfg.data.source.truncation_head_tokens == 5
