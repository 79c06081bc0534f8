"""Differences between transformers releases that the engine meets, probed once (not version numbers):
the KV-cache argument and output field are ``cache`` from transformers 5.x on (``past_key_values`` is
deprecated, to be removed in 5.40) and ``past_key_values`` before; gradient checkpointing is turned on by
``activation_checkpointing_enable`` from 5.x on (``gradient_checkpointing_enable`` warns, to go in v6)."""

from __future__ import annotations

import functools
import inspect


@functools.cache
def _cache_argument(forward_class: type) -> str:
    return "cache" if "cache" in inspect.signature(forward_class.forward).parameters else "past_key_values"


def cache_argument(module) -> str:
    """The name under which ``module``'s forward takes a KV cache."""
    return _cache_argument(type(module))


def enable_activation_checkpointing(model) -> None:
    """Recompute ``model``'s layers in backward instead of keeping their activations (train mode)."""
    enable = getattr(model, "activation_checkpointing_enable", None)
    (enable or model.gradient_checkpointing_enable)()


def output_cache(out) -> object:
    """The KV cache of a model output (None if it has none)."""
    fields = getattr(out, "__dataclass_fields__", {})
    return getattr(out, "cache" if "cache" in fields else "past_key_values", None)
