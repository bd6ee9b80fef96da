"""Training: stages as data, the trainer, the article's recipe, the LLIE's pretraining, the CLI
(notebooks 04 and 06). Nothing under :mod:`lowlight.inference`, :mod:`lowlight.predict` or
:mod:`lowlight.evaluation` imports this package.

============  ======================================================================
module        concept
============  ======================================================================
stages        :class:`StageSpec`, the article's §5.1 table, what each stage freezes per model
trainer       :class:`Trainer`: AMP, clipping, checkpoints, resume, collapse guard, DDP
data          CV-UNet's datasets; the MODNet fine-tuning set (true alpha, self-distillation)
recipe        :func:`finetune_modnet` (staged / one-stage / with LLIE), :func:`train_cvunet`
llie          zero-reference pretraining of the LLIE (notebook 04)
cli           ``python -m lowlight.training``, the article's ``train.py``
============  ======================================================================
"""
from ..data import finetune_llmatte
from .data import FinetuneSet, build_finetune_set, make_datasets, scene_crops
from .recipe import INPUTS, MODNET_RECIPES, finetune_modnet, train_cvunet
from .stages import (ARTICLE_LRS, STAGE_TRAIN, StageSpec, apply_stage_freezing, article_stages, baseline_stage,
                     one_stage, trainable_summary)
from .trainer import CollapseError, StageResult, Trainer

__all__ = [
    "StageSpec", "STAGE_TRAIN", "ARTICLE_LRS", "article_stages", "one_stage", "baseline_stage",
    "apply_stage_freezing", "trainable_summary", "Trainer", "StageResult", "CollapseError",
    "make_datasets", "FinetuneSet", "build_finetune_set", "finetune_llmatte", "scene_crops",
    "INPUTS", "MODNET_RECIPES", "finetune_modnet", "train_cvunet",
]
