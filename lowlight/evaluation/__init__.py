"""Evaluation (notebook 07): how mattes are scored, under which exposures, against which target,
and how two models are compared honestly. Figures live in :mod:`lowlight.viz.evaluation`.

==============  ====================================================================
module          concept
==============  ====================================================================
protocol        8-bit mattes, the DIM metrics by split and exposure bin, the article's §6 numbers
exposure        the exposure grid (clean, EV 0 ... -7), whole-image errors, clustered bootstrap
stats           changes between models with intervals that resample images (each with all its
                exposures) and training seeds; per-seed medians; difference in differences
switch          the brightness switch of §7: threshold on validation, scored on test (the module
                itself: ``lowlight.inference.BrightnessSwitch``)
heldout_camera  a second camera for evaluation only (RGGB mosaic, Poisson + read + row noise,
                10-bit ADC, OpenCV demosaic, gamma 2.2 with a shoulder, JPEG 55), written apart from
                ``lowlight.simulate``: the degradation is held out along with the content
people          per-photo evidence on real people: the original's daylight matte as the target,
                the hand-drawn outlines, two cameras (the simulator, the held-out one), the daylight
                drift guard
runs            which checkpoint each row needs, the test items, results on disk
report          text tables
==============  ====================================================================
"""
from .exposure import (ALL_METRICS, CLEAN, EVS, darken, grid_change, grid_means, paired_bootstrap, phone,
                       score_grid, whole_image_errors)
from .heldout_camera import HELDOUT_EVS, HeldOutCameraParams
from .heldout_camera import render as heldout_render
from .people import (HELDOUT_CAMERA_EVS, SIM_EVS, daylight_drift_guard, format_people_table, people_bar,
                     people_did, people_examples, people_table, score_people)
from .protocol import (ARTICLE, EV_BINS, METRIC_LABELS, METRICS, ROW_LABELS, ROWS, SCENARIOS, evaluate,
                       pick_scenario, quantize_alpha, row_label, trimap_to_uint8, verdict)
from .runs import FINETUNED, checkpoint_path, llmatte_items, load_llie, load_row, photo_items, row_key, run_grid
from .stats import (MIN_IMAGES, STATISTICS, Change, ErrorTable, clustered_bootstrap, difference_in_differences,
                    error_table, per_seed_medians)
from .switch import choose_threshold, run_switch, switch_table

__all__ = [
    "ALL_METRICS", "CLEAN", "EVS", "darken", "phone", "grid_change", "grid_means", "paired_bootstrap", "score_grid",
    "whole_image_errors", "ARTICLE", "EV_BINS", "METRIC_LABELS", "METRICS", "ROW_LABELS", "ROWS", "SCENARIOS",
    "evaluate", "pick_scenario", "quantize_alpha", "row_label", "trimap_to_uint8",
    "verdict", "FINETUNED", "checkpoint_path", "llmatte_items", "load_llie", "load_row", "photo_items", "row_key",
    "run_grid", "choose_threshold", "run_switch", "switch_table", "HELDOUT_EVS", "HeldOutCameraParams",
    "heldout_render", "HELDOUT_CAMERA_EVS", "SIM_EVS", "daylight_drift_guard", "format_people_table",
    "people_examples", "people_table", "people_did", "people_bar", "score_people",
    "MIN_IMAGES", "STATISTICS", "Change", "ErrorTable", "clustered_bootstrap", "difference_in_differences",
    "error_table", "per_seed_medians",
]
