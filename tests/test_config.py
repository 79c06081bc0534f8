"""config.py: YAML + dotted overrides into strict typed configs, with one-line errors.

Run: .venv/bin/python -m pytest tests/test_config.py -q
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from logicrl.config import (
    ConfigError,
    StrictModel,
    combine_overrides,
    exact_override,
    load_config,
    parse_overrides,
    read_yaml,
    save_config,
)
from logicrl.evaluate.config import EvalConfig
from logicrl.puzzles.dataset import DataConfig
from logicrl.rl.config import TrainConfig


class Optim(StrictModel):
    lr: float = 1e-6
    betas: list[float] = [0.9, 0.999]


class Toy(StrictModel):
    steps: int = 10
    name: str = "run"
    people: list[int] = [3]
    curriculum: bool = False
    kl: float | None = None
    optim: Optim = Optim()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_yaml_explicit_overrides_in_that_order(tmp_path: Path) -> None:
    path = write(tmp_path, "steps: 20\nname: from-yaml\noptim:\n  lr: 1.0e-5\n  betas: [0.8, 0.9]\n")
    assert load_config(Toy) == Toy()
    cfg = load_config(Toy, path)
    assert (cfg.steps, cfg.name, cfg.optim.lr, cfg.optim.betas) == (20, "from-yaml", 1e-5, [0.8, 0.9])
    cfg = load_config(Toy, path, overrides=["steps=30"], steps=25, name=None)
    assert cfg.steps == 30 and cfg.name == "from-yaml"  # overrides beat explicit; None means "not given"
    assert load_config(Toy, path, steps=25).steps == 25
    # A nested override replaces one key and keeps the section's other YAML keys.
    cfg = load_config(Toy, path, overrides=["optim.lr=3e-6"])
    assert cfg.optim.lr == 3e-6 and cfg.optim.betas == [0.8, 0.9]


@pytest.mark.parametrize(
    ("override", "field", "expected"),
    [
        ("steps=7", "steps", 7),
        ("optim.lr=3e-6", ("optim", "lr"), 3e-6),
        ("optim.lr=0.5", ("optim", "lr"), 0.5),
        ("kl=1e-3", "kl", 1e-3),
        ("kl=null", "kl", None),
        ("people=[3, 4]", "people", [3, 4]),
        ("optim.betas=[0.5,0.6]", ("optim", "betas"), [0.5, 0.6]),
        ("curriculum=true", "curriculum", True),
        ("name=a=b", "name", "a=b"),
        ("name=", "name", ""),
        ("name=x: [y", "name", "x: [y"),  # not valid YAML: kept as the raw string
        ("optim.betas=[1e-3, .5]", ("optim", "betas"), [1e-3, 0.5]),
        ("optim.lr=1E-6", ("optim", "lr"), 1e-6),
    ],
)
def test_override_values_are_typed(override: str, field, expected) -> None:
    cfg = load_config(Toy, overrides=[override])
    value = getattr(cfg.optim, field[1]) if isinstance(field, tuple) else getattr(cfg, field)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(("raw", "value"), [
    ("010", "010"), ("-010", "-010"), ("0b10", "0b10"), ("0x10", "0x10"), ("1:2", "1:2"), ("1:30.5", "1:30.5"),
    ("1_000", "1_000"), ("2025-03-01", "2025-03-01"), ("2025-03-01 10:00:00", "2025-03-01 10:00:00"),
    ("yes", "yes"), ("off", "off"), ("=", "="), ("00.5", "00.5"),
    ("10", 10), ("-3", -3), ("+7", 7), ("0", 0), ("3e-6", 3e-6), ("1E3", 1000.0), (".5", 0.5), ("1.", 1.0),
    ("true", True), ("False", False), ("null", None), ("[010, 1:2]", ["010", "1:2"]), ("'010'", "010"),
])
def test_override_values_read_as_yaml_1_2(raw: str, value) -> None:
    """YAML 1.1 read ``seed=010`` as 8 (octal), ``seed=1:2`` as 62 (base 60), ``out_dir=2025-03-01`` as a date
    and ``name=yes`` as True; such values stay the text typed."""
    got = parse_overrides([f"x={raw}"])["x"]
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(("override", "message"), [
    ("steps=1:2", "^steps: Input should be a valid integer"), ("steps=0b10", "^steps: Input should be a valid integer"),
    ("steps=0x10", "^steps: Input should be a valid integer")])
def test_an_int_field_refuses_what_yaml_1_1_read_as_a_number(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(Toy, overrides=[override])


def test_text_that_yaml_1_1_retypes_reaches_a_text_field_as_typed() -> None:
    cfg = load_config(TrainConfig, overrides=["out_dir=2025-03-01", "seed=010"])
    assert cfg.out_dir == Path("2025-03-01") and cfg.seed == 10  # decimal, as typed (YAML 1.1: 8)
    assert load_config(Toy, overrides=["name=010"]).name == "010"
    assert load_config(Toy, overrides=["name=no"]).name == "no"
    assert load_config(Toy, overrides=["curriculum=yes"]).curriculum is True  # a bool field still reads yes


@pytest.mark.parametrize("value", ["010", "1:2", "2025-03-01", "yes", "1e3", "1E3", ".5", "0x10", "1_000",
                                   "true", "null", "3", "[1]", 10, 1e-6, True, None, [1, "010"], {"a": "1e3"}])
def test_exact_override_reads_back_as_its_value(value) -> None:
    assert parse_overrides([exact_override("x", value)])["x"] == value


def test_parse_overrides_tree() -> None:
    assert parse_overrides(["a.b=1", "a.c=x", "d=[1, 2]"]) == {"a": {"b": 1, "c": "x"}, "d": [1, 2]}
    for bad in ("novalue", "=3", " =3"):
        with pytest.raises(ConfigError, match="must look like key=value"):
            parse_overrides([bad])
    with pytest.raises(ConfigError, match=r"^a given with a key inside it \(a=1, a.b=2\)"):
        parse_overrides(["a=1", "a.b=2"])


@pytest.mark.parametrize(("overrides", "message"), [
    (["steps=2", "steps=3"], "steps given twice (steps=2, steps=3): give it once"),
    (["out_dir=a", "name=x", "out_dir =b"], "out_dir given twice (out_dir=a, out_dir =b): give it once"),
    (["optim.lr=1e-6", "optim.lr=2e-6"], "optim.lr given twice (optim.lr=1e-6, optim.lr=2e-6): give it once"),
    (["optim.lr=1e-6", "optim={}"], ("optim given with a key inside it (optim.lr=1e-6, optim={}): which one wins is "
                                     "ambiguous; give the section or its keys")),
    (["optim={betas: [1]}", "optim.lr=1e-6"], "optim given with a key inside it (optim={betas: [1]}, optim.lr=1e-6)"),
])
def test_a_key_given_twice_in_one_list_is_refused(overrides: list[str], message: str) -> None:
    """``steps=2 steps=3`` ran with the last one and ``optim.lr=1e-6 optim={}`` without the lr, without a word;
    a config file refuses a key given twice for that reason."""
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        load_config(Toy, overrides=overrides)
    assert load_config(Toy, overrides=["optim.lr=1e-6", "optim.betas=[1]", "steps=2"]).optim.lr == 1e-6


def test_layered_overrides_let_the_later_win() -> None:
    """A later source overrides an earlier one (an experiment's defaults', a run's own, the experiment-wide
    ones; a command's options, then its overrides): each list is checked alone, and the combined list has each
    key once, with the same meaning."""
    combined = combine_overrides(["steps=2", "optim.lr=1e-6", "name=a"], ["name=b"], ["steps=8"])
    assert combined == ["optim.lr=1e-6", "name=b", "steps=8"]
    assert load_config(Toy, overrides=combined).model_dump(include={"steps", "name"}) == {"steps": 8, "name": "b"}
    assert combine_overrides(["optim.lr=1e-6", "steps=2"], ["optim={betas: [1]}"]) == ["steps=2", "optim={betas: [1]}"]
    merged = combine_overrides(["optim={lr: 1.0e-5, betas: [0.5]}", "steps=2"], ["optim.lr=2e-6"])
    assert load_config(Toy, overrides=merged).optim == Optim(lr=2e-6, betas=[0.5])
    assert combine_overrides(["name='010'"], []) == ["name='010'"]
    with pytest.raises(ConfigError, match=r"^steps given twice \(steps=2, steps=3\)"):
        combine_overrides(["name=a"], ["steps=2", "steps=3"])


def test_a_resume_layers_its_options_under_its_overrides(tmp_path: Path) -> None:
    """``logicrl train --resume RUN --steps 5 steps=6 out_dir=RUN``: the options are overrides under the user's,
    and the run directory over both; none is a key given twice."""
    from logicrl.cli.runs import run_config

    run = tmp_path / "run"
    run.mkdir()
    save_config(load_config(TrainConfig, overrides=[f"out_dir={run}"]), run / "config.yaml")
    cfg = run_config(TrainConfig, None, run, [f"out_dir={run}", "steps=6"], {"out_dir": run, "steps": 5})
    assert (cfg.steps, cfg.out_dir) == (6, run)


def test_unknown_keys_name_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(Toy, overrides=["stpes=3"])
    valid = "steps, name, people, curriculum, kl, optim"
    assert str(err.value) == f"unknown config key 'stpes' (valid keys: {valid})"
    path = write(tmp_path, "optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=f"unknown config key 'optim.learning_rate' in {path} "
                                          r"\(valid keys: lr, betas\)"):
        load_config(Toy, path)


def test_a_check_across_keys_names_the_file_and_the_command_line(tmp_path: Path) -> None:
    """overlong_buffer from the file against max_response_tokens from the command line: the error blamed the file
    alone; from the file alone it still names the file."""
    path = write(tmp_path, "algorithm:\n  overlong_buffer: 1024\n")
    with pytest.raises(ConfigError, match=rf"^config \({path} with the command line's values\): "
                                          r"algorithm.overlong_buffer=1024 is longer than rollout.max_response_tokens=8"):
        load_config(TrainConfig, path, ["rollout.max_response_tokens=8"])
    path = write(tmp_path, "algorithm:\n  overlong_buffer: 1024\nrollout:\n  max_response_tokens: 8\n")
    with pytest.raises(ConfigError, match=rf"^config in {path}: algorithm.overlong_buffer=1024 is longer"):
        load_config(TrainConfig, path)


def test_an_optional_section_names_its_keys() -> None:
    """``model.lora`` is ``LoraConfig | None``: its keys were listed as none at all."""
    with pytest.raises(ConfigError, match=r"^unknown config key 'model.lora.rank' \(valid keys: r, lora_alpha, "):
        load_config(TrainConfig, overrides=["model.lora.rank=8"])


def test_wrong_types(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^steps: Input should be a valid integer"):
        load_config(Toy, overrides=["steps=abc"])
    path = write(tmp_path, "optim:\n  lr: fast\n")
    with pytest.raises(ConfigError, match=f"^optim.lr in {path}: Input should be a valid number"):
        load_config(Toy, path)
    with pytest.raises(ConfigError, match=r"\(and 1 more\)$"):
        load_config(Toy, overrides=["steps=abc", "people=[x]"])
    with pytest.raises(ConfigError) as err:
        load_config(Toy, overrides=["people=abc"])
    assert "\n" not in str(err.value)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file .*nope.yaml does not exist"):
        load_config(Toy, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="must hold a mapping of config keys, not list"):
        load_config(Toy, write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="must hold a mapping of config keys, not str"):
        load_config(Toy, write(tmp_path, "just text\n"))
    with pytest.raises(ConfigError, match=r"YAML: expected ',' or '\]', but got '<stream end>' \(line 2\)$"):
        load_config(Toy, write(tmp_path, "steps: [1, 2\n"))
    with pytest.raises(ConfigError, match=r"config file .* is a folder, not a YAML file$"):
        load_config(Toy, tmp_path)
    assert load_config(Toy, write(tmp_path, "")) == Toy()  # an empty file means "all defaults"
    (tmp_path / "c.yaml").write_bytes("name: café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"^config file .*c\.yaml:1: not UTF-8 text \(byte 0xe9\)"):
        load_config(Toy, tmp_path / "c.yaml")


def test_an_error_names_the_file_only_when_the_file_gave_the_value(tmp_path: Path) -> None:
    """A bad value or unknown key from an override or an option is the command line's, not the config file's
    (a resume read `optim.bogus=1` as an error "in RUN/config.yaml")."""
    path = write(tmp_path, "steps: 3\noptim:\n  lr: 1.0e-5\n")
    cases = [
        ([], {"steps": "x"}, "^steps: Input should be a valid integer"),
        (["optim.lr=abc"], {}, "^optim.lr: Input should be a valid number"),
        (["optim.bogus=1"], {}, "^unknown config key 'optim.bogus' \\(valid keys"),
        (["people=[x]"], {}, "^people.0: Input should be a valid integer"),
    ]
    for overrides, explicit, message in cases:
        with pytest.raises(ConfigError, match=message):
            load_config(Toy, path, overrides, **explicit)
    bad = write(tmp_path, "steps: 3\noptim:\n  lr: abc\n")
    with pytest.raises(ConfigError, match=f"^optim.lr in {re.escape(str(bad))}: Input should be a valid number"):
        load_config(Toy, bad, ["steps=4"])


@pytest.mark.parametrize(("text", "message"), [
    ("steps: 1\nsteps: 2\n", "key 'steps' appears twice (line 2)"),
    ("optim:\n  lr: 1.0e-5\n  lr: 2.0e-5\n", "key 'lr' appears twice (line 3)"),
])
def test_a_key_given_twice_is_refused(tmp_path: Path, text: str, message: str) -> None:
    """PyYAML keeps the last of two equal keys without a word; a config must not run with a value its author
    may not have meant."""
    expected = f"{tmp_path / 'c.yaml'} is not valid YAML: {message}"
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        load_config(Toy, write(tmp_path, text))


def test_merge_keys_still_override(tmp_path: Path) -> None:
    """A YAML merge (``<<: *base``) followed by one of its keys is an override, not a key given twice."""
    text = "base: &b {lr: 1.0e-5}\noptim:\n  <<: *b\n  lr: 2.0e-5\n"
    assert read_yaml(write(tmp_path, text)) == {"base": {"lr": 1.0e-5}, "optim": {"lr": 2.0e-5}}


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    cfg = load_config(Toy, overrides=["steps=3", "optim.lr=2e-5", "people=[2,5]"])
    save_config(cfg, tmp_path / "saved.yaml")
    assert load_config(Toy, tmp_path / "saved.yaml") == cfg
    assert [p.name for p in tmp_path.iterdir()] == ["saved.yaml"]


def test_assignments_are_validated() -> None:
    cfg = Toy()
    with pytest.raises(ValidationError):
        cfg.steps = "many"
    with pytest.raises(ValidationError):
        Toy(unknown=1)


@pytest.mark.parametrize(
    ("overrides", "people"),
    [
        (["people=3-7"], [3, 4, 5, 6, 7]),
        (["people=2,4"], [2, 4]),
        (["people=[3,4]"], [3, 4]),
        (["people=5"], [5]),
    ],
)
def test_data_config_people(overrides: list[str], people: list[int]) -> None:
    """One syntax for numbers of people in every config that takes them: data generate, train/sft, eval."""
    assert load_config(DataConfig, overrides=overrides).people == people
    assert load_config(TrainConfig, overrides=[f"data.{overrides[0]}"]).data.people == people
    assert load_config(EvalConfig, overrides=overrides).people == people


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["people=1-3"], "^people: number of people must be in 2..30, got 1$"),
        (["train=-1"], "^train: Input should be greater than or equal to 0$"),
        (["roles=Knight"], "^roles: role words must look like"),
        (["operators=[xor]"], "^operators: unknown operator 'xor'"),
        (["formats=[csv]"], "^formats.0: Input should be 'jsonl' or 'parquet'$"),
        (["depht=3"], "^unknown config key 'depht' \\(valid keys: people, train, test, val, depth, width,"),
    ],
)
def test_data_config_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(DataConfig, overrides=overrides)


@pytest.mark.parametrize(("model", "key"), [(TrainConfig, "data.people"), (EvalConfig, "people"),
                                            (DataConfig, "people")])
def test_an_empty_people_list_is_refused(model, key: str) -> None:
    """An empty list would read as 'every number of people found' (train) or evaluate nothing (eval)."""
    with pytest.raises(ConfigError, match=f"^{key}: no numbers of people: give at least one, e.g. '3-7'"):
        load_config(model, overrides=[f"{key}=[]"])


SHIPPED = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_config_validates(path: Path) -> None:
    """configs/*.yaml: `*-sft*` are `logicrl sft` configs, `eval-*` are `logicrl eval` configs, the rest
    `logicrl train` configs; each must load with no unknown key or bad value."""
    from logicrl.evaluate.config import EvalConfig
    from logicrl.rl.config import TrainConfig
    from logicrl.rl.sft import SFTConfig

    kind = SFTConfig if "-sft" in path.stem else EvalConfig if path.stem.startswith("eval-") else TrainConfig
    load_config(kind, path)


def test_the_reference_eval_preset_has_the_reference_settings() -> None:
    from logicrl.evaluate.config import EvalConfig

    cfg = load_config(EvalConfig, Path(__file__).resolve().parents[1] / "configs" / "eval-reference.yaml")
    assert (cfg.people, cfg.limit, cfg.samples, cfg.temperature, cfg.top_p, cfg.max_tokens, cfg.split) == (
        list(range(2, 9)), 100, 1, 1.0, 1.0, 8192, "test")


@pytest.mark.parametrize("endpoint", ["notaurl", "127.0.0.1:8000/v1", "http:///v1", "ftp://host/v1"])
def test_an_endpoint_must_be_an_http_url_with_a_host(endpoint: str) -> None:
    """Refused at once (it was retried four times as a connection failure)."""
    with pytest.raises(ConfigError, match="^endpoint: must be an http:// or https:// URL with a host"):
        load_config(EvalConfig, overrides=[f"endpoint={endpoint}"])
    assert load_config(EvalConfig, overrides=["endpoint=https://api.example.com/v1"]).endpoint


@pytest.mark.parametrize(("model", "override"), [
    (TrainConfig, "optim.lr=inf"), (TrainConfig, "algorithm.kl_coef=.inf"), (TrainConfig, "rollout.temperature=-inf"),
    (EvalConfig, "temperature=inf"), (EvalConfig, "top_p=nan"), (TrainConfig, "reward.correct=.nan"),
    (TrainConfig, "reward.wrong=-.inf")])
def test_a_float_must_be_finite(model, override: str) -> None:
    """`optim.lr=inf` trained to NaN weights with exit 0; every config refuses a value that is not finite."""
    key = override.partition("=")[0]
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: Input should be a finite number"):
        load_config(model, None, [override])


def test_pass_k_values_must_be_within_the_samples() -> None:
    """`pass_k=[16]` with 2 samples per puzzle used to print no pass@k table at all, and `pass_k=[]` too."""
    cfg = load_config(EvalConfig, None, ["samples=4", "temperature=1.0", "pass_k=[4,1,4]"])
    assert cfg.ks(4) == [1, 4] and cfg.ks(8) == [1, 4]
    with pytest.raises(ConfigError, match=r"^pass_k=\[4, 1, 4\]: pass@k needs k ≤ the 2 response\(s\) per puzzle"):
        cfg.ks(2)
    assert load_config(EvalConfig, None, ["samples=4", "temperature=1.0"]).ks(4) == [1, 2, 4]
    with pytest.raises(ConfigError, match=r"pass_k values must be >= 1 \(or leave pass_k out"):
        load_config(EvalConfig, None, ["pass_k=[]"])


def test_an_unknown_key_of_a_named_section_names_its_keys() -> None:
    """``runs.grpo`` of an experiment is a `RunSpec` under a name (``runs: dict[str, RunSpec]``): a misspelt key
    in it listed no valid keys at all."""
    from logicrl.experiment import ExperimentConfig

    with pytest.raises(ConfigError, match=r"^unknown config key 'runs.grpo.overides' \(valid keys: command, config, "
                                          r"model, data, overrides\)$"):
        load_config(ExperimentConfig, overrides=["question=q", "out_dir=x", "runs.grpo.overides=[a=1]"])


@pytest.mark.parametrize("override", ["overrides=[optim.lr=1e-6,data.people=[2,3]]", "people=[2,3", "optim={lr: [1}",
                                      "name=[INST] go"])
def test_a_list_or_mapping_yaml_cannot_read_is_refused(override: str) -> None:
    """``overrides=[optim.lr=1e-6,data.people=[2,3]]`` (an experiment's list, whose item's own ``[`` ends it)
    became a string: "overrides: Input should be a valid list" did not say why; the error says to quote it."""
    from logicrl.experiment import ExperimentConfig

    model = ExperimentConfig if override.startswith("overrides") else Toy
    with pytest.raises(ConfigError, match=rf"^override {re.escape(repr(override))}: not a valid YAML list or mapping "
                                          r"\(.+\): quote each item that holds brackets \(\[a=1, \"data.people=\[2,3\]\"\]\)"):
        load_config(model, overrides=["question=q", "out_dir=x", "runs.a.command=train", override])
    quoted = load_config(Toy, overrides=["name='[INST] go'"]).name
    assert quoted == "[INST] go"
    assert parse_overrides(['x=[a=1, "data.people=[2,3]"]']) == {"x": ["a=1", "data.people=[2,3]"]}


def test_a_mapping_value_with_a_key_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^override 'optim=\{lr: 1, lr: 2\}': key 'lr' appears twice$"):
        parse_overrides(["optim={lr: 1, lr: 2}"])


@pytest.mark.parametrize("override, comment", [
    ("prompt.system_prompt=Solve it. #1 rule: be brief", "#1 rule: be brief"), ("out_dir=runs/exp #2", "#2"),
    ("prompt.system_prompt=#1", "#1"), ("data.people=[2, 3] # two levels", "# two levels"),
])
def test_a_value_yaml_would_cut_at_a_comment_is_refused(override: str, comment: str) -> None:
    """YAML reads `` #…`` as a comment: ``prompt.system_prompt=Solve it. #1 rule`` became ``Solve it.`` silently."""
    key = override.partition("=")[0]
    with pytest.raises(ConfigError, match=rf"^override {re.escape(repr(override))}: YAML reads "
                                          rf"{re.escape(repr(comment))} as a comment and drops it; quote the value "
                                          rf"\({re.escape(key)}='\.\.\.'\)"):
        load_config(TrainConfig, overrides=[override])


@pytest.mark.parametrize("override, value", [
    ("prompt.system_prompt='Solve it. #1 rule'", "Solve it. #1 rule"), ('prompt.system_prompt="#1"', "#1"),
    ("prompt.system_prompt=C# or F#", "C# or F#"), ("prompt.system_prompt=a#b", "a#b"),
])
def test_a_hash_that_is_not_a_comment_is_kept(override: str, value: str) -> None:
    assert load_config(TrainConfig, overrides=[override]).prompt.system_prompt == value


@pytest.mark.parametrize("override, read_as", [
    ("prompt.system_prompt=Answer: think first", "a mapping"), ("prompt.system_prompt=- think", "a list"),
])
def test_text_yaml_reads_as_a_mapping_or_list_says_to_quote_it(override: str, read_as: str) -> None:
    with pytest.raises(ConfigError, match=rf"^prompt.system_prompt: Input should be a valid string: YAML read the "
                                          rf"value as {read_as} .*; quote it \(prompt.system_prompt='\.\.\.'\)$"):
        load_config(TrainConfig, overrides=[override])
    assert load_config(TrainConfig, overrides=["prompt.system_prompt='Answer: think first'"]).prompt.system_prompt \
        == "Answer: think first"
