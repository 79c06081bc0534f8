"""The ``logicrl`` command: one sub-command per pipeline stage.

Every command takes its config keys the same way: a few typed options, ``--config x.yaml``, and positional
``key=value`` overrides (``optim.lr=1e-6``, ``reward.mode=logic-rl``). ``python -m logicrl`` is the same
program.

User errors (bad config, missing or malformed files, impossible requests) print one line,
``error: <what is wrong and how to fix it>``, and exit with status 2; nothing is half-written
because every output goes through a temp file and a rename.
"""

from __future__ import annotations

import sys

import click
import typer
from typer.core import TyperGroup

from logicrl.cli.data import data_app
from logicrl.cli.eval import eval_app
from logicrl.cli.eval_math import math_cmd  # noqa: F401  (registers `logicrl eval math`)
from logicrl.cli.report import report_cmd
from logicrl.cli.train import sft_cmd, train_cmd
from logicrl.cli.verl import verl_app
from logicrl.errors import UserError

PIPELINE = ("data", "sft", "train", "eval", "report", "verl")


class PipelineGroup(TyperGroup):
    """The top-level command, listing its sub-commands in pipeline order (typer lists plain commands
    before sub-apps)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(super().list_commands(ctx), key=PIPELINE.index)


app = typer.Typer(
    help="Rule-based RL of language models on Knights-and-Knaves puzzles (Logic-RL, end to end).",
    cls=PipelineGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_app, name="data")
app.command("sft")(sft_cmd)
app.command("train")(train_cmd)
app.add_typer(eval_app, name="eval")
app.command("report")(report_cmd)
app.add_typer(verl_app, name="verl")


def main() -> None:
    """Console entry point: run the app, turning user errors into one line and exit code 2."""
    try:
        app()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
