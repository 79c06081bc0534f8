"""How much of an RL run's log-prob and update work is padding and repeated prompts: token counts, no timing.

For each step of a finished run (``RUN/rollouts/step_*.jsonl``, whose rows hold the response lengths; the prompts
are re-encoded from the run's data and config), the tokens that one forward over the step's rollouts processes
under three ways of forming micro-batches:

* ``consecutive``: ``algorithm.micro_batch_size`` consecutive rows, each padded to the micro-batch's longest
  response (logicrl before the token budget);
* ``token budget``: the trainer's micro-batches (`logicrl.rl.batch.token_budget_batches`: longest first, at
  most ``algorithm.micro_batch_tokens`` padded response tokens);
* ``group-major``: the same budget, but the rows of a puzzle kept together (longest first within the group),
  so more micro-batches hold one prompt several times.

In each micro-batch, each distinct prompt runs once (`logicrl.engine.logprobs.prompt_states`) and every
row is as wide as the longest response. The floor is each prompt once per step and no padding: what a forward
that packs a group's responses after its prompt would process. The forward and the backward of the update cost
in proportion (the linears dominate at these lengths), so the ratios to the floor bound what better batching
can buy.

    python benchmarks/micro_batch_tokens.py outputs/cases/rl-p1 outputs/cases/rl-p1-cont
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import yaml

from logicrl.prompts import PromptConfig, encode_prompts
from logicrl.puzzles.files import dataset_files, load_records
from logicrl.rl.batch import micro_batches, token_budget_batches


def prompt_tokens(rows: list[int], prompt_len: list[int], group: list[int]) -> int:
    """The tokens of the distinct prompts of ``rows``, each once (the rows of a group share one prompt)."""
    return sum({group[r]: prompt_len[r] for r in rows}.values())


def forward_tokens(batches: list[list[int]], prompt_len: list[int], length: list[int], group: list[int]) -> int:
    """Σ over micro-batches of (each distinct prompt once) + rows × the longest response."""
    return sum(prompt_tokens(rows, prompt_len, group) + len(rows) * max(max(length[r] for r in rows), 1)
               for rows in batches)


def group_major(length: list[int], group: list[int], max_rows: int, max_tokens: int | None) -> list[list[int]]:
    """The token-budget micro-batches formed inside each group."""
    out = []
    for g in sorted(set(group)):
        rows = torch.tensor([r for r in range(len(group)) if group[r] == g])
        out += [rows[c].tolist() for c in token_budget_batches(torch.tensor([length[r] for r in rows]),
                                                                 max_rows, max_tokens)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (rollouts/ and config.yaml)")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    totals = {"consecutive": 0, "token budget": 0, "group-major": 0, "floor": 0}
    steps = 0
    for run in args.runs:
        config = yaml.safe_load((run / "config.yaml").read_text())
        algo, group_size = config["algorithm"], config["rollout"]["group_size"]
        tokenizer, prompt = AutoTokenizer.from_pretrained(config["model"]["name"]), PromptConfig(**config["prompt"])
        records = {r["id"]: r for r in load_records(dataset_files(Path(config["data"]["train"]), "train"))}
        for path in sorted((run / "rollouts").glob("step_*.jsonl")):
            rows = [json.loads(line) for line in path.open()]
            prompt_len = [len(ids) for ids in encode_prompts([records[r["id"]] for r in rows], tokenizer, prompt)]
            length = [r["length"] for r in rows]
            group = [i // group_size for i in range(len(rows))]
            budget = [c.tolist() for c in token_budget_batches(torch.tensor(length), algo["micro_batch_size"],
                                                               algo["micro_batch_tokens"])]
            consecutive = [c.tolist() for c in micro_batches(torch.arange(len(rows)), algo["micro_batch_size"])]
            totals["consecutive"] += forward_tokens(consecutive, prompt_len, length, group)
            totals["token budget"] += forward_tokens(budget, prompt_len, length, group)
            totals["group-major"] += forward_tokens(
                group_major(length, group, algo["micro_batch_size"], algo["micro_batch_tokens"]),
                prompt_len, length, group)
            totals["floor"] += prompt_tokens(list(range(len(rows))), prompt_len, group) + sum(length)
            steps += 1
    print(f"{steps} steps of {', '.join(map(str, args.runs))}\n")
    print("| micro-batches | tokens per step | / floor |\n|---|---:|---:|")
    for name, total in totals.items():
        print(f"| {name} | {total / steps:,.0f} | {total / totals['floor']:.2f}× |")


if __name__ == "__main__":
    main()
