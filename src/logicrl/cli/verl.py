"""``logicrl verl``: export puzzles in veRL's RL schema and launch veRL runs from a `TrainConfig`.

Overrides are positional ``key=value`` as for every ``logicrl`` command: our config keys (`PromptConfig` for
``export``; `TrainConfig`, and `VerlClusterConfig` under ``cluster.``, for ``launch``). Only veRL's own Hydra
keys, another program's, go through ``--verl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from logicrl.cli.output import plain_console, print_line
from logicrl.config import (
    StrictModel,
    deep_merge,
    format_validation_error,
    load_config,
    parse_overrides,
    read_yaml,
)
from logicrl.errors import ConfigError, UserError
from logicrl.integrations.verl_export import (
    TEMPLATE_FILES,
    build_export,
    read_puzzles,
    write_export,
)
from logicrl.integrations.verl_launch import VerlClusterConfig, plan_launch, rows_chat_template, run_plan
from logicrl.io import STALE_TEMP_S, check_output_dir, remove_temp_files
from logicrl.models import DEFAULT_MODEL, resolve_model_path
from logicrl.prompts import PromptConfig
from logicrl.puzzles.dataset import parse_people
from logicrl.rl.config import TrainConfig

verl_app = typer.Typer(help="Scale out through veRL: the same puzzles, reward and recipe on GPUs.",
                       no_args_is_help=True)
console = plain_console()


@verl_app.command("export")
def export_cmd(
    data: Annotated[Path, typer.Option(help="dataset directory from `logicrl data generate`")],
    out: Annotated[Path, typer.Option(help="output directory for the parquet files")],
    people: Annotated[str | None, typer.Option(help="training puzzles with these numbers of people: '3-7'")] = None,
    val: Annotated[Path | None, typer.Option(
        help="held-out puzzles (default: the val split of --data, else its test split)")] = None,
    val_per_people: Annotated[int | None, typer.Option(
        min=0, help="held-out puzzles kept per number of people (0: no test files)")] = None,
    system_prompt: Annotated[str | None, typer.Option(help="the instruction (default: Logic-RL's)")] = None,
    model: Annotated[str, typer.Option(
        help="the model to train (its chat template, plus the pre-fill, renders the rows: chat_template.jinja)")
    ] = DEFAULT_MODEL,
    overrides: Annotated[list[str] | None, typer.Argument(
        help="prompt overrides, key=value: template, system_prompt, prefill (e.g. prefill='')")] = None,
) -> None:
    """Write train/test parquet in veRL's RL schema: all people, and one file per number of people; with the
    `<think>` pre-fill (or template=plain) also the chat template veRL must render them with."""
    prompt = load_config(PromptConfig, None, overrides, system_prompt=system_prompt)
    try:
        wanted = parse_people(people) if people else None
    except ValueError as exc:
        raise UserError(f"--people: {exc}") from None
    check_output_dir(out)
    files = build_export(*read_puzzles(data, wanted, val, val_per_people), prompt)
    template = rows_chat_template(prompt, resolve_model_path(model), False)
    remove_temp_files(out, older_than_s=STALE_TEMP_S)
    counts = write_export(out, files, template)
    for name, rows in counts.items():
        console.print(f"{rows:>7} rows  {out / name}")
    if template is not None:
        print_line(console, f"veRL must render these rows with {out / TEMPLATE_FILES[0]} (the prompt logicrl trains "
                            f"on): pass the override in {out / TEMPLATE_FILES[1]}, e.g. "
                            f"\"$(cat {out / TEMPLATE_FILES[1]})\"")


@verl_app.command("launch")
def launch_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="the run config (as for `logicrl train`)")],
    cluster: Annotated[Path | None, typer.Option(help="YAML with VerlClusterConfig keys (GPUs, nodes, ...)")] = None,
    nodes: Annotated[int | None, typer.Option(help="machines in the Ray cluster")] = None,
    gpus_per_node: Annotated[int | None, typer.Option(help="GPUs per machine")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the commands, write and run nothing")] = False,
    verl: Annotated[list[str] | None, typer.Option(
        "--verl", help="a raw veRL (Hydra) override: veRL's own key, not ours; appended to every stage after "
        "ours, so it wins, e.g. --verl trainer.val_only=true (repeatable)")] = None,
    overrides: Annotated[list[str] | None, typer.Argument(
        help="overrides: TrainConfig keys (optim.lr=1e-6) or cluster.<key> (cluster.tensor_parallel=2)")] = None,
) -> None:
    """Run veRL's PPO trainer on our puzzles and reward: one stage per number of people (curriculum)."""
    train_overrides, cluster_overrides = split_overrides(overrides or [])
    cfg = load_config(TrainConfig, config, train_overrides)
    cluster_cfg = load_cluster_config(cluster, cluster_overrides, nodes=nodes, gpus_per_node=gpus_per_node)
    plan = plan_launch(cfg, cluster_cfg, verl)
    if dry_run:
        print(plan.describe())
    else:
        run_plan(plan)


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """``cluster.<key>=v`` items go to the cluster config (`load_cluster_config`), the rest to the run config."""
    parse_overrides(overrides)  # one-line error for a malformed item before splitting
    cluster = [item for item in overrides if item.startswith("cluster.")]
    return [item for item in overrides if not item.startswith("cluster.")], cluster


class _TypedCluster(StrictModel):
    """The cluster keys under the prefix the command line gives them (``cluster.nodes=2``)."""

    cluster: VerlClusterConfig


def load_cluster_config(path: Path | None, overrides: list[str], **options: int | None) -> VerlClusterConfig:
    """Defaults < the ``--cluster`` YAML < the options (``nodes``, ``gpus_per_node``; None: not given) < the
    ``cluster.<key>=v`` items. An error names the key as it was given: ``cluster.nodes`` for the command line's
    (``--nodes`` too), as the launch's overrides spell it; ``nodes in PATH`` for the file's."""
    typed = deep_merge({k: v for k, v in options.items() if v is not None},
                       parse_overrides(overrides).get("cluster", {}))
    try:
        return _TypedCluster.model_validate({"cluster": deep_merge(read_yaml(path) if path else {}, typed)}).cluster
    except ValidationError as exc:
        field = exc.errors()[0]["loc"][1:2]
        if field and str(field[0]) in typed:
            raise ConfigError(format_validation_error(exc, _TypedCluster, None)) from None
    # the file's value: its error names the key as the file spells it, in PATH
    return load_config(VerlClusterConfig, path, [item.removeprefix("cluster.") for item in overrides], **options)
