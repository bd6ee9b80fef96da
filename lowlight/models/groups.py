"""Named parameter groups, shared by every matting network of the course (notebook 06).

A network that defines :meth:`GroupedModule.named_param_groups` (group name -> its named
parameters, every parameter in exactly one group, groups in forward order) gets the rest:
:meth:`~GroupedModule.param_groups`, freezing by name or prefix (``"encoder"``, ``"backbone"``,
``"all"``), and the batch-norm rules the staged fine-tune relies on -- batch-norm layers whose
parameters are frozen keep their running statistics in ``train()`` mode (``freeze_bn_stats``), as do
the layers of groups named in :meth:`~GroupedModule.keep_bn_eval`, or all of them (``frozen_bn``).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["GroupedModule"]


class GroupedModule(nn.Module):
    """Base class: parameter groups by name, freezing, and batch-norm modes (see the module docstring)."""

    #: every batch-norm keeps its running statistics while training
    frozen_bn: bool = False
    #: batch-norms whose parameters are all frozen keep their running statistics
    freeze_bn_stats: bool = True

    def named_param_groups(self) -> "OrderedDict[str, list[tuple[str, nn.Parameter]]]":  # pragma: no cover
        raise NotImplementedError

    def param_groups(self) -> "OrderedDict[str, list[nn.Parameter]]":
        """``{group: [parameters]}`` -- every parameter in exactly one group, groups in forward order."""
        return OrderedDict((g, [p for _, p in ps]) for g, ps in self.named_param_groups().items())

    @property
    def group_names(self) -> list[str]:
        return list(self.named_param_groups())

    def _select(self, names) -> list[str]:
        valid = self.group_names
        if names is None or names == "all":
            return valid
        if isinstance(names, str):
            names = [names]
        out = []
        for n in names:
            hit = valid if n == "all" else [g for g in valid if g == n or g.startswith(n + ".")]
            if not hit:
                prefixes = sorted({g.split(".")[0] for g in valid if "." in g})
                raise ValueError(f"unknown parameter group {n!r}; groups: {', '.join(valid)} "
                                 f"(or {', '.join(repr(p) for p in prefixes + ['all'])})")
            out.extend(hit)
        return list(OrderedDict.fromkeys(out))

    def _set_trainable(self, names, flag: bool) -> list[str]:
        chosen = self._select(names)
        groups = self.param_groups()
        for g in chosen:
            for p in groups[g]:
                p.requires_grad_(flag)
        self._sync_bn_modes()
        return chosen

    def freeze(self, names="all") -> list[str]:
        """Stop gradients for the named groups (a name, a prefix such as ``"encoder"``, a list, or
        ``"all"``); returns the groups."""
        return self._set_trainable(names, False)

    def unfreeze(self, names="all") -> list[str]:
        """Re-enable gradients for the named groups; returns the groups."""
        return self._set_trainable(names, True)

    def freeze_all_but(self, names) -> list[str]:
        """Freeze everything, then unfreeze ``names`` (the article's stage 1: the head)."""
        self.freeze("all")
        return self.unfreeze(names)

    def trainable_groups(self) -> list[str]:
        """Groups with at least one parameter that requires a gradient."""
        return [g for g, ps in self.param_groups().items() if any(p.requires_grad for p in ps)]

    def keep_bn_eval(self, names=()) -> list[str]:
        """Keep the batch-norm layers of the named groups in eval mode (running statistics used and
        not updated) even when they train; ``()`` clears the setting. Returns the groups. With small
        CPU batches, batch statistics would overwrite a pretrained network's."""
        self.bn_eval_groups = set(self._select(names)) if names else set()
        if self.training:
            self.train(True)
        return sorted(self.bn_eval_groups)

    def _sync_bn_modes(self) -> None:
        """Put the batch-norms that must keep their running statistics into eval mode."""
        if not self.training:
            return
        pinned_groups = getattr(self, "bn_eval_groups", set())
        group_of = ({id(p): g for g, ps in self.param_groups().items() for p in ps} if pinned_groups else {})
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                params = [p for p in (m.weight, m.bias) if p is not None]
                frozen = bool(params) and not any(p.requires_grad for p in params)
                pinned = bool(params) and group_of.get(id(params[0])) in pinned_groups
                if self.frozen_bn or (self.freeze_bn_stats and frozen) or pinned:
                    m.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self._sync_bn_modes()
        return self

    #: inputs are padded to a multiple of this (the networks' output stride)
    pad_multiple: int = 32

    def pad_input(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """Check an RGB batch in [0, 1] (N, 3, H, W) and pad it (replicate, bottom and right, so that
        pixels keep their place on the stride grid) to a multiple of :attr:`pad_multiple`; returns
        ``(padded, H, W)`` for cropping the output back."""
        name = type(self).__name__
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{name} expects an RGB batch (N, 3, H, W), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"{name} expects float RGB in [0, 1], got dtype {x.dtype} (divide uint8 images by 255)")
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.pad_multiple, (-w) % self.pad_multiple
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return x, h, w
