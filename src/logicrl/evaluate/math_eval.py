"""``logicrl eval math``: out-of-distribution math (AIME/AMC-style), as the paper's section on transfer.

The config (`MathEvalConfig`: the paper's sampling as the ``paper`` preset, the prompt style), the scorer
that turns a response into a row (`math_scorer`, through `logicrl.evaluate.math_check`), generating or
rescoring one model's sample file (`math_rows`, on the shared `logicrl.evaluate.runner` machinery, local or
endpoint), and the result tables (`math_results`: per source and year, and per source pooled).

A row: ``id``, ``source``, ``year``, ``group``, ``sample``, ``response``, ``length``, ``truncated``,
``solved`` (the final answer is equivalent to the reference), ``format_ok`` (the response has the prompt's
form: exactly ``<think>…</think><answer>…</answer>``, or a ``\\boxed{}``), ``check`` (`STATUSES`),
``answer`` (the final answer found), ``answer_source``, ``vote``, ``reference``, ``substring`` (the
reference implementation's substring test), ``check_s``, ``check_error``, ``prefilled_think``, ``model``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from logicrl.errors import DataError
from logicrl.evaluate.config import SampledConfig
from logicrl.evaluate.journal import Journal
from logicrl.evaluate.math_check import MathChecker, MathVerdict, boxed_contents, substring_match
from logicrl.evaluate.math_data import math_group, math_source
from logicrl.evaluate.metrics import accuracy_table
from logicrl.evaluate.runner import ModelSpec, generate_rows, read_generation, samples_path, save_generated
from logicrl.evaluate.scoring import Scorer
from logicrl.io import read_jsonl, write_jsonl
from logicrl.prompts import SYSTEM_PROMPT
from logicrl.reward.parse import THINK_OPEN, split_blocks

# The paper's math evaluation (Xie et al. 2025, section 4): one sample per problem at T = 0.8, top-p 0.95,
# up to 10,000 new tokens. A preset fills the keys the user did not set.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"temperature": 0.8, "top_p": 0.95, "max_tokens": 10000, "samples": 1},
}
# The Logic-RL instruction's format part, then the math task instead of the puzzle's.
LOGIC_RL_MATH_PROMPT = SYSTEM_PROMPT.partition(" Now the user asks")[0] + (
    " Now the user asks you to solve a math problem. After thinking, when you finally reach a conclusion, "
    "clearly state the final answer within <answer> </answer> tags, i.e., <answer> 42 </answer>."
)
# The usual instruction of math evaluations (Qwen2.5-Math's), for models not trained on the tag format.
BOXED_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
PROMPT_STYLES = {"logic-rl": (LOGIC_RL_MATH_PROMPT, "<think>"), "boxed": (BOXED_PROMPT, "")}


class MathEvalConfig(SampledConfig):
    """``logicrl eval math``: problems, prompt style, sampling (or the paper's preset), checker limits."""

    preset: Literal["paper"] | None = Field(
        None, description="'paper': T=0.8, top_p=0.95, max_tokens=10000, 1 sample (keys you set win).")
    prompt_style: Literal["logic-rl", "boxed"] = Field(
        "logic-rl", description="'logic-rl': think/answer tags and the <think> pre-fill (K&K-trained "
        "models); 'boxed': 'put your final answer within \\boxed{}'. Sets prompt.system_prompt and "
        "prompt.prefill unless given.")
    limit: int | None = Field(None, ge=1, description="First N problems per source and year (default: all).")
    check_timeout_s: float = Field(5.0, gt=0.0, description="Hard time limit of one answer check (seconds).")
    check_memory_mb: int | None = Field(
        2048, ge=256, description="Memory cap of the checker process (MiB; null: none).")

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        """The preset's values and the prompt style's instruction, where the user gave none."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        preset = data.get("preset")
        if isinstance(preset, str):
            for key, value in PRESETS.get(preset, {}).items():
                data.setdefault(key, value)
        style = data.get("prompt_style", "logic-rl")
        prompt = data.get("prompt", {})
        if style in PROMPT_STYLES and isinstance(prompt, dict):
            system_prompt, prefill = PROMPT_STYLES[style]
            data["prompt"] = {"system_prompt": system_prompt, "prefill": prefill, **prompt}
        return data


def response_format_ok(response: str, style: str, prefilled_think: bool) -> bool:
    """Whether a response has the form its prompt asked for: exactly ``<think>…</think><answer>…</answer>``
    (``logic-rl``, read after the pre-fill as the reward reads it) or at least one ``\\boxed{}``."""
    if style == "boxed":
        return bool(boxed_contents(response))
    return split_blocks(THINK_OPEN + response if prefilled_think else response).error is None


def math_row(record: Mapping[str, Any], verdict: MathVerdict, *, sample: int, response: str, length: int,
             truncated: bool, prefilled_think: bool, style: str) -> dict[str, Any]:
    """One scored sample (module docstring)."""
    return {
        "id": record["id"], "source": record["source"], "year": record.get("year"), "group": record["group"],
        "sample": sample, "response": response, "length": length, "truncated": truncated,
        "solved": verdict.correct, "format_ok": response_format_ok(response, style, prefilled_think),
        "check": verdict.status, "answer": verdict.answer, "answer_source": verdict.answer_source,
        "vote": verdict.vote, "reference": record["answer"],
        "substring": substring_match(response, str(record["answer"])), "check_s": verdict.seconds,
        "check_error": verdict.error, "prefilled_think": prefilled_think,
    }


def math_scorer(checker: MathChecker, style: str) -> Scorer:
    """A `logicrl.evaluate.scoring.Scorer` that checks each response against its record's answer. The
    ``<think>`` pre-fill matters to the ``logic-rl`` format only (a ``boxed`` row records False)."""

    def score(record: Mapping[str, Any], *, sample: int, response: str, length: int, truncated: bool,
              prefilled_think: bool) -> tuple[dict[str, Any], MathVerdict]:
        verdict = checker.check(response, str(record["answer"]))
        prefilled_think = prefilled_think and style == "logic-rl"
        row = math_row(record, verdict, sample=sample, response=response, length=length, truncated=truncated,
                       prefilled_think=prefilled_think, style=style)
        return row, verdict

    return score


def math_rows(
    spec: ModelSpec, records: Sequence[Mapping[str, Any]], cfg: MathEvalConfig, out: Path,
    checker: MathChecker, *, rescore: bool, progress: Callable[[int], None] | None = None,
    status: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """One model's scored rows, saved to ``<out>/samples/<label>.jsonl``: generated (``cfg.samples`` per
    problem), or (``rescore``) the saved responses checked again against ``records`` (the problems given
    with ``--data``; a saved row of a problem not among them is a DataError). A rescore judges the format by
    the prompt style the samples were made with, as their generation record says (else ``cfg.prompt_style``)."""
    path = samples_path(out, spec)
    made = (read_generation(out, spec) or {}) if rescore else {}
    scorer = math_scorer(checker, made.get("prompt_style", cfg.prompt_style))
    if rescore:
        rows = [{"model": spec.label, **row}
                for row in _rescore(path, spec, records, scorer, cfg.prompt.prefilled_think, progress)]
        write_jsonl(path, rows)
        return rows
    rows = generate_rows(spec, records, cfg, n=cfg.samples, progress=progress, scorer=scorer,
                         journal=Journal(out, spec.file_stem), status=status)
    save_generated(out, spec, rows, cfg, cfg.samples)
    return rows


def _rescore(path: Path, spec: ModelSpec, records: Sequence[Mapping[str, Any]], scorer: Scorer,
             prefilled_think: bool, progress: Callable[[int], None] | None) -> list[dict[str, Any]]:
    """The rows saved at ``path``, scored again (every row checked against ``records`` before the first)."""
    if not path.is_file():
        raise DataError(f"{path}: no saved samples for model {spec.label!r} to rescore")
    by_id = {str(r["id"]): r for r in records}
    saved = list(read_jsonl(path))
    for line, row in saved:
        if "response" not in row or str(row.get("id")) not in by_id:
            what = "has no response" if "response" not in row else "is not in the data given (--data)"
            raise DataError(f"{path}:{line}: problem {row.get('id')!r} {what}")
    rows = []
    for _, row in saved:
        record = by_id[str(row["id"])]
        new, _ = scorer(record, sample=int(row.get("sample", 0)), response=str(row["response"]),
                        length=int(row.get("length", 0)), truncated=bool(row.get("truncated", False)),
                        prefilled_think=bool(row.get("prefilled_think", prefilled_think)))
        rows.append(new)
        if progress:
            progress(1)
    return rows


def math_vote(row: Mapping[str, Any]) -> str | None:
    """A sample's majority vote: its parsed final answer (equal for ``1/2`` and ``\\frac12``)."""
    return row.get("vote")


def _with_substring(table: dict[Any, dict[str, float]], rows: Sequence[Mapping[str, Any]],
                    level: Callable[[Mapping[str, Any]], str]) -> dict[Any, dict[str, float]]:
    """``substring``: per level, the share of samples the reference's substring test calls right."""
    for key, entry in table.items():
        group = [r for r in rows if level(r) == key]
        entry["substring"] = sum(bool(r["substring"]) for r in group) / len(group)
    return table


def math_results(rows: Sequence[Mapping[str, Any]], ks: Sequence[int]) -> tuple[dict, dict]:
    """Per source and year, and per source: `accuracy_table`'s metrics (``acc``, ``format_ok``, ``length``,
    ``truncated``, ``puzzles`` = problems, ``pass@k``, ``maj@n`` over parsed answers) and ``substring``."""
    tables = []
    for level in (math_group, math_source):
        table = accuracy_table(rows, ks, level=level, vote=math_vote)
        tables.append(_with_substring(table, rows, level))
    return tables[0], tables[1]


def checker_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Throughput of the answer checks: how many, total and worst seconds, answers per second, timeouts."""
    times = [float(r["check_s"]) for r in rows if r.get("check") != "no_answer"]
    total = sum(times)
    return {"checked": len(times), "seconds": round(total, 3), "max_s": round(max(times, default=0.0), 3),
            "per_second": round(len(times) / total, 1) if total > 0 else None,
            "timeouts": sum(r.get("check") == "timeout" for r in rows),
            "errors": sum(r.get("check") == "error" for r in rows)}
