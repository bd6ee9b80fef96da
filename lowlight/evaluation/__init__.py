"""Evaluation (notebook 07): how mattes are scored, under which exposures, against which target,
and how two models are compared honestly. Figures live in :mod:`lowlight.viz.evaluation`.

============  ======================================================================
module        concept
============  ======================================================================
protocol      8-bit mattes, the DIM metrics by split and exposure bin, the article's §6 numbers
exposure      the exposure grid (clean, EV 0 ... -7), whole-image errors, paired bootstrap
switch        the brightness switch of §7: threshold on validation, scored on test (the module
              itself: ``lowlight.inference.BrightnessSwitch``)
runs          which checkpoint each row needs, the test items, results on disk
report        text tables
============  ======================================================================
"""
from .exposure import (ALL_METRICS, CLEAN, EVS, darken, grid_change, grid_means, paired_bootstrap, phone,
                       score_grid, whole_image_errors)
from .protocol import (ARTICLE, EV_BINS, METRIC_LABELS, METRICS, ROW_LABELS, ROWS, SCENARIOS, evaluate,
                       pick_scenario, quantize_alpha, row_label, trimap_to_uint8, verdict)
from .runs import FINETUNED, checkpoint_path, llmatte_items, load_llie, load_row, photo_items, row_key, run_grid
from .switch import choose_threshold, run_switch, switch_table

__all__ = [
    "ALL_METRICS", "CLEAN", "EVS", "darken", "phone", "grid_change", "grid_means", "paired_bootstrap", "score_grid",
    "whole_image_errors", "ARTICLE", "EV_BINS", "METRIC_LABELS", "METRICS", "ROW_LABELS", "ROWS", "SCENARIOS",
    "evaluate", "pick_scenario", "quantize_alpha", "row_label", "trimap_to_uint8",
    "verdict", "FINETUNED", "checkpoint_path", "llmatte_items", "load_llie", "load_row", "photo_items", "row_key",
    "run_grid", "choose_threshold", "run_switch", "switch_table",
]
