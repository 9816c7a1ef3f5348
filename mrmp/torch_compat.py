"""Everything the core takes from torch beyond its public API, in one place (checked against torch 2.13).

- `Adam`: `torch.optim.Adam` that trains without importing torch's compiler. Every entry point of torch.optim
  (the constructor's `add_param_group`, `zero_grad`, `step`, `state_dict`, the functional `adam`) first imports
  `torch._dynamo` to keep the compiler out of optimisers: ~1.1 CPU-s per process (measured on this project's
  2-core VM), paid by every `mrmp train` and by each sweep worker at its first step, for a compiler mrmp never
  runs. This class calls the same functions under those wrappers, in eager mode: the same updates, bitwise
  (test), the same state dicts. Once something else has imported `torch._dynamo`, `step` is torch's own.
- `softmax_backward`: ATen's softmax backward (`torch._softmax_backward_data`), for the GCN's hand-written
  backward of its node mixing.

Importing this module imports torch only.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim import adam as _adam

softmax_backward = torch._softmax_backward_data

# `torch._compile._disable_dynamo` wraps a function `fn` and, at the first call, imports torch._dynamo to build
# the disabled version, which it caches as this attribute of `fn`.
_DISABLED_CACHE = "__dynamo_disable"


def _eager(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The function under torch's decorators (`functools.wraps` chains)."""
    return inspect.unwrap(fn)


# Unwrapped once: `Adam.step` is under `_use_grad_for_differentiable` (which imports torch._dynamo and runs the
# step with grad mode = `differentiable`) and, once an optimiser exists, torch's step-hook wrapper too.
_ADAM_STEP = _eager(torch.optim.Adam.step)
_ADAM_FUNCTIONAL = _eager(_adam.adam)


class Adam(torch.optim.Adam):
    """`torch.optim.Adam` whose calls do not import `torch._dynamo` (see the module docstring)."""

    add_param_group = _eager(Optimizer.add_param_group)
    zero_grad = _eager(Optimizer.zero_grad)
    state_dict = _eager(Optimizer.state_dict)
    load_state_dict = _eager(Optimizer.load_state_dict)

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        functional = _ADAM_FUNCTIONAL
        if "torch._dynamo" in sys.modules or _DISABLED_CACHE in vars(functional):
            return super().step(closure)
        # The raw step calls the functional `adam`, whose wrapper reads its cache first: set to the function
        # itself for this call, it runs the function as is.
        setattr(functional, _DISABLED_CACHE, functional)
        try:
            with torch.set_grad_enabled(self.defaults["differentiable"]):
                return _ADAM_STEP(self, closure)
        finally:
            delattr(functional, _DISABLED_CACHE)
