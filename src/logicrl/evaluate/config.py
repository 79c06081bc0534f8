"""Configs of ``logicrl eval`` and ``logicrl eval memorization``: which puzzles, how to sample, which backend.

Built like every logicrl config (`logicrl.config.load_config`): defaults < ``--config x.yaml`` < command-line
options < ``key=value`` overrides (``temperature=0.7``, ``prompt.template=plain``, ``reward.mode=logic-rl``).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from logicrl.config import StrictModel
from logicrl.errors import ConfigError
from logicrl.evaluate.metrics import default_ks
from logicrl.prompts import PromptConfig
from logicrl.puzzles.dataset import PeopleList
from logicrl.puzzles.perturb import PERTURBATIONS, PUBLIC_KINDS
from logicrl.reward.score import RewardConfig

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what api_key_env must be: a variable's name, not a key
NOT_A_VARIABLE = ("must name an environment variable (letters, digits, _), not hold the key: export the key as e.g. "
                  "OPENAI_API_KEY and give api_key_env=OPENAI_API_KEY")

class BackendConfig(StrictModel):
    """What every evaluation command shares (puzzles and math alike): sampling, backend and prompt."""

    temperature: float = Field(0.0, ge=0.0, description="0 is greedy decoding; > 0 samples.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling threshold (when sampling).")
    max_tokens: int = Field(1024, ge=1, description=(
        "Longest response in tokens; longer ones are cut (the default is below training's 4096, "
        "rollout.max_response_tokens, and the reference protocol's 8192, configs/eval-reference.yaml: "
        "a model trained to 4096-token answers is cut at 1024)."))
    batch_size: int = Field(16, ge=1, description="Rows per generate call (local backend).")
    seed: int = Field(0, description="Sampling seed (same seed, same samples on the same machine).")
    device: str = Field("auto", description="Local backend: 'auto', 'cpu', 'cuda', 'cuda:N'.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Local weights dtype ('auto': bf16 on a GPU that has it, else float32).")
    trust_remote_code: bool = Field(False, description="Run a checkpoint's own code; only if you trust it.")
    endpoint: str | None = Field(
        None, description="Base URL of an OpenAI-compatible server (http://host:port/v1); default: local.")
    api_key_env: str | None = Field(None, description=(
        "Environment variable holding the endpoint's key (e.g. OPENAI_API_KEY); none: no key is sent. A key "
        "goes only to https:// or loopback endpoints."))
    concurrency: int = Field(8, ge=1, description="Requests in flight at once (endpoint).")
    timeout_s: float = Field(300.0, gt=0.0, description="Seconds one request may take (endpoint).")
    retries: int = Field(3, ge=0, description="Retries of a failed request, with exponential backoff.")
    prompt: PromptConfig = Field(default_factory=PromptConfig, description="Template and pre-fill.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @field_validator("endpoint")
    @classmethod
    def _http_endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            from logicrl.evaluate.endpoint import check_base_url  # lazy: the backend imports torch

            check_base_url(value)  # first: no credentials in the messages below
            parts = urllib.parse.urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an http:// or https:// URL with a host, e.g. "
                                 f"http://127.0.0.1:8000/v1; got {value!r}")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        if value and not ENV_NAME.fullmatch(value):  # a key pasted in its place: refused, not echoed nor saved
            raise ValueError(NOT_A_VARIABLE)
        return value

    @model_validator(mode="after")
    def _chat_endpoint(self) -> BackendConfig:
        if self.endpoint and self.prompt.template != "chat":
            raise ValueError("an endpoint takes chat messages: prompt.template=plain needs the local backend")
        return self


class RunConfig(BackendConfig):
    """What both puzzle evaluation commands share: which puzzles, and the reward that scores them."""

    split: str = Field("test", description="Split to read from a dataset directory.")
    people: PeopleList = Field(list(range(2, 9)),
                              description="Numbers of people ('2-8' or '2,4,8').")
    limit: int | None = Field(None, ge=1, description="First N puzzles per number of people (default: all).")
    reward: RewardConfig = Field(default_factory=RewardConfig, description="Reward mode (strict/logic-rl).")


class SampledConfig(BackendConfig):
    """k responses per question, for pass@k and majority vote (``logicrl eval`` and ``logicrl eval math``)."""

    samples: int = Field(1, ge=1, description="Responses per puzzle (k); > 1 needs temperature > 0.")
    pass_k: list[int] | None = Field(
        None, description="k values of pass@k (default: powers of 2 up to the samples per puzzle, and it).")

    @field_validator("pass_k", mode="before")
    @classmethod
    def _parse_pass_k(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [int(k) for k in value.split(",") if k.strip()]
        return [value] if isinstance(value, int) else value

    @model_validator(mode="after")
    def _check_samples(self) -> SampledConfig:
        if self.samples > 1 and self.greedy:
            raise ValueError(
                f"samples={self.samples} with greedy decoding repeats one response: set temperature > 0")
        if self.pass_k is not None and (not self.pass_k or min(self.pass_k) < 1):
            raise ValueError(f"pass_k values must be >= 1 (or leave pass_k out for the default), got {self.pass_k}")
        return self

    def ks(self, samples: int) -> list[int]:
        """The k values of pass@k to report for ``samples`` responses per puzzle: ``pass_k``, each at most
        ``samples`` (a ConfigError names those above it), or the default."""
        if not self.pass_k:
            return default_ks(samples)
        if max(self.pass_k) > samples:
            raise ConfigError(f"pass_k={self.pass_k}: pass@k needs k ≤ the {samples} response(s) per puzzle; "
                              "raise --samples/-k or drop the larger k")
        return sorted(set(self.pass_k))


GENERATION_KEYS = frozenset(BackendConfig.model_fields) | {"samples", "prompt_style"}
"""The keys that decide how samples are made (backend, sampling, prompt, samples per question, and `logicrl eval
math`'s prompt style, which also decides its format check), as opposed to which questions are read and how the
answers are scored: a ``--rescore`` takes them from the samples' generation record."""


def rescored_config(config: Mapping[str, Any], generated_with: Mapping[str, Any] | None,
                    given: Iterable[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """What a rescore's results record, and what it ignores.

    The record is ``config`` (this run's, as JSON) with its `GENERATION_KEYS` taken from ``generated_with``, the
    config recorded by the run that made the samples; they are left out where that is unknown (None, or a key
    it lacks). The ignored keys are those of ``given`` (set on this command line or in its file) that are
    generation keys with another value than the samples were made with."""
    made = {k: v for k, v in (generated_with or {}).items() if k in GENERATION_KEYS}
    recorded = {k: made[k] if k in GENERATION_KEYS else v for k, v in config.items()
                if k not in GENERATION_KEYS or k in made}
    ignored = [k for k in config if k in set(given) & made.keys() and config[k] != made[k]]
    return recorded, ignored


def shared_settings(made: Mapping[str, Mapping[str, Any] | None]
                    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[str]]:
    """What several sample files' generation records (``{label: settings}``, None where a file has none) agree on.

    Returns the settings every record holds with one value, ``{key: {label: value}}`` for the keys whose values
    differ between records (or that some record lacks), and the labels that have no record."""
    known = {label: settings for label, settings in made.items() if settings is not None}
    unrecorded = [label for label, settings in made.items() if settings is None]
    shared: dict[str, Any] = {}
    differing: dict[str, dict[str, Any]] = {}
    for key in sorted({key for settings in known.values() for key in settings}):
        values = {label: settings[key] for label, settings in known.items() if key in settings}
        if len(values) == len(known) and len({json.dumps(v, sort_keys=True) for v in values.values()}) == 1:
            if not unrecorded:
                shared[key] = next(iter(values.values()))
        else:
            differing[key] = values
    return shared, differing, unrecorded


class EvalConfig(RunConfig, SampledConfig):
    """``logicrl eval``: accuracy by number of people (Table 2), pass@k and majority vote."""


class MemorizationConfig(RunConfig):
    """``logicrl eval memorization``: Acc, CR and LiMem on (training) puzzles and their perturbed twins."""

    split: str = Field("train", description="Split to read (memorization is measured on training puzzles).")
    kinds: list[str] = Field(list(PERTURBATIONS), description="Perturbation kinds (logicrl.puzzles.perturb).")
    perturb_seed: int = Field(0, description="Seed of the perturbations (same seed, same twins).")
    twins: str = Field("auto", description=(
        "Where twins come from: 'auto' (the public twins beside --data, per kind, when it is in the public K&K "
        "layout; else made by logicrl), 'own' (always made), or a folder holding them: one in the public layout "
        "(e.g. the perturbed release) or one `logicrl data perturb` wrote."))

    @field_validator("kinds", mode="before")
    @classmethod
    def _parse_kinds(cls, value: Any) -> Any:
        return [k.strip() for k in value.split(",") if k.strip()] if isinstance(value, str) else value

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        names = [PUBLIC_KINDS.get(k, k) for k in value]  # the public release's names too (perturbed_leaf)
        unknown = [k for k, name in zip(value, names) if name not in PERTURBATIONS]
        if unknown or not value:
            what = f"unknown perturbation(s) {', '.join(unknown)}" if unknown else "no perturbation kind"
            raise ValueError(f"{what} (valid: {', '.join(PERTURBATIONS)}, or the public names "
                             f"{', '.join(PUBLIC_KINDS)})")
        return list(dict.fromkeys(names))  # a kind named twice is measured once
