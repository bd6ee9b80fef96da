"""Profiles, paths and device choice (used by every notebook).

A *profile* is the size of one run of the course:

* ``smoke`` -- CI and nbval: every code path runs, each notebook in about a minute on
  two CPU cores. Numbers are meaningless.
* ``quick`` -- a reader's laptop (CPU): the whole course in about 40 minutes on 2 cores, large
  enough that the article's effects are visible.
* ``full``  -- one GPU: the article's configuration (512x512 crops, batch 16,
  10/20/30 epochs, 200 test images, mixed precision).

A notebook picks its profile from its ``profile`` parameter (papermill injects it);
``None`` means the environment variable ``LOWLIGHT_PROFILE``, else ``quick``. The name is
resolved once, by :func:`get_profile` in the notebook's first cell (or by the command line that
runs), and the :class:`Profile` object is what every library function takes:
``P.data`` (LL-Matte), ``P.training`` (CV-UNet, the LLIE), ``P.finetune`` (MODNet).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

ENV_PROFILE = "LOWLIGHT_PROFILE"
ENV_ROOT = "LOWLIGHT_ROOT"
#: where ``save_fig`` writes when set (the runner sets it so that only ``--inplace`` touches ``figures/``)
ENV_FIGURES = "LOWLIGHT_FIGURES_DIR"
DEFAULT_PROFILE = "quick"


@dataclass(frozen=True)
class DataSettings:
    """The LL-Matte data set of a profile (notebook 01b) and how it is loaded."""

    image_size: int            # side of the training split: CV-UNet's crops (pixels)
    eval_size: int             # side of the validation and test splits
    n_train: int               # LL-Matte training samples
    n_val: int
    n_test: int                # the stand-in for the article's N = 200 LL-Matte-Test
    num_workers: int           # DataLoader workers, and the processes that generate LL-Matte


@dataclass(frozen=True)
class TrainingSettings:
    """Training on LL-Matte: CV-UNet's original and the article's three stages, counted in epochs
    (notebook 06, ``python -m lowlight.training``), and the LLIE's zero-reference pretraining
    (notebook 04)."""

    batch_size: int
    stage_epochs: tuple[int, int, int]   # the article's three fine-tuning stages
    baseline_epochs: int       # normal-light training of the "original" CV-UNet
    steps_per_epoch: int | None  # None: one pass over the training split
    llie_pretrain_steps: int
    lr_scale: float = 1.0      # multiplies CV-UNet's stage learning rates (short schedules need larger steps)


@dataclass(frozen=True)
class FinetuneSettings:
    """The MODNet fine-tune (notebooks 06-07): its LL-Matte portraits, the scene crops for
    self-distillation, its batches, its stage lengths in optimisation steps, its training seeds."""

    size: int = 256            # side of its LL-Matte portraits and scene crops
    crop: int | None = 192     # random training crops of that side (None: whole images); evaluation uses size
    portraits: tuple[int, int, int] = (160, 16, 24)   # its LL-Matte portraits: train, val, test
    scene_crops: int = 10      # people-free crops per scene photo (self-distillation)
    batch_size: int = 4
    processed_fraction: float = 0.5   # share of the low-light draws that are phone-processed photos
    steps: tuple[int, int, int] = (20, 20, 20)    # optimisation steps of stages 1-3
    epochs: tuple[int, int, int] = (1, 1, 1)      # checkpoints / validations per stage
    seeds: tuple[int, ...] = (0, 1, 2)            # training seeds


@dataclass(frozen=True)
class Profile:
    """Everything that changes between a CI smoke run and the article's GPU run, one part per
    concern: :attr:`data` (LL-Matte), :attr:`training` (CV-UNet and the LLIE),
    :attr:`finetune` (MODNet). Resolve it once with :func:`get_profile` and pass the object on."""

    name: str
    data: DataSettings
    training: TrainingSettings
    finetune: FinetuneSettings = FinetuneSettings()
    amp: bool = False          # mixed precision (only used on CUDA)
    threads: int | None = 2    # torch CPU threads (fixed: results depend on the summation order)
    seed: int = 0              # LL-Matte's seed, and the training seed when none is given
    description: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        data=DataSettings(image_size=64, eval_size=64, n_train=16, n_val=8, n_test=8, num_workers=0),
        training=TrainingSettings(batch_size=4, stage_epochs=(1, 1, 1), baseline_epochs=1, steps_per_epoch=2,
                                  llie_pretrain_steps=3, lr_scale=10.0),
        finetune=FinetuneSettings(size=64, crop=None, portraits=(8, 4, 6), scene_crops=1, batch_size=2,
                                  steps=(2, 2, 2), seeds=(0,)),
        description="CI and nbval: every code path, numbers meaningless",
    ),
    "quick": Profile(
        name="quick",
        data=DataSettings(image_size=128, eval_size=128, n_train=384, n_val=48, n_test=64, num_workers=0),
        training=TrainingSettings(batch_size=8, stage_epochs=(2, 3, 3), baseline_epochs=8, steps_per_epoch=None,
                                  llie_pretrain_steps=100, lr_scale=10.0),
        description="a laptop CPU: whole course in about 40 minutes on 2 cores",
    ),
    "full": Profile(
        name="full",
        data=DataSettings(image_size=512, eval_size=512, n_train=2000, n_val=100, n_test=200, num_workers=8),
        training=TrainingSettings(batch_size=16, stage_epochs=(10, 20, 30), baseline_epochs=20,
                                  steps_per_epoch=None, llie_pretrain_steps=2000),
        finetune=FinetuneSettings(size=512, crop=None, portraits=(1000, 50, 200), scene_crops=40, batch_size=16,
                                  steps=(625, 1250, 1875), epochs=(10, 20, 30)),
        amp=True, threads=None,
        description="one GPU: the article's configuration",
    ),
}


def profile_name(name: str | None = None) -> str:
    """Resolve a profile name: the argument, else ``$LOWLIGHT_PROFILE``, else ``quick``."""
    if name is None or name == "":
        name = os.environ.get(ENV_PROFILE) or DEFAULT_PROFILE
    if not isinstance(name, str) or name not in PROFILES:
        source = "argument 'profile'" if name != os.environ.get(ENV_PROFILE) else f"${ENV_PROFILE}"
        raise ValueError(
            f"unknown profile {name!r} (from {source}); valid profiles: {', '.join(PROFILES)}"
        )
    return name


def get_profile(name: str | None = None) -> Profile:
    """The :class:`Profile` for ``name`` (see :func:`profile_name` for the default): the one
    resolver, called once by each entry point (a notebook's first cell, the training command
    line, the reproduce runner), which then passes the object on."""
    return PROFILES[profile_name(name)]


def require_profile(profile, argument: str = "profile", where: str | None = None) -> Profile:
    """``profile`` itself if it is a :class:`Profile`; otherwise a ``TypeError`` naming ``argument``
    (and the function ``where`` it was passed to). Library functions take a resolved profile, never
    a name: an entry point resolves the name once with :func:`get_profile`."""
    if isinstance(profile, Profile):
        return profile
    hint = (f"; resolve the name once with lowlight.config.get_profile({profile!r}) and pass the result"
            if isinstance(profile, str) or profile is None else "")
    prefix = f"{where}: " if where else ""
    raise TypeError(f"{prefix}argument {argument!r} must be a lowlight.config.Profile, got "
                    f"{type(profile).__name__} {profile!r}{hint}")


# --------------------------------------------------------------------------- paths
def _find_root() -> Path:
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parents[1]
    if (here / "notebooks").is_dir() or (here / "pyproject.toml").is_file():
        return here
    return Path.cwd().resolve()


ROOT: Path = _find_root()
DATA_DIR: Path = ROOT / "data"
FIGURES_DIR: Path = ROOT / "figures"
RUNS_DIR: Path = ROOT / "runs"
NOTEBOOKS_DIR: Path = ROOT / "notebooks"
ASSETS_DIR: Path = DATA_DIR / "assets"


def run_dir(profile: Profile, create: bool = True) -> Path:
    """``runs/<profile>/``: checkpoints, metrics and executed notebooks of one profile."""
    path = RUNS_DIR / require_profile(profile, where="run_dir").name
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir(profile: Profile, create: bool = True) -> Path:
    """Where figures go: ``$LOWLIGHT_FIGURES_DIR`` when set (``python -m lowlight.reproduce`` sets it
    to the folder beside the executed notebooks, unless ``--inplace``), else ``figures/`` for ``quick``
    (the committed course figures) and ``runs/<profile>/figures/`` for the others, so a smoke or
    GPU run never overwrites what the README shows."""
    name = require_profile(profile, where="figures_dir").name
    env = os.environ.get(ENV_FIGURES)
    path = Path(env) if env else FIGURES_DIR if name == "quick" else RUNS_DIR / name / "figures"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path



def display_path(path: "str | os.PathLike") -> str:
    """``path`` as a reader should see it in printed output: relative to the repository root when
    it lies inside it (``data/llmatte/quick-...``), so committed notebook outputs carry no path of
    the machine that ran them; other paths unchanged."""
    p = Path(path)
    try:
        return p.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(p)

@dataclass(frozen=True)
class RunLayout:
    """The one place that knows where a profile's runs live (``runs/<profile>/``)::

        runs/<profile>/
          llie/zerodce.pt                         the pretrained Zero-DCE++ (notebook 04)
          train/<model>-<recipe>/seed<k>/<stage>/  last.pt, history.json, log.csv (notebook 06)
          train/<model>-<recipe>/seed<k>/summary.json
          eval/                                   results of notebook 07
          executed/                               notebooks executed by lowlight.reproduce

    ``model`` is a :data:`lowlight.models.MODELS` name (``modnet``, ``cvunet``, ...), ``recipe``
    the training recipe (``staged``, ``onestage``, ``staged_llie``, ...), ``stage`` a stage name
    (``stage1`` ... ``stage3``, ``full``).
    """

    profile: str
    root: Path

    @classmethod
    def of(cls, profile: Profile, root: "str | Path | None" = None) -> "RunLayout":
        """The layout of ``profile`` (a :class:`Profile`) under ``root`` (default ``runs/<profile>/``)."""
        p = require_profile(profile, where="RunLayout.of")
        return cls(p.name, Path(root) if root is not None else RUNS_DIR / p.name)

    @property
    def llie_checkpoint(self) -> Path:
        return self.root / "llie" / "zerodce.pt"

    def train_dir(self, model: str, recipe: str, seed: int) -> Path:
        return self.root / "train" / f"{model}-{recipe}" / f"seed{int(seed)}"

    def checkpoint(self, model: str, recipe: str, seed: int, stage: str) -> Path:
        return self.train_dir(model, recipe, seed) / stage / "last.pt"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def executed_dir(self) -> Path:
        return self.root / "executed"


# --------------------------------------------------------------------------- device
def get_device(prefer: str | None = None):
    """``torch.device``: ``prefer`` if given (``"cpu"``, ``"cuda"``, ``"cuda:1"``),
    else CUDA when available, else CPU."""
    import torch

    if prefer:
        dev = torch.device(prefer)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {prefer!r} requested but CUDA is not available")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_threads(profile: Profile) -> int:
    """Fix torch's CPU thread count to the profile's (``threads``; ``None`` leaves it). The same
    seed gives the same numbers only with the same thread count: it sets the summation order of
    the convolutions. Returns the thread count in use."""
    import torch

    n = require_profile(profile, where="set_threads").threads
    if n:
        torch.set_num_threads(int(n))
    return torch.get_num_threads()


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) for a deterministic run."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
