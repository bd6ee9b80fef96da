"""lowlight — the shared package of the low-light matting course.

Each submodule holds one concept and names the notebook that introduces it:

========================  =====================================================  ========
module                    concept                                                notebook
========================  =====================================================  ========
``lowlight.config``       profiles ``smoke``/``quick``/``full``, paths, device   all
``lowlight.simulate``     the article's formula and a physical low-light model   01
``lowlight.widgets``      the exposure / noise explorer (ipywidgets)             01
``lowlight.viz``          figure helpers, ``save_fig``                           all
``lowlight.reproduce``    papermill runner (``python -m lowlight.reproduce``)    --
========================  =====================================================  ========

Submodules are imported on demand (``from lowlight import simulate``) so that
``import lowlight`` stays cheap and does not pull in torch.
"""

__version__ = "0.1.0"
