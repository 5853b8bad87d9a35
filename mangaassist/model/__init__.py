"""Model stage: backbones, losses, layer-wise LR param groups, metrics, the LightningModule."""

from mangaassist.model.backbone import load_backbone, load_tokenizer
from mangaassist.model.losses import FocalLoss, class_weights
from mangaassist.model.metrics import ClassificationMetrics, rare_class_indices
from mangaassist.model.module import IntentClassifier
from mangaassist.model.param_groups import layerwise_param_groups

__all__ = [
    "ClassificationMetrics",
    "FocalLoss",
    "IntentClassifier",
    "class_weights",
    "layerwise_param_groups",
    "load_backbone",
    "load_tokenizer",
    "rare_class_indices",
]
