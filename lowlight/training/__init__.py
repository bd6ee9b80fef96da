"""Training: stages as data, the trainer, the article's recipe, the LLIE's pretraining, the CLI
(notebooks 04 and 06). Nothing under :mod:`lowlight.inference`, :mod:`lowlight.predict` or
:mod:`lowlight.evaluation` imports this package.

============  ======================================================================
module        concept
============  ======================================================================
stages        :class:`StageSpec` (with its :class:`LossSpec`), the article's §5.1 table, what each stage
              freezes per model
trainer       :class:`Trainer`: AMP, clipping, checkpoints, resume, DDP
guard         the training guard: non-finite loss, collapse judged against the model's start, weights
              that do not move, batches of constant targets (:class:`CollapseError`, :class:`TrainingWarning`)
resume        what a run folder's checkpoints may be resumed with (profile, model, settings)
lock          one writer per run folder (:func:`run_lock`, :class:`RunFolderLocked`)
data          CV-UNet's datasets; the MODNet fine-tuning set (true alpha, self-distillation); the data
              of each stage (:class:`LLMatteData`, :class:`FinetuneData`)
recipe        the one recipe: :func:`recipe_stages`, :func:`train` (the CLI's run),
              :func:`finetune_modnet` (staged / one-stage / with LLIE, notebook 06)
llie          zero-reference pretraining of the LLIE (notebook 04)
cli           ``python -m lowlight.training``, the article's ``train.py``
============  ======================================================================
"""
from ..data import finetune_llmatte
from .data import (FinetuneData, FinetuneSet, LLMatteData, build_finetune_set, build_photo_finetune_set, make_datasets,
                   scene_crops)
from .recipe import (INPUTS, MODNET_RECIPES, NIGHT, PreviousStageMissing, build_model, finetune_modnet, loader_settings,
                     recipe_stages, train)
from .stages import (ARTICLE_LRS, BASELINE, PRETRAINED_FAMILIES, STAGE_TRAIN, LossSpec, StageSpec, apply_stage_freezing, article_stages,
                     baseline_stage, one_stage, trainable_summary)
from .guard import CollapseError, ConstantTargetsError, TrainingWarning
from .lock import RunFolderLocked, run_lock
from .trainer import StageResult, Trainer

__all__ = [
    "LossSpec", "StageSpec", "STAGE_TRAIN", "PRETRAINED_FAMILIES", "ARTICLE_LRS", "BASELINE", "article_stages", "one_stage",
    "baseline_stage", "apply_stage_freezing", "trainable_summary", "Trainer", "StageResult", "CollapseError",
    "ConstantTargetsError", "TrainingWarning", "RunFolderLocked", "run_lock",
    "make_datasets", "FinetuneSet", "build_finetune_set", "build_photo_finetune_set", "finetune_llmatte", "scene_crops",
    "LLMatteData", "FinetuneData", "INPUTS", "MODNET_RECIPES", "NIGHT", "PreviousStageMissing", "build_model",
    "recipe_stages", "loader_settings", "train", "finetune_modnet",
]
