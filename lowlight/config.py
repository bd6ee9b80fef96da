"""Profiles, paths and device choice (used by every notebook).

A *profile* is the size of one run of the course:

* ``smoke`` -- CI and nbval: every code path runs, each notebook in about a minute on
  two CPU cores. Numbers are meaningless.
* ``quick`` -- a reader's laptop (CPU): the whole course in about 15 minutes, large
  enough that the article's effects are visible.
* ``full``  -- one GPU: the article's configuration (512x512 crops, batch 16,
  10/20/30 epochs, 200 test images, mixed precision).

A notebook picks its profile from its ``profile`` parameter (papermill injects it);
``None`` means the environment variable ``LOWLIGHT_PROFILE``, else ``quick``.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

ENV_PROFILE = "LOWLIGHT_PROFILE"
ENV_ROOT = "LOWLIGHT_ROOT"
DEFAULT_PROFILE = "quick"


@dataclass(frozen=True)
class Profile:
    """Everything that changes between a CI smoke run and the article's GPU run."""

    name: str
    image_size: int            # training crop side (pixels)
    eval_size: int             # side of evaluation / test images
    n_train: int               # LL-Matte training samples
    n_val: int
    n_test: int                # the stand-in for the article's N = 200 LL-Matte-Test
    batch_size: int
    stage_epochs: tuple[int, int, int]   # the article's three fine-tuning stages
    baseline_epochs: int       # normal-light training of the "original" model
    steps_per_epoch: int | None  # None: one pass over the training split
    num_workers: int
    llie_pretrain_steps: int
    amp: bool                  # mixed precision (only used on CUDA)
    lr_scale: float = 1.0      # multiplies CV-UNet's stage learning rates (short schedules need larger steps)
    # -- the MODNet fine-tune (notebooks 06-07)
    ft_size: int = 256         # side of its LL-Matte portraits and scene crops
    ft_crop: int | None = 192  # random training crops of that side (None: whole images); evaluation uses ft_size
    ft_n: tuple[int, int, int] = (160, 16, 24)   # its LL-Matte portraits: train, val, test
    ft_scene_crops: int = 10   # people-free crops per scene photo (self-distillation)
    ft_batch: int = 4
    ft_processed: float = 0.5  # share of the low-light draws that are phone-processed photos
    ft_steps: tuple[int, int, int] = (20, 20, 20)   # optimisation steps of stages 1-3
    ft_epochs: tuple[int, int, int] = (1, 1, 1)     # checkpoints / validations per stage
    seeds: tuple[int, ...] = (0, 1, 2)              # training seeds of the fine-tune
    threads: int | None = 2    # torch CPU threads (fixed: results depend on the summation order)
    seed: int = 0
    description: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", image_size=64, eval_size=64, n_train=16, n_val=8, n_test=8,
        batch_size=4, stage_epochs=(1, 1, 1), baseline_epochs=1, steps_per_epoch=2,
        num_workers=0, llie_pretrain_steps=3, amp=False, lr_scale=10.0,
        ft_size=64, ft_crop=None, ft_n=(8, 4, 6), ft_scene_crops=1, ft_batch=2, ft_steps=(2, 2, 2), seeds=(0,),
        description="CI and nbval: every code path, numbers meaningless",
    ),
    "quick": Profile(
        name="quick", image_size=128, eval_size=128, n_train=384, n_val=48, n_test=64,
        batch_size=8, stage_epochs=(2, 3, 3), baseline_epochs=8, steps_per_epoch=None,
        num_workers=0, llie_pretrain_steps=100, amp=False, lr_scale=10.0,
        description="a laptop CPU: whole course in about 15 minutes",
    ),
    "full": Profile(
        name="full", image_size=512, eval_size=512, n_train=2000, n_val=100, n_test=200,
        batch_size=16, stage_epochs=(10, 20, 30), baseline_epochs=20, steps_per_epoch=None,
        num_workers=8, llie_pretrain_steps=2000, amp=True,
        ft_size=512, ft_crop=None, ft_n=(1000, 50, 200), ft_scene_crops=40, ft_batch=16, ft_steps=(625, 1250, 1875),
        ft_epochs=(10, 20, 30), threads=None,
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
    """The :class:`Profile` for ``name`` (see :func:`profile_name` for the default)."""
    return PROFILES[profile_name(name)]


def as_profile(profile: "str | Profile | None" = None) -> Profile:
    """A :class:`Profile` from a profile, a name, or ``None`` (see :func:`profile_name`)."""
    return profile if isinstance(profile, Profile) else get_profile(profile)


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


def run_dir(profile: str | Profile | None = None, create: bool = True) -> Path:
    """``runs/<profile>/``: checkpoints, metrics and executed notebooks of one profile."""
    name = profile.name if isinstance(profile, Profile) else profile_name(profile)
    path = RUNS_DIR / name
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir(profile: str | Profile | None = None, create: bool = True) -> Path:
    """Where figures go: ``figures/`` for ``quick`` (the committed course figures),
    ``runs/<profile>/figures/`` for the others, so a smoke or GPU run never
    overwrites what the README shows."""
    name = profile.name if isinstance(profile, Profile) else profile_name(profile)
    path = FIGURES_DIR if name == "quick" else RUNS_DIR / name / "figures"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


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
    def of(cls, profile: "str | Profile | None" = None, root: "str | Path | None" = None) -> "RunLayout":
        p = as_profile(profile)
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


def set_threads(profile: "str | Profile | None" = None) -> int:
    """Fix torch's CPU thread count to the profile's (``threads``; ``None`` leaves it). The same
    seed gives the same numbers only with the same thread count: it sets the summation order of
    the convolutions. Returns the thread count in use."""
    import torch

    n = as_profile(profile).threads
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
