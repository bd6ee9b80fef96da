"""Test objects shared by several test modules: a tiny dataset (trainer and predict tests) and a
pickle that runs code when loaded (the weights-only loading tests)."""
from __future__ import annotations

from pathlib import Path

import torch


class Evil:
    """Unpickling this object creates a file (``marker``): it stands for arbitrary code in a
    checkpoint. A loader that refuses it leaves no file behind."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


class ToySet(torch.utils.data.Dataset):
    """Fixed random samples with the dataset dict layout (image, alpha, valid)."""

    def __init__(self, n=12, size=32, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(n, 3, size, size, generator=g)
        self.a = (torch.rand(n, 1, size, size, generator=g) > 0.5).float()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"image": self.x[i], "alpha": self.a[i], "valid": torch.ones_like(self.a[i])}


def check_group_partition(m, groups: list) -> None:
    """``m.param_groups()`` is ``groups`` in order, non-empty, covering every parameter exactly once;
    freezing each group removes exactly its parameters from the trainable count, and unfreezing
    restores it."""
    got = m.param_groups()
    assert list(got) == groups
    ids = [id(p) for ps in got.values() for p in ps]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in m.parameters()}
    assert all(got[g] for g in groups)

    def trainable():
        return sum(p.numel() for p in m.parameters() if p.requires_grad)

    total = trainable()
    for g in groups:
        count = sum(p.numel() for p in got[g])
        assert m.freeze(g) == [g]
        assert trainable() == total - count, g
        assert m.trainable_groups() == [x for x in groups if x != g]
        m.unfreeze(g)
        assert trainable() == total
