"""The bundle's own documentation: its README.md and the rules recorded in its manifest.

A service written from the bundle alone (another language, another team) must normalise,
tokenize, apply the temperature and route exactly as training and evaluation did; the
manifest records each rule as data and the README says it in words, with an example call.
"""

from __future__ import annotations

from mangaassist.data.truncation import Truncation
from mangaassist.inference.policy import FALLBACK_ROUTE, REASONS, ROUTES, Calibration

# What mangaassist.data.normalize.normalize_text does, step by step, before tokenizing.
NORMALIZATION = {
    "function": "mangaassist.data.normalize.normalize_text",
    "steps": [
        "remove zero-width characters U+200B U+200C U+200D U+2060 U+FEFF",
        "Unicode NFKC (full-width to ASCII, compatibility forms folded)",
        "collapse every whitespace run to one space and strip both ends",
        "shorten runs of 4+ of one punctuation or math/modifier symbol to 3",
        "repeat until nothing changes (idempotent)",
    ],
    "case": "kept (the tokenizer lower-cases)",
}


def routing_rule(calib: Calibration) -> dict:
    """The fallback and routing rule as data, for the manifest."""
    return {
        "rule": (
            "p = softmax(logits / temperature); intent = argmax p; "
            "fallback (low_confidence) if p[intent] < thresholds[intent]; "
            "else clarify (ambiguous) if p[intent] - second highest p < margin; "
            "else route to routes[intent]"
        ),
        "reasons": dict(REASONS),
        "global_threshold": calib.global_threshold,
        "margin": calib.margin,
        "thresholds": dict(calib.thresholds),
        "routes": dict(ROUTES),
        "fallback_route": FALLBACK_ROUTE,
    }


# What the bundle's text_preprocess adds after normalisation (mangaassist.data.transliterate).
TEXT_PREPROCESS_STEPS = {
    "none": "",
    "romaji": (
        "\n\nThen write Japanese script in Hepburn romaji (`text_preprocess: romaji` in "
        "`manifest.json`): `mangaassist.data.transliterate.normalize_romaji` (pykakasi 2.3.0 "
        "readings, long vowels as typed: 注文 -> chuumon, セール -> seeru; no macrons), and "
        "normalise once more. Without this step the model sees kana and kanji it never saw "
        "in training."
    ),
}
PREPROCESS_FUNCTIONS = {"none": "normalize_text", "romaji": "normalize_romaji"}


def bundle_readme(
    version: str,
    labels: list[str],
    calib: Calibration,
    max_length: int,
    int8: dict | None,
    text_preprocess: str = "none",
    *,
    secondary: dict | None = None,
    truncation: Truncation | None = None,
) -> str:
    """README.md of a bundle: inputs, normalisation, temperature, fallback rule, an example.

    ``secondary``: the manifest's ``secondary`` entry of a model with that head (a section on
    reading ``secondary_logits``); None: no such output, no section.
    """
    steps = "\n".join(f"{i}. {s}" for i, s in enumerate(NORMALIZATION["steps"], 1))
    steps += TEXT_PREPROCESS_STEPS[text_preprocess]
    func = PREPROCESS_FUNCTIONS[text_preprocess]
    module = "transliterate" if text_preprocess == "romaji" else "normalize"
    thresholds = "\n".join(
        f"| {lb} | {calib.thresholds.get(lb, calib.global_threshold):.3f} | {ROUTES.get(lb, lb)} |"
        for lb in labels
    )
    quant = "fp32 only (`model.onnx`)."
    if int8 is not None:
        verdict = "kept as `model.int8.onnx`" if int8["accepted"] else "refused, not written"
        quant = (
            f"int8 {verdict}: top-1 agreement with fp32 {100 * int8['agreement']:.2f}% and "
            f"macro F1 {int8['macro_f1_int8']:.2f} vs {int8['macro_f1_fp32']:.2f} on "
            f"{int8['n']} messages of {int8['source']}."
        )
        if "secondary_agreement" in int8:
            quant += (
                f" Same secondary intents as fp32 on {100 * int8['secondary_agreement']:.2f}%"
                " of them."
            )
    outputs, second = f"output `logits`, float32 (batch, {len(labels)})", ""
    if secondary is not None:
        outputs = (
            "outputs `logits` and `secondary_logits` (see Secondary intents), float32 "
            f"(batch, {len(labels)}) each"
        )
        second = _secondary_section(secondary, labels, calib.temperature)
    cut_words, cut_setup, cut_code = _truncation_steps(truncation or Truncation(), max_length)
    return f"""# Model bundle `{version}`

Everything needed to answer with this intent classifier; `manifest.json` holds the sha256 of
each file and the same rules as data. Serve it with `mangaassist serve <this folder>`.

## Inputs and outputs
`model.onnx` (ONNX opset 17): `input_ids` and `attention_mask`, int64, shape (batch, tokens);
{outputs}, in the order of `labels.json`. {quant}

## Before the model
Normalise each message (`{NORMALIZATION["function"]}`):

{steps}

{cut_words}
batch to its own longest message (pad id 0, attention_mask 0 there): padding every message to
128 tokens gives the same answer ~5x slower.

## After the model
`p = softmax(logits / T)` with T = {calib.temperature:.4f} (`calibration.json`). The intent is
`argmax p`. Fall back (reason `low_confidence`) if `p[intent]` is below the intent's
threshold; otherwise ask the user to clarify (reason `ambiguous`) if the top two differ by
less than the margin {calib.margin:g}; otherwise route:

| intent | threshold | route |
|---|---|---|
{thresholds}

A message that is not routed goes to `{FALLBACK_ROUTE}`.

## Example
```python
import json, numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
from mangaassist.data.{module} import {func}  # or the steps above
tok = Tokenizer.from_file("tokenizer/tokenizer.json")
{cut_setup}
ids = tok.encode({func}("where is my order??")).ids{cut_code}
x = {{"input_ids": np.array([ids]), "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}}
z = ort.InferenceSession("model.onnx").run(["logits"], x)[0][0] / {calib.temperature:.4f}
p = np.exp(z - z.max()); p /= p.sum()
print(json.load(open("labels.json"))[int(p.argmax())], p.max())
```
{second}"""


def _truncation_steps(trunc: Truncation, max_length: int) -> tuple[str, str, str]:
    """(the README's words, the example's tokenizer set-up, the example's cut) for ``trunc``."""
    tokenize = "Then tokenize with `tokenizer/tokenizer.json` (the `tokenizers` library),"
    pad = "Turn off the file's fixed padding and pad each"
    if trunc.by_tokenizer:  # first: the tokenizer's own truncation
        words = f"{tokenize} truncating to\n{max_length} tokens including [CLS] and [SEP]. {pad}"
        return words, f"tok.no_padding(); tok.enable_truncation({max_length})", ""
    head = int(trunc.head_tokens or 0)
    tail = max_length - 2 - head
    words = (
        f"{tokenize} without\ntruncation: a message over {max_length} tokens keeps [CLS], its "
        f"first {head} and last {tail} tokens,\nand [SEP] (`truncation_strategy: head_tail` in "
        f"`manifest.json`, as the model was trained).\n{pad}"
    )
    code = (
        f"\nif len(ids) > {max_length}:  # head_tail: [CLS] + first {head}, last {tail} + [SEP]"
        f"\n    ids = ids[:{1 + head}] + ids[-{tail + 1}:]"
    )
    return words, "tok.no_padding(); tok.no_truncation()", code


def _secondary_section(secondary: dict, labels: list[str], temperature: float) -> str:
    """The README section on ``secondary_logits``: the other intents of a multi-ask message."""
    mask = secondary["mask_primary"]
    except_primary = " other than the intent above" if mask else ""
    skip = " and c != int(z.argmax())" if mask else ""
    return f"""
## Secondary intents
A message that asks two things ("thanks! also where's my package") has one intent and may
have secondary ones. `secondary_logits` (batch, {len(labels)}) is a multi-label head over
the same labels: `q = sigmoid(secondary_logits)`, with no temperature (T = {temperature:.4f}
is the primary head's). The secondary intents are every label with
`q >= {secondary["threshold"]:g}`{except_primary}, ranked by `q`, highest first; often none.
The threshold was chosen on {secondary["chosen_on"] or "the run's settings"}
({secondary["criterion"]}).

```python
sess = ort.InferenceSession("model.onnx")
z, z2 = (out[0] for out in sess.run(["logits", "secondary_logits"], x))
q = 1 / (1 + np.exp(-z2))
labels = json.load(open("labels.json"))
second = [c for c in np.argsort(-q) if q[c] >= {secondary["threshold"]:g}{skip}]
print([(labels[c], float(q[c])) for c in second])
```
"""
