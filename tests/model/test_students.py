"""Layer-reduced students: which layers a rule keeps, the module built, its param groups."""

import doctest
import itertools

import pytest
import torch
from hydra.utils import instantiate
from torch import nn
from transformers import AutoConfig, AutoModel

from mangaassist.errors import UserError
from mangaassist.model import students
from mangaassist.model.backbone import load_backbone, load_tokenizer
from mangaassist.model.module import IntentClassifier
from mangaassist.model.param_groups import layerwise_param_groups
from mangaassist.model.students import (
    RULES,
    make_student,
    resolve_keep_layers,
    rule_layers,
    select_layers,
)
from mangaassist.training.config_schema import STUDENT_RULES, validate_train_config
from tests.conftest import compose_cfg

# Every rule at every depth of the 6-layer all-MiniLM-L6-v2, written out by hand.
EXPECTED = {
    "bottom": {1: [0], 2: [0, 1], 3: [0, 1, 2], 4: [0, 1, 2, 3], 5: [0, 1, 2, 3, 4]},
    "top": {1: [5], 2: [4, 5], 3: [3, 4, 5], 4: [2, 3, 4, 5], 5: [1, 2, 3, 4, 5]},
    "alternate": {1: [0], 2: [0, 2], 3: [0, 2, 4], 4: [0, 2, 4, 5], 5: [0, 2, 3, 4, 5]},
    "spread": {1: [5], 2: [0, 5], 3: [0, 2, 5], 4: [0, 2, 3, 5], 5: [0, 1, 2, 4, 5]},
}
# Every kept-layer list the tests build: all non-empty increasing subsets of 6 layers (63).
ALL_LISTS = [list(c) for k in range(1, 7) for c in itertools.combinations(range(6), k)]
_SHAPES = {
    "bert": dict(hidden_size=32, num_attention_heads=2, intermediate_size=64),
    "roberta": dict(
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=64,
        pad_token_id=0,
        max_position_embeddings=40,
    ),
    "distilbert": dict(dim=32, n_heads=2, hidden_dim=64),
}


def six_layer(family: str = "bert", seed: int = 0) -> nn.Module:
    """A random 6-layer, 32-wide encoder built from a config (no network, no files)."""
    torch.manual_seed(seed)
    config = AutoConfig.for_model(family, vocab_size=100, **_SHAPES[family])
    config.num_hidden_layers = 6  # DistilBERT maps it to n_layers
    return AutoModel.from_config(config)


def blocks(encoder: nn.Module) -> nn.ModuleList:
    return encoder.transformer.layer if hasattr(encoder, "transformer") else encoder.encoder.layer


def test_doctest():
    assert doctest.testmod(students).failed == 0


@pytest.mark.parametrize("rule", RULES)
def test_rules_keep_the_listed_layers(rule):
    for k, keep in EXPECTED[rule].items():
        assert rule_layers(rule, 6, k) == keep
    assert rule_layers(rule, 6, 6) == list(range(6))  # keeping all is the source


def test_config_schema_knows_the_same_rules():
    assert tuple(STUDENT_RULES) == RULES


@pytest.mark.parametrize(
    ("keep", "num", "message"),
    [
        ("middle", 3, "is not a rule"),
        ("bottom", None, "needs model.num_layers"),
        ("bottom", 7, "1 to 6"),
        ([0, 1, 2], 4, r"keeps 3 layers but model\.num_layers=4"),
        ([0, 6], None, r"block\(s\) \[6\] do not exist"),
        ([2, 1], None, "strictly increasing"),
        ([1, 1], None, "strictly increasing"),
        ([], None, "keeps no layer"),
    ],
)
def test_bad_keep_layers_name_the_key(keep, num, message):
    with pytest.raises(UserError, match=message):
        resolve_keep_layers(keep, num, 6)


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert"])
def test_kept_layers_carry_the_source_weights(family):
    source = six_layer(family)
    for keep in ([0, 2, 4, 5], [0, 2, 4], [0, 5], [3]):
        student = select_layers(source, keep)
        assert student.config.num_hidden_layers == len(keep) == len(blocks(student))
        assert student.config.kept_layers == keep and student.config.source_layers == 6
        for i, k in enumerate(keep):  # student block i is source block keep[i], tensor by tensor
            mine, theirs = blocks(student)[i].state_dict(), blocks(source)[k].state_dict()
            assert mine.keys() == theirs.keys()
            assert all(torch.equal(mine[n], theirs[n]) for n in mine)
        emb_s, emb_t = student.embeddings.state_dict(), source.embeddings.state_dict()
        assert all(torch.equal(emb_s[n], emb_t[n]) for n in emb_s)
        # Different tensors, not views: fine-tuning the student leaves the source alone.
        mine = next(blocks(student)[0].parameters())
        assert mine.data_ptr() != next(blocks(source)[keep[0]].parameters()).data_ptr()
        ids = torch.randint(5, 100, (2, 7))
        hidden = student(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        assert hidden.shape == (2, 7, 32)


def test_a_student_of_all_layers_computes_what_the_source_does():
    source = six_layer().eval()
    student = select_layers(source, range(6)).eval()
    ids = torch.randint(5, 100, (3, 9))
    mask = torch.ones_like(ids)
    torch.testing.assert_close(
        student(input_ids=ids, attention_mask=mask).last_hidden_state,
        source(input_ids=ids, attention_mask=mask).last_hidden_state,
    )


def test_each_block_knows_its_new_index():
    student = select_layers(six_layer(), [1, 3, 5])
    assert [b.attention.self.layer_idx for b in student.encoder.layer] == [0, 1, 2]


@pytest.mark.parametrize("keep", ALL_LISTS, ids=lambda k: "".join(map(str, k)))
def test_param_groups_for_every_kept_layer_list(keep):
    student = select_layers(six_layer(), keep)
    head = nn.Linear(32, 10)
    groups = layerwise_param_groups(student, head, base_lr=1e-3, layer_decay=0.5)
    k, top = len(keep), len(keep) + 1  # head layer L = k + 1
    # Every trainable parameter in exactly one group.
    seen = [id(p) for g in groups for p in g["params"]]
    expected = [id(p) for p in [*student.parameters(), *head.parameters()] if p.requires_grad]
    assert len(seen) == len(set(seen)) and sorted(seen) == sorted(expected)
    assert sorted({g["name"][:7] for g in groups}) == [f"layer{i:02d}" for i in range(top + 1)]
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    params = dict(student.named_parameters())
    assert lr_of[id(params["embeddings.word_embeddings.weight"])] == pytest.approx(1e-3 * 0.5**top)
    for i in range(k):  # student block i (source block keep[i]) is layer i + 1
        weight = params[f"encoder.layer.{i}.attention.self.query.weight"]
        assert lr_of[id(weight)] == pytest.approx(1e-3 * 0.5 ** (top - i - 1))
    assert lr_of[id(head.weight)] == pytest.approx(1e-3)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("k", [2, 3, 4])
def test_a_rule_and_its_list_build_the_same_student(rule, k):
    by_rule = select_layers(six_layer(), resolve_keep_layers(rule, k, 6))
    by_list = select_layers(six_layer(), EXPECTED[rule][k])
    a, b = by_rule.state_dict(), by_list.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


@pytest.fixture
def six_layer_folder(tmp_path):
    """A 6-layer tiny BERT saved like a downloaded model (weights + MiniLM tokenizer)."""
    config = AutoConfig.for_model(
        "bert", vocab_size=len(load_tokenizer(None)), num_hidden_layers=6, **_SHAPES["bert"]
    )
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(tmp_path / "six")
    load_tokenizer(None).save_pretrained(tmp_path / "six")
    return tmp_path / "six"


def test_load_backbone_cuts_a_pretrained_folder_and_reloads_from_its_config(
    six_layer_folder, tmp_path
):
    full = load_backbone("bert", str(six_layer_folder))
    cut = load_backbone("bert", str(six_layer_folder), keep_layers=[0, 2, 4])
    assert cut.pooler is None and len(cut.encoder.layer) == 3
    for i, k in enumerate([0, 2, 4]):
        mine, theirs = cut.encoder.layer[i].state_dict(), full.encoder.layer[k].state_dict()
        assert all(torch.equal(mine[n], theirs[n]) for n in mine)
    # A run directory keeps backbone/config.json; init=config rebuilds the cut architecture.
    cut.config.save_pretrained(tmp_path / "backbone")
    again = load_backbone("bert", str(tmp_path / "backbone"), "config", keep_layers=[0, 2, 4])
    assert len(again.encoder.layer) == 3 and again.config.kept_layers == [0, 2, 4]
    assert (
        load_backbone(
            "bert", str(tmp_path / "backbone"), "config", keep_layers="alternate", num_layers=3
        ).config.num_hidden_layers
        == 3
    )
    with pytest.raises(UserError, match="was cut to source layers"):
        load_backbone("bert", str(tmp_path / "backbone"), "config", keep_layers=[0, 1, 2])
    with pytest.raises(UserError, match="already a 3-layer student"):
        load_backbone("bert", str(tmp_path / "backbone"), "config", keep_layers=[0, 1])


def test_a_tiny_student_is_cut_from_a_six_layer_tiny_model():
    enc = load_backbone("bert", init="tiny", keep_layers="spread", num_layers=3)
    assert enc.config.num_hidden_layers == 3 and enc.config.kept_layers == [0, 2, 5]
    assert enc.config.source_layers == 6
    assert load_backbone("bert", init="tiny").config.num_hidden_layers == 2  # unchanged


def test_make_student_checks_the_source_depth():
    with pytest.raises(UserError, match="do not exist"):
        make_student(six_layer(), [0, 6], None, "pretrained")


@pytest.mark.parametrize(("name", "k"), [("minilm_l4", 4), ("minilm_l3", 3), ("minilm_l2", 2)])
def test_student_configs_compose_and_build(name, k, tmp_path):
    cfg = compose_cfg([f"model={name}", "model.init=tiny"], tmp_path)
    validate_train_config(cfg)
    assert cfg.model.name == name and cfg.model.num_layers == k
    assert len(cfg.model.keep_layers) == k and cfg.model.pooling == "mean"
    assert cfg.model.name_or_path is None  # the packaged MiniLM: loads offline
    net = instantiate(cfg.model, num_labels=10, _convert_="all")
    assert isinstance(net, IntentClassifier) and len(net.encoder.encoder.layer) == k
    assert net.encoder.config.kept_layers == list(cfg.model.keep_layers)
    # A rule on the command line replaces the list.
    cfg = compose_cfg([f"model={name}", "model.init=tiny", "model.keep_layers=bottom"], tmp_path)
    validate_train_config(cfg)
    net = instantiate(cfg.model, num_labels=10, _convert_="all")
    assert net.encoder.config.kept_layers == list(range(k))


def test_schema_refuses_an_unknown_rule(tmp_path):
    cfg = compose_cfg(["model=minilm_l3", "model.keep_layers=middle"], tmp_path)
    with pytest.raises(UserError, match=r"^model\.keep_layers=middle is not allowed: use"):
        validate_train_config(cfg)


@pytest.mark.parametrize(
    ("name", "weights"),
    [
        ("distilbert", "distilbert-base-uncased"),
        ("tinybert", "huawei-noah/TinyBERT_General_4L_312D"),
        ("roberta_base", "roberta-base"),
    ],
)
def test_hub_candidates_fail_fast_naming_the_weights_and_key(name, weights, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    cfg = compose_cfg([f"model={name}"], tmp_path)
    assert cfg.model.name_or_path == weights and cfg.model.allow_download is False
    with pytest.raises(UserError) as err:
        load_backbone(cfg.model.family, cfg.model.name_or_path, cfg.model.init)
    msg = str(err.value)
    assert weights in msg and "model.name_or_path" in msg and "model.allow_download=true" in msg


@pytest.mark.slow
@pytest.mark.parametrize("k", [2, 3, 4])
def test_real_minilm_students(k):
    full = load_backbone("bert")
    cut = load_backbone("bert", keep_layers="alternate", num_layers=k)
    keep = rule_layers("alternate", 6, k)
    for i, src in enumerate(keep):
        mine, theirs = cut.encoder.layer[i].state_dict(), full.encoder.layer[src].state_dict()
        assert all(torch.equal(mine[n], theirs[n]) for n in mine)
