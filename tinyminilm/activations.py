"""The activations sentence-transformers puts on a cross-encoder's logits, as NumPy functions.

A cross-encoder's head gives logits, float32 [B, num_labels]; sentence-transformers' CrossEncoder then applies an
activation: torch.nn.Sigmoid for one label and torch.nn.Identity for more, unless the model saved another one
(by its class path, e.g. "torch.nn.modules.linear.Identity" for cross-encoder/ms-marco-MiniLM-L6-v2) or the caller
passes one. This module maps those names, and torch's activations themselves, to NumPy functions of the same
values, without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import ArgumentError
from .model import softmax


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) elementwise, float32, without overflow: e^-|x| is at most 1."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def identity(x: np.ndarray) -> np.ndarray:
    """The logits unchanged (torch.nn.Identity)."""
    return x


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": sigmoid, "identity": identity, "tanh": np.tanh, "softmax": softmax}  # softmax over the labels
# torch's names for them: the class paths sentence-transformers saves, and what users pass to activation_fn
TORCH_NAMES = {
    "torch.nn.modules.activation.Sigmoid": "sigmoid", "torch.nn.Sigmoid": "sigmoid", "torch.sigmoid": "sigmoid",
    "torch.nn.functional.sigmoid": "sigmoid", "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.Identity": "identity", "torch.nn.modules.activation.Tanh": "tanh", "torch.nn.Tanh": "tanh",
    "torch.tanh": "tanh", "torch.nn.functional.tanh": "tanh", "torch.nn.modules.activation.Softmax": "softmax",
    "torch.nn.Softmax": "softmax",
}


def activation_function(value: Any, name: str = "activation_fn") -> Callable[[np.ndarray], np.ndarray]:
    """The NumPy function for an activation given as sentence-transformers users give it.

    value: "sigmoid", "identity", "tanh" or "softmax" (over the labels); a torch class path such as
    "torch.nn.modules.activation.Sigmoid" or "torch.nn.Sigmoid"; a torch activation itself (torch.nn.Sigmoid(),
    torch.sigmoid), mapped by its name without importing torch; or any other callable, used as it is: it gets the
    float32 logits [B, num_labels] and returns an array of that shape. Anything else is an ArgumentError.
    """
    if callable(value):
        kind = value if isinstance(value, type) or getattr(value, "__name__", None) else type(value)
        module = getattr(kind, "__module__", None) or ""
        if module != "torch" and not module.startswith("torch."):
            return value
        if getattr(value, "dim", None) not in (None, 1, -1):  # torch.nn.Softmax(dim=0) mixes the pairs
            raise ArgumentError(f"{name}={value!r}: a softmax over the pairs is not supported; use dim=-1 or 1")
        value = f"{module}.{kind.__name__}"
    key = TORCH_NAMES.get(value, value.lower()) if isinstance(value, str) else None
    if key not in ACTIVATIONS:
        raise ArgumentError(f"{name}={value!r} is not an activation tinyminilm has: pass one of {sorted(ACTIVATIONS)}, "
                            f"a torch class path ({', '.join(sorted(p for p in TORCH_NAMES if '.modules.' in p))}) "
                            "or a NumPy function of the logits [B, num_labels]")
    return ACTIVATIONS[key]
