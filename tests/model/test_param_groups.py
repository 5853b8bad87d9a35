import pytest
from torch import nn

from mangaassist.model.backbone import FAMILIES, load_backbone
from mangaassist.model.param_groups import layerwise_param_groups


@pytest.mark.parametrize("family", FAMILIES)  # bert (BERT/MiniLM/TinyBERT), distilbert, roberta
def test_every_trainable_parameter_in_exactly_one_group(family):
    enc = load_backbone(family, init="tiny")
    head = nn.Linear(32, 10)
    groups = layerwise_param_groups(enc, head, base_lr=2e-5, layer_decay=0.8)
    seen = [id(p) for g in groups for p in g["params"]]
    expected = [id(p) for p in list(enc.parameters()) + list(head.parameters()) if p.requires_grad]
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(expected)


@pytest.mark.parametrize("family", FAMILIES)
def test_lrs_rise_monotonically_to_the_head(family):
    enc = load_backbone(family, init="tiny")  # 2 blocks: layers 0 (emb), 1, 2, head = 3
    groups = layerwise_param_groups(enc, nn.Linear(32, 4), base_lr=2e-5, layer_decay=0.8)
    lrs = [g["lr"] for g in groups]
    assert lrs == sorted(lrs)
    assert lrs[-1] == pytest.approx(2e-5)
    assert lrs[0] == pytest.approx(2e-5 * 0.8**3)  # embeddings: xi^(L - 0), L = 3
    layers = sorted({g["name"][:7] for g in groups})
    assert layers == ["layer00", "layer01", "layer02", "layer03"]


@pytest.mark.parametrize("family", FAMILIES)
def test_no_weight_decay_on_biases_and_layernorm(family):
    enc = load_backbone(family, init="tiny")
    head = nn.Linear(32, 4)
    groups = layerwise_param_groups(enc, head, 1e-4, 0.9, weight_decay=0.01)
    names = {id(p): n for n, p in enc.named_parameters()}
    names |= {id(p): f"head.{n}" for n, p in head.named_parameters()}
    for g in groups:
        for p in g["params"]:
            name = names[id(p)]
            no_decay = name.endswith("bias") or "norm" in name.lower()
            assert g["weight_decay"] == (0.0 if no_decay else 0.01), name


def test_embeddings_and_blocks_assigned_by_name():
    enc = load_backbone("distilbert", init="tiny")
    groups = layerwise_param_groups(enc, nn.Linear(32, 2), 1.0, 0.5)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    params = dict(enc.named_parameters())
    assert lr_of[id(params["embeddings.word_embeddings.weight"])] == pytest.approx(0.5**3)
    assert lr_of[id(params["transformer.layer.1.ffn.lin1.weight"])] == pytest.approx(0.5)


def test_layer_decay_must_be_in_range():
    with pytest.raises(ValueError, match="layer_decay"):
        layerwise_param_groups(load_backbone("bert", init="tiny"), nn.Linear(32, 2), 1e-4, 1.5)
