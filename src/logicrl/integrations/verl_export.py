"""Puzzles → veRL's RL parquet, and the chat template that renders those rows as our prompts.

A row (what veRL's ``RLHFDataset`` and reward manager read)::

    data_source   "kk_<N>ppl"     veRL groups validation metrics by it: accuracy per number of people
    prompt        [system, user]  `logicrl.prompts.chat_messages` (the Logic-RL instruction, the quiz)
    ability       "logic"
    reward_model  {"style": "rule", "ground_truth": {"solution_text_format", "knight_knave", "quiz"}}
    extra_info    {"split", "index", "id", "n_people", "depth", "width", "prefilled_think"}

Files: ``OUT/{split}.parquet`` (every number of people) and ``OUT/{split}_{N}ppl.parquet`` (one curriculum
stage each), for the splits ``train`` and ``test``; and, when the rows need one (`rollout_chat_template`),
``OUT/chat_template.jinja`` and ``OUT/chat_template.override`` (that template as one Hydra override for veRL).

The pre-fill. veRL's rollout renders ``prompt`` with the tokenizer's chat template and
``add_generation_prompt=True``; a pre-filled assistant turn cannot be a message (transformers refuses
``continue_final_message`` together with a generation prompt). So the rows hold the conversation only,
and `rollout_chat_template` gives the template veRL must use instead
(``actor_rollout_ref.model.custom_chat_template``): the model's own template followed by the pre-fill
(``chat``), or the Logic-RL base-model layout (``plain``). Rendering it gives exactly
`logicrl.prompts.prompt_text`, the prompt of ``logicrl train``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from logicrl.errors import ConfigError, DataError
from logicrl.integrations.hydra import hydra_value
from logicrl.io import atomic_write_text, write_parquet
from logicrl.prompts import PromptConfig, chat_messages
from logicrl.puzzles.record import people_of
from logicrl.rl.schedule import load_held_out, load_puzzles

ABILITY = "logic"

# Logic-RL's base-model layout, "<instruction>\n\nUser: <quiz>\nAssistant: ", as a chat template over the
# [system, user] rows (jinja unescapes the \n in its string literals). The pre-fill is appended after it.
PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n' }}"
    "{% else %}{{ 'Assistant: ' + message['content'] + '\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}"
)


def data_source(n_people: int) -> str:
    """The row's ``data_source``: one tag per number of people."""
    return f"kk_{n_people}ppl"


def verl_row(record: Mapping[str, Any], split: str, index: int, prompt: PromptConfig) -> dict[str, Any]:
    """One puzzle record as a veRL RL row (schema in the module docstring)."""
    n_people = people_of(record)
    truth = {
        "solution_text_format": record["solution_text_format"],
        "knight_knave": dict(record["knight_knave"]),
        "quiz": record["quiz"],
    }
    info = {"split": split, "index": index, "id": record.get("id"), "n_people": n_people,
            "depth": record.get("depth"), "width": record.get("width"), "prefilled_think": prompt.prefilled_think}
    return {
        "data_source": data_source(n_people),
        "prompt": chat_messages(str(record["quiz"]), prompt),
        "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": truth},
        "extra_info": info,
    }


# The names `split_files` gives (an export of other people or without held-out puzzles writes others).
EXPORT_FILE = re.compile(r"(train|test)(_\d+ppl)?\.parquet")


def split_files(split: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """``{"<split>.parquet": all rows, "<split>_<N>ppl.parquet": rows of N people, ...}`` (`EXPORT_FILE`)."""
    by_people: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_people[row["extra_info"]["n_people"]].append(dict(row))
    files = {f"{split}.parquet": [dict(row) for row in rows]}
    files.update({f"{split}_{n}ppl.parquet": by_people[n] for n in sorted(by_people)})
    return files


def build_export(train: Iterable[Mapping[str, Any]], test: Iterable[Mapping[str, Any]],
                 prompt: PromptConfig) -> dict[str, list[dict[str, Any]]]:
    """Every export file name → its rows, for the given train and test records (pure)."""
    files: dict[str, list[dict[str, Any]]] = {}
    for split, records in (("train", train), ("test", test)):
        rows = [verl_row(r, split, i, prompt) for i, r in enumerate(records)]
        if rows:
            files.update(split_files(split, rows))
    return files


def read_puzzles(train: Path, people: Sequence[int] | None, val: Path | None,
                 val_per_people: int | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training, validation) records, chosen as ``logicrl train`` chooses them: training puzzles with
    ``people`` (all if None); validation from the val (else test) split of ``val`` (default ``train``), the same
    people, the first ``val_per_people`` of each number of people (all if None, none if 0)."""
    records = load_puzzles(train, "train", people)
    if val_per_people == 0:
        return records, []
    return records, load_held_out(train, val, people, val_per_people)


TEMPLATE_FILES = ("chat_template.jinja", "chat_template.override")


def write_export(out_dir: Path, files: Mapping[str, Sequence[Mapping[str, Any]]],
                 chat_template: str | None) -> dict[str, int]:
    """Write `build_export`'s parquet files, and ``chat_template`` (the rows' `rollout_chat_template`, None when
    the model's own renders them) as `TEMPLATE_FILES`; returns file name → rows. A file of an earlier export that
    this one would not replace (another --people, no held-out puzzles, no template) is a DataError before
    anything is written: veRL would read it beside the new ones."""
    stale = sorted(path.name for path in Path(out_dir).glob("*")
                   if path.name not in files and EXPORT_FILE.fullmatch(path.name)
                   or path.name in TEMPLATE_FILES and chat_template is None)
    if stale:
        raise DataError(f"{out_dir} holds {', '.join(stale)} from an earlier export that this one would not replace: "
                        "choose another --out, or delete them")
    for name, rows in files.items():
        write_parquet(out_dir / name, rows)
    if chat_template is not None:
        atomic_write_text(out_dir / TEMPLATE_FILES[0], chat_template)
        override = f"actor_rollout_ref.model.custom_chat_template={hydra_value(chat_template)}\n"
        atomic_write_text(out_dir / TEMPLATE_FILES[1], override)
    return {name: len(rows) for name, rows in files.items()}


def rollout_chat_template(prompt: PromptConfig, model_template: str | None) -> str | None:
    """The chat template veRL must render our rows with, or None when the model's own one already does.

    ``chat``: the model's template, then the pre-fill after the generation prompt; ``plain``:
    `PLAIN_CHAT_TEMPLATE`, then the pre-fill. The pre-fill sits in a ``{% raw %}`` block, so any text is
    literal. Jinja drops one trailing newline of a template, so that newline is dropped before appending.
    """
    if prompt.template == "chat" and not prompt.prefill:
        return None
    base = PLAIN_CHAT_TEMPLATE if prompt.template == "plain" else model_template
    if base is None:
        raise ConfigError("the tokenizer has no chat template: use prompt.template=plain for a base model")
    if not prompt.prefill:
        return base
    if "{% endraw %}" in prompt.prefill:
        raise ConfigError("prompt.prefill cannot contain '{% endraw %}'")
    suffix = "{% if add_generation_prompt %}{% raw %}" + prompt.prefill + "{% endraw %}{% endif %}"
    return base.removesuffix("\n") + suffix
