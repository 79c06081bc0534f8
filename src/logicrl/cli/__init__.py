"""The ``logicrl`` command: one sub-command per pipeline stage.

Every command takes its config keys the same way: a few typed options, ``--config x.yaml``, and positional
``key=value`` overrides (``optim.lr=1e-6``, ``reward.mode=logic-rl``). ``python -m logicrl`` is the same
program.

User errors (bad config, missing or malformed files, impossible requests) print one line,
``error: <what is wrong and how to fix it>``, and exit with status 2; nothing is half-written
because every output goes through a temp file and a rename.
"""

from __future__ import annotations

import importlib
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import typer
from typer.core import TyperGroup

from logicrl.errors import UserError

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/logicrl: warnings raised here are the user's to read

# name -> (module, attribute, one-line help). A command's module (and with it torch, transformers, ...) is
# imported only when that command runs or shows its own help: `logicrl data generate` never loads torch.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "data": ("logicrl.cli.data", "data_app", "Puzzles: generate, stats, show, perturb."),
    "sft": ("logicrl.cli.train", "sft_cmd",
            "Supervised fine-tuning on template reasoning (cold start) or on the model's own solved samples (RFT)."),
    "train": ("logicrl.cli.train", "train_cmd", "RL on the puzzles: REINFORCE++, GRPO, RLOO, PPO, ..."),
    "eval": ("logicrl.cli.eval_math", "eval_app",  # eval_math adds `eval math` to the eval group
             "Accuracy by number of people (Table 2), pass@k, memorization, math."),
    "report": ("logicrl.cli.report", "report_cmd", "Curves, thinking words and length of a run: PNGs and HTML."),
    "compare": ("logicrl.cli.compare", "compare_cmd",
                "Several runs side by side: curves, config diff, eval table; PNGs and HTML."),
    "experiment": ("logicrl.cli.experiment", "experiment_cmd",
                   "A research question's runs (configs/rq/), then their eval and comparison; resumable."),
    "verl": ("logicrl.cli.verl", "verl_app", "Export for veRL and launch veRL runs from the same config."),
}
PIPELINE = tuple(COMMANDS)


def load_command(name: str) -> click.Command:
    """Import the command's module and build its click command (a group for sub-apps)."""
    module, attribute, _ = COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        return typer.main.get_command(target)
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command(name)(target)
    return typer.main.get_command(single)


def check_command_line(args: Sequence[str]) -> None:
    """Parse ``logicrl ARGS`` as the command would, without running it: a UserError for an unknown command or
    option, or a value of the wrong type (`logicrl experiment` checks its eval commands before the runs that
    come first, which take hours)."""
    name, *rest = args
    if name not in COMMANDS:
        raise UserError(f"unknown command {name!r} (commands: {', '.join(COMMANDS)})")
    command = load_command(name)
    while rest and rest[0] in getattr(command, "commands", {}):
        name, command, rest = rest[0], command.commands[rest[0]], rest[1:]
    try:
        command.make_context(name, list(rest))
    except typer.TyperException as exc:
        add_override_hint(exc)
        raise UserError(f"`logicrl {' '.join(args)}`: {exc.format_message()}") from None


class PipelineGroup(TyperGroup):
    """The top-level command: sub-commands in pipeline order, each imported only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(PIPELINE)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        command = load_command(cmd_name)
        command.name = cmd_name
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from COMMANDS, so that `logicrl --help` imports no command module."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_text) for name, (_, _, help_text) in COMMANDS.items()])

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.TyperException, click.ClickException) as exc:  # typer ≥ 0.29 raises its own copy of click's
            add_override_hint(exc)
            raise


OVERRIDE_EXAMPLE = re.compile(r"(?<![\w.])([a-z_][\w.]*=[^\s),;:]+)")


def override_examples(help_text: str) -> list[str]:
    """The ``key=value`` examples an overrides argument's help gives (``optim.lr=1e-6``), not its placeholders
    (``key=value``, ``section.key=value``)."""
    return [e for e in OVERRIDE_EXAMPLE.findall(help_text) if e.partition("=")[0] not in ("key", "section.key")]


def add_override_hint(exc: Exception) -> None:
    """An unknown ``--name`` given to a command that takes ``key=value`` overrides, with no option spelt like it:
    the error says how a config key is set (``sft --steps 5`` suggested ``--help``, the only option close to it
    in spelling). A misspelt option keeps click's suggestions; any other error is left as it is."""
    option, ctx = getattr(exc, "option_name", None), getattr(exc, "ctx", None)
    overrides = next((p for p in ctx.command.params if p.name == "overrides"), None) if ctx is not None else None
    if option is None or overrides is None:
        return
    close = [name for name in getattr(exc, "possibilities", None) or () if name != "--help"]
    exc.possibilities = close or None  # type: ignore[attr-defined]
    if not close:  # the example is the command's own, from its overrides' help: a key that exists
        examples = override_examples(getattr(overrides, "help", None) or "")
        shown = f", e.g. {examples[0]}" if examples else ""
        message = f"No such option: {option} (config keys are set as key=value{shown}; --help lists the options)"
        exc.message = message  # type: ignore[attr-defined]


app = typer.Typer(
    help="Rule-based RL of language models on Knights-and-Knaves puzzles (Logic-RL, end to end).",
    cls=PipelineGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Rule-based RL of language models on Knights-and-Knaves puzzles (Logic-RL, end to end)."""


INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it


def main() -> None:
    """Console entry point: run the app, turning user errors into one line and exit code 2, an operating-system
    error about a file (permission denied, no space left, `file_error`) into one line and exit code 1, Ctrl-C into
    ``interrupted`` and exit code 130, and logicrl's own warnings into ``warning: ...`` lines (not the source line
    that raised them). A character the terminal's encoding lacks (``Δ``, ``≤``, ``–`` under ``LC_ALL=C`` without
    UTF-8 mode) prints escaped (``\u0394``), as on stderr by default, rather than ending the command with a
    UnicodeEncodeError after its files are written."""
    warnings.showwarning = _show_warning
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):  # a TextIOWrapper (not a test's capture)
            stream.reconfigure(errors="backslashreplace")
    try:
        app()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        if exc.filename is None:  # not about a file: a bug or a library's own failure, traceback kept
            raise
        print(f"error: {file_error(exc)}", file=sys.stderr)
        sys.exit(1)
    except SystemExit as exc:  # typer turns Ctrl-C (KeyboardInterrupt) into exit status 130 without a word
        if exc.code == INTERRUPTED:
            print("\ninterrupted", file=sys.stderr)
        raise
    except KeyboardInterrupt:  # (raised outside typer's handling)
        print("\ninterrupted", file=sys.stderr)
        sys.exit(INTERRUPTED)


def file_error(exc: OSError) -> str:
    """One line for an operating-system error about a file (permission denied, no space left, a folder where a
    file goes): the path(s) and the system's reason."""
    paths = " -> ".join(str(name) for name in (exc.filename, exc.filename2) if name is not None)
    return f"{paths}: {exc.strerror or exc}"


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """A warning raised in logicrl is a line for the user (``warning: ...``); any other keeps Python's format,
    which says where it comes from."""
    if Path(filename).resolve().is_relative_to(PACKAGE_DIR) and issubclass(category, UserWarning):
        print(f"warning: {message}", file=file or sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), file=file or sys.stderr, end="")
