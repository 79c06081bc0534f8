"""The command line as a whole: one override syntax (positional ``key=value``) for every command that has
config keys, ``python -m logicrl``, and ``logicrl --help`` listing the commands in pipeline order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from logicrl.cli import PIPELINE, app, override_examples
from logicrl.errors import ConfigError, UserError
from logicrl.io import write_jsonl
from logicrl.puzzles.files import dataset_files, load_records

runner = CliRunner()

# every command that reads config keys: each takes them as positional key=value arguments
CONFIG_COMMANDS = [("data", "generate"), ("sft",), ("train",), ("eval",), ("eval", "memorization"),
                   ("report",), ("verl", "export"), ("verl", "launch")]


def python_m(*args: str) -> subprocess.CompletedProcess:
    """``python -m logicrl ARGS`` in a subprocess."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "logicrl", *args], capture_output=True, text=True,
                          timeout=120, env=env, check=False)


def command(path: tuple[str, ...]) -> click.Command:
    """The click command ``logicrl PATH...``."""
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.get_command(click.Context(cmd), name)
    return cmd


def listed_commands(help_text: str) -> list[str]:
    """The command names of the ``Commands`` panel of a rich help text, in the order shown."""
    panel = help_text.split("Commands")[1]
    words = [line.strip("│ ").split(" ")[0] for line in panel.splitlines()]
    return [word for word in words if word in PIPELINE]


def modules_after(*args: str) -> set[str]:
    """The heavy libraries imported by running ``logicrl ARGS`` (in a fresh interpreter)."""
    code = ("import sys\nfrom logicrl.cli import main\nsys.argv = ['logicrl', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('MODULES', *sorted(m for m in ('torch', 'transformers', 'pandas') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
    line = [x for x in result.stdout.splitlines() if x.startswith("MODULES")][-1]
    return set(line.split()[1:])


def test_puzzle_commands_and_the_top_level_help_import_no_model_library():
    """Each command's module loads only when it is used: `logicrl data …` and `logicrl --help` never import
    torch or transformers (they took 2.4 s of a 2.5 s `data generate --help`); `logicrl train --help` does."""
    assert modules_after("--help") == set()
    assert modules_after("data", "generate", "--help") == set()
    assert "torch" in modules_after("train", "--help")


def test_data_generate_writes_parquet_without_pandas(tmp_path):
    """pyarrow's conversions from Python objects import pandas (≈ 0.17 s); `data generate` writes its parquet
    files through Arrow's JSON reader instead, so the command imports none of torch, transformers, pandas."""
    out = tmp_path / "data"
    assert modules_after("data", "generate", "--people", "3", "--train", "4", "--test", "2", "--out", str(out)) == set()
    assert sorted(p.name for p in (out / "3ppl").iterdir()) == ["test.jsonl", "test.parquet", "train.jsonl",
                                                               "train.parquet"]


def test_every_listed_command_loads_with_its_help():
    group = typer.main.get_command(app)
    for name in PIPELINE:
        loaded = group.get_command(click.Context(group), name)
        assert loaded is not None and loaded.name == name
        assert loaded.get_short_help_str(200).strip()
    assert group.get_command(click.Context(group), "nope") is None


def write_hand_samples(out: Path, records: list[dict]) -> None:
    """``out/samples/hand.jsonl``: a right answer to every puzzle whose answer section holds no stray text,
    in the form Logic-RL's ``kk.py`` accepts and the strict mode refuses (text after ``</answer>``)."""
    write_jsonl(out / "samples" / "hand.jsonl", [
        {"model": "hand", "id": r["id"], "n_people": r["n_people"], "sample": 0, "length": 10,
         "truncated": False, "prefilled_think": True,
         "response": f" reasoning</think><answer>{r['solution_text_format']}</answer> done"}
        for r in records])


def test_help_lists_the_commands_in_pipeline_order_and_python_m_runs_the_cli():
    group = typer.main.get_command(app)
    assert group.list_commands(click.Context(group)) == list(PIPELINE)
    result = python_m("--help")
    assert result.returncode == 0, result.stderr
    assert listed_commands(result.stdout) == ["data", "sft", "train", "eval", "report", "compare", "experiment", "verl"]
    error = python_m("eval", "-m", "tiny-random", "--data", "/nonexistent/kk")
    assert error.returncode == 2 and error.stderr.strip().splitlines() == [
        "error: /nonexistent/kk: no such file or dataset directory"], error.stderr


def test_an_ascii_terminal_gets_escapes_not_a_traceback(tmp_path, puzzle_dir):
    """Under LC_ALL=C without UTF-8 mode stdout is ASCII: the help's ≤ and the paired table's Δ and → ended the
    command with a UnicodeEncodeError (after eval had written its files). PYTHONIOENCODING=ascii makes stdout
    ASCII alone (LC_ALL=C with -X utf8=0 would make file names ASCII too, and a clone path may not be)."""
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "OMP_NUM_THREADS": "1"}

    def ascii_run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "logicrl", *args], capture_output=True, env=env, timeout=300,
                              check=False)

    help_text = ascii_run("report", "--help")
    assert help_text.returncode == 0 and b"\\u2264" in help_text.stdout, help_text.stderr[-300:]
    evaluated = ascii_run("eval", "-m", "a=tiny-random", "-m", "b=tiny-random", "--data", str(puzzle_dir),
                          "--people", "2", "--limit", "2", "--max-tokens", "4", "--out", str(tmp_path / "e"))
    assert evaluated.returncode == 0, evaluated.stderr[-300:]
    assert b"(first sample per puzzle; \\u0394 and 95% interval)" in evaluated.stdout
    assert b"0.00\\u21920.00" in evaluated.stdout and evaluated.stdout.isascii()


@pytest.mark.parametrize("path", CONFIG_COMMANDS, ids=" ".join)
def test_every_config_command_takes_positional_overrides(path):
    params = {p.name: p for p in command(path).params}
    overrides = params.get("overrides")
    assert overrides is not None and overrides.param_type_name == "argument" and overrides.nargs == -1
    assert not any("--set" in p.opts and not p.hidden for p in params.values())
    assert override_examples(overrides.help)  # what an unknown --option's error shows as the way to set a key


@pytest.mark.parametrize(("args", "error"), [
    (["sft", "--steps", "5"], ("No such option: --steps (config keys are set as key=value, e.g. lr=1e-5; --help "
                               "lists the options)")),
    (["data", "generate", "--num-puzzles", "3"], ("No such option: --num-puzzles (config keys are set as "
                                                  "key=value, e.g. depth=3; --help lists the options)")),
    (["eval", "memorization", "-m", "tiny-random", "-k", "4"], (
        "No such option: -k (config keys are set as key=value, e.g. reward.mode=logic-rl; --help lists the options)")),
    (["train", "--modle", "x"], "No such option: --modle (Possible options: --model)"),  # a misspelt option
])
def test_an_unknown_option_says_how_config_keys_are_set(args, error):
    """click offered ``--help`` for ``sft --steps`` (the only option spelt close to it); a command with overrides
    now says how a config key is set, with an example from its own overrides (the option's name made into a
    key, ``steps=`` for sft or ``k=`` for ``-k``, named keys that do not exist), and keeps click's suggestion
    where an option is spelt like the typo."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1] == f"Error: {error}"


def test_eval_overrides_are_positional_anywhere_and_beat_the_options(tmp_path, puzzle_dir):
    records = load_records(dataset_files(puzzle_dir, "test"))
    out = tmp_path / "out"
    write_hand_samples(out, records)
    result = runner.invoke(app, ["eval", "--rescore", "reward.mode=logic-rl", "--data", str(puzzle_dir),
                                 "--people", "2", "people=[3]", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "results.json").read_text())
    assert summary["config"]["reward"]["mode"] == "logic-rl" and summary["config"]["people"] == [3]
    assert list(summary["models"]["hand"]["by_people"]) == ["3"]
    assert summary["models"]["hand"]["by_people"]["3"]["acc"] == 1.0  # kk.py ignores the text after </answer>

    strict = runner.invoke(app, ["eval", "--rescore", "--data", str(puzzle_dir), "--out", str(out)])
    assert strict.exit_code == 0, strict.output
    assert json.loads((out / "results.json").read_text())["models"]["hand"]["by_people"]["3"]["acc"] == 0.0


def test_eval_set_is_a_deprecated_alias(tmp_path, puzzle_dir):
    out = tmp_path / "out"
    write_hand_samples(out, load_records(dataset_files(puzzle_dir, "test")))
    result = runner.invoke(app, ["eval", "--rescore", "--data", str(puzzle_dir), "--out", str(out),
                                 "--set", "reward.mode=logic-rl"])
    assert result.exit_code == 0, result.output
    assert "warning: --set is deprecated" in result.stderr
    assert json.loads((out / "results.json").read_text())["config"]["reward"]["mode"] == "logic-rl"


@pytest.mark.parametrize(("args", "error", "message"), [
    (["eval", "-m", "x", "--data", "{data}", "retries"], ConfigError,
     "override 'retries' must look like key=value"),
    (["eval", "-m", "x", "--data", "{data}", "bogus=1"], ConfigError, "unknown config key 'bogus'"),
    (["eval", "memorization", "-m", "x", "--data", "{data}", "people=[9]"], UserError,
     "no train puzzles with 9 people"),
    (["eval", "memorization", "-m", "x", "--data", "{data}", "perturb_seed=x"], ConfigError, "perturb_seed"),
])
def test_bad_eval_overrides_are_one_line_errors(tmp_path, puzzle_dir, args, error, message):
    result = runner.invoke(app, [*(a.format(data=puzzle_dir) for a in args), "--out", str(tmp_path / "out")])
    assert isinstance(result.exception, error), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)
    assert not (tmp_path / "out").exists()


def test_verl_export_takes_prompt_overrides(tmp_path, puzzle_dir):
    out = tmp_path / "parquet"
    result = runner.invoke(app, ["verl", "export", "--data", str(puzzle_dir), "--out", str(out), "prefill=",
                                 "system_prompt=Solve it."])
    assert result.exit_code == 0, result.output
    row = pq.read_table(out / "train.parquet").to_pylist()[0]
    assert row["extra_info"]["prefilled_think"] is False
    assert row["prompt"][0] == {"role": "system", "content": "Solve it."}


def test_logicrl_s_warnings_are_one_line_for_the_user(capsys):
    """`sft` printed `/…/src/logicrl/rl/sft.py:223: UserWarning: …` and then the source line."""
    from logicrl.cli import PACKAGE_DIR, _show_warning

    _show_warning(UserWarning("2 of 20 targets were dropped"), UserWarning, str(PACKAGE_DIR / "rl" / "sft.py"), 223)
    _show_warning(DeprecationWarning("old"), DeprecationWarning, str(PACKAGE_DIR / "rl" / "sft.py"), 9)
    _show_warning(UserWarning("theirs"), UserWarning, "/elsewhere/lib.py", 7)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "warning: 2 of 20 targets were dropped"
    assert lines[1] == f"{PACKAGE_DIR / 'rl' / 'sft.py'}:9: DeprecationWarning: old"  # Python's: where it is from
    assert lines[-1] == "/elsewhere/lib.py:7: UserWarning: theirs"


def test_an_unwritable_output_is_one_line_exit_1(tmp_path):
    """A folder where a report's index.html goes (as a permission or a full disk would) ended `logicrl report`
    with an IsADirectoryError traceback; it is one line naming the file and the system's reason, exit 1."""
    run = tmp_path / "run"
    run.mkdir()
    write_jsonl(run / "metrics.jsonl", [{"kind": "train", "step": s, "reward/mean": 0.5} for s in (1, 2)])
    (tmp_path / "out" / "index.html").mkdir(parents=True)
    result = python_m("report", str(run), "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"error: {tmp_path / 'out'}"), result.stderr
    assert result.stderr.splitlines()[-1].endswith(": Is a directory"), result.stderr


@pytest.mark.parametrize("raised, line", [
    (PermissionError(13, "Permission denied", "/data/kk.jsonl"), "error: /data/kk.jsonl: Permission denied"),
    (OSError(28, "No space left on device", "/out/x.tmp", None, "/out/x"),
     "error: /out/x.tmp -> /out/x: No space left on device"),
])
def test_file_errors_from_the_system_are_one_line(monkeypatch, capsys, raised, line):
    import logicrl.cli

    def fail() -> None:
        raise raised

    monkeypatch.setattr(logicrl.cli, "app", fail)
    with pytest.raises(SystemExit) as stop:
        logicrl.cli.main()
    assert stop.value.code == 1 and capsys.readouterr().err == line + "\n"


def test_an_os_error_about_no_file_keeps_its_traceback(monkeypatch):
    import logicrl.cli

    def fail() -> None:
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(logicrl.cli, "app", fail)
    with pytest.raises(ConnectionResetError):
        logicrl.cli.main()
