"""``logicrl eval``: accuracy by number of people (the paper's Table 2), pass@k and majority vote; and
``logicrl eval memorization``: Acc, CR and LiMem on puzzles and their perturbed twins (Xie et al. 2024).

Both write ``<out>/samples/<label>.jsonl`` (one scored row per sample) and their tables as Markdown, CSV and
JSON; ``--rescore`` scores the saved samples again (e.g. with another ``--reward-mode``) without a model.
Options override config keys (`logicrl.evaluate.config`); positional ``key=value`` overrides reach the others,
as for every other command (``--set key=value`` is a deprecated alias).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
from tqdm import tqdm
from typer.core import TyperGroup

from logicrl.cli.output import plain_console, print_line, print_table
from logicrl.config import checkpoint_run_config, load_config
from logicrl.errors import DataError, UserError
from logicrl.evaluate.compare import compare_rows, comparison_table, first_samples
from logicrl.evaluate.config import (
    BackendConfig,
    EvalConfig,
    MemorizationConfig,
    RunConfig,
    rescored_config,
    shared_settings,
)
from logicrl.evaluate.endpoint import endpoint_client, endpoint_key
from logicrl.evaluate.memorization import collect_twins, memorization_table, twin_of_another_kind
from logicrl.evaluate.metrics import accuracy_table, by_puzzle
from logicrl.evaluate.runner import (
    SAMPLES_DIR,
    ModelSpec,
    model_rows,
    parse_model_specs,
    read_generation,
    remove_journals,
    rescored_files,
    saved_levels,
    saved_specs,
    select_records,
)
from logicrl.evaluate.tables import (
    csv_text,
    extra_metrics,
    markdown,
    memorization_json,
    memorization_rows,
    metric_table,
    results_csv,
    results_json,
    table2,
)
from logicrl.io import (
    FolderLock,
    atomic_write_text,
    check_not_another_output,
    check_output_dir,
    read_json_object,
    restored_on_failure,
)
from logicrl.models import ModelNotFoundError, check_model_name, resolve_device
from logicrl.prompts import prompt_drift
from logicrl.puzzles.files import dataset_files, dataset_operators, distinct_by_id, load_records, load_twins
from logicrl.puzzles.perturb import PERTURBATIONS
from logicrl.puzzles.record import people_of
from logicrl.puzzles.sampler import ALL_OPERATORS


class EvalGroup(TyperGroup):
    """``logicrl eval [OPTIONS] [KEY=VALUE]...`` or ``logicrl eval memorization ...``: a sub-command is
    recognised only as the first argument; otherwise options and overrides may come in any order."""

    allow_interspersed_args = True

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] in self.commands:
            super().parse_args(ctx, [])  # this command's own parameters at their defaults
            ctx._protected_args, ctx.args = args[:1], args[1:]
            return ctx.args
        return super().parse_args(ctx, args)


eval_app = typer.Typer(
    help="Accuracy by number of people (the paper's Table 2) with format rate and length; pass@k and "
    "majority vote with -k > 1. `logicrl eval memorization`: Acc, CR and LiMem on perturbed twins.",
    cls=EvalGroup,
    invoke_without_command=True,
)
console = plain_console()


def _opt(kind: Any, text: str, *names: str) -> Any:
    return Annotated[kind | None, typer.Option(*names, help=text)]


Models = _opt(list[str], "alias, checkpoint dir, hub id or served name; 'label=model' names the row; "
              "repeatable", "--model", "-m")
Data = _opt(Path, "dataset directory (`logicrl data generate`) or puzzle file")
People = _opt(str, "numbers of people: '2-8' or '2,4,8' (default: 2-8)")
Limit = _opt(int, "first N puzzles per number of people")
TestSplit = _opt(str, "split of a dataset directory (default: test)")
TrainSplit = _opt(str, "split of a dataset directory (default: train)")
Samples = _opt(int, "responses per puzzle, for pass@k and maj@k (default: 1)", "--samples", "-k")
Kinds = _opt(str, "comma-separated perturbations (default: all): " + ",".join(PERTURBATIONS))
Twins = _opt(str, "auto (public twins beside --data, else made), own (always made), or a folder of twins "
             "(public layout, or `logicrl data perturb`'s --out)")
Temperature = _opt(float, "0 = greedy (default: 0)")
MaxTokens = _opt(int, "response length cap in tokens (default: 1024)")
Seed = _opt(int, "sampling seed")
BatchSize = _opt(int, "rows per generate call (local backend)")
Device = _opt(str, "local backend device: auto, cpu, cuda, cuda:N")
Endpoint = _opt(str, "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
Concurrency = _opt(int, "requests in flight (endpoint)")
RewardMode = _opt(str, "strict (default) or logic-rl")
Template = _opt(str, "chat (instruct models, default) or plain (base models)")
Rescore = Annotated[bool, typer.Option(help="score the samples saved in --out again instead of generating")]
ConfigOpt = _opt(Path, "YAML file with config keys", "--config", "-c")
Sets = Annotated[list[str] | None, typer.Option("--set", hidden=True, help="deprecated: give key=value")]
Overrides = Annotated[list[str] | None, typer.Argument(
    help="config overrides, key=value (e.g. reward.mode=logic-rl top_p=0.95); keys: logicrl.evaluate.config")]


def eval_config(model: type[RunConfig], config: Path | None, overrides: list[str], reward_mode: str | None,
            template: str | None, **explicit: Any) -> Any:
    """Defaults < YAML < options < ``key=value`` overrides."""
    nested = {"reward": {"mode": reward_mode} if reward_mode else None,
              "prompt": {"template": template} if template else None}
    return load_config(model, config, overrides, **explicit, **nested)


def _overrides(sets: list[str] | None, overrides: list[str] | None) -> list[str]:
    """The positional overrides, after those of the deprecated ``--set`` (with a warning when it is used)."""
    if sets:
        print(f"warning: --set is deprecated; give the overrides as arguments: {' '.join(sets)}",
              file=sys.stderr)
    return [*(sets or []), *(overrides or [])]


def model_specs(models: list[str] | None, out: Path, rescore: bool, summary: str) -> list[ModelSpec]:
    """The ``--model`` specs; for a ``--rescore`` without them, the models saved in ``out`` in the order its
    ``summary`` file lists them."""
    if models:
        return parse_model_specs(models)
    if rescore:
        return saved_specs(out, summary)
    raise UserError("give at least one --model (or --rescore to score the samples saved in --out)")


def _data(data: Path | None) -> Path:
    if data is None:
        raise UserError("give --data: a dataset directory (make one with `logicrl data generate`) or a file")
    return data


def warn_file_split(cfg: RunConfig, data: Path) -> None:
    """A warning when a split is given with a file as ``--data``: a file is read whole (`start_results` records
    no split for it)."""
    if data.is_file() and "split" in cfg.model_fields_set:
        print(f"warning: --data {data} is a file, read whole: split={cfg.split} not used", file=sys.stderr)


def check_before_loading(specs: list[ModelSpec], cfg: BackendConfig, out: Path, rescore: bool,
                         summary: str) -> None:
    """Refuse, before the first model loads and before ``out`` is touched, what would fail after it: an output
    folder that cannot take the results or holds another command's (``summary``: this command's own file), an
    endpoint's unset key variable or a server that is not there (`EndpointClient.check_reachable`), and (local
    backend) a device this machine lacks or a model name that cannot
    be a model."""
    check_output_dir(out)
    check_not_another_output(out, own=summary)
    if summary == RESULT_FILES[0]:
        check_same_eval_command(out, cfg)
    if (out / SAMPLES_DIR).exists() and not (out / SAMPLES_DIR).is_dir():
        raise UserError(f"--out {out}: {out / SAMPLES_DIR} is a file, not a folder; choose another --out")
    if rescore:
        return
    if cfg.endpoint:
        endpoint_key(cfg.api_key_env, cfg.endpoint)  # set, and safe to send there
        client = endpoint_client(cfg.endpoint, "", api_key_env=cfg.api_key_env, timeout_s=cfg.timeout_s,
                                 retries=cfg.retries)
        try:  # a server that is not there must not cost the earlier results, which the run replaces
            client.check_reachable()
        finally:
            client.close()
        return
    resolve_device(cfg.device)
    for spec in specs:
        try:
            check_model_name(spec.name)
        except ModelNotFoundError as exc:
            raise UserError(str(exc)) from None
        if drift := prompt_drift(spec.name, cfg.prompt):
            warnings.warn(drift, stacklevel=2)


def trained_on(model: str, records: list[dict]) -> str | None:
    """A warning when puzzles of ``records`` are among the training puzzles of the logicrl checkpoint ``model``
    (``RUN/checkpoints/step_N``: its run's ``config.yaml`` names ``data.train``; the train split of that dataset,
    by content id, where it can still be read), else None: held-out accuracy would count puzzles it trained on
    (a test set made apart from a dataset that drew train first repeats its first training puzzles)."""
    data = (checkpoint_run_config(model) or {}).get("data")
    train = data.get("train") if isinstance(data, dict) else None
    if not isinstance(train, str) or not train:
        return None
    try:
        trained = {str(r["id"]) for r in load_records(dataset_files(Path(train), "train"))}
    except (UserError, OSError):
        return None  # the run's data is gone or unreadable: nothing to compare
    shared = sum(str(r["id"]) in trained for r in records)
    if not shared:
        return None
    return (f"{shared} of the {len(records)} puzzles evaluated are among the training puzzles of {model} "
            f"({train}, train split): its accuracy on them is not held out; evaluate on that dataset's test split, "
            "or on a test set drawn with it (same seed, test_first)")


RESULT_FILES = ("results.json", "table.md", "table.csv", "compare.json")
MEMORIZATION_FILES = ("memorization.json", "memorization.md", "memorization.csv")
MATH_ONLY_KEY = "check_timeout_s"  # a key of the config that `logicrl eval math` records, and only it


def check_same_eval_command(out: Path, cfg: BackendConfig) -> None:
    """`logicrl eval` and `logicrl eval math` both write results.json: refuse the other's folder, told apart by
    `MATH_ONLY_KEY` in the config its results.json records (a math eval into a puzzle eval's --out replaced its
    tables and put math samples beside its puzzle samples, which a later --rescore then failed on)."""
    earlier = read_json_object(out / RESULT_FILES[0]).get("config")
    if isinstance(earlier, dict) and (MATH_ONLY_KEY in earlier) != (MATH_ONLY_KEY in type(cfg).model_fields):
        other = "logicrl eval math" if MATH_ONLY_KEY in earlier else "logicrl eval"
        raise UserError(f"--out {out} holds an evaluation by `{other}` (results.json): its files would be "
                        "overwritten or mixed with these; choose another --out")


def start_results(cfg: BackendConfig, out: Path, files: tuple[str, ...], specs: list[ModelSpec],
                  rescore: bool, data: Path | list[Path]) -> dict[str, Any]:
    """The config to record in ``out``'s summary, ``files[0]`` (`recorded_config`), with the ``data`` read (the
    ``--data`` path, or paths; no split for a file, read whole). A run that generates first deletes the earlier run's ``files``: they describe
    samples it replaces, and if it is cut short they must not stand beside its new samples (nor give a later
    ``--rescore`` their settings)."""
    config = recorded_config(cfg, out, files[0], specs, rescore)
    config["data"] = [str(p) for p in data] if isinstance(data, list) else str(data)
    if isinstance(data, Path) and data.is_file() and "split" in config:
        config["split"] = None  # a file is read whole
    if not rescore:
        for name in files:
            (out / name).unlink(missing_ok=True)
    return config


def recorded_config(cfg: BackendConfig, out: Path, summary: str, specs: list[ModelSpec],
                    rescore: bool) -> dict[str, Any]:
    """The config that the ``summary`` file (results.json, memorization.json) records: ``cfg``. After
    ``--rescore``, the generation settings are those that made the samples, as each sample file's record says
    (`logicrl.evaluate.runner.save_generated`; in a folder from before those records, as the earlier ``summary``
    says): only those every file shares are recorded, and a warning names those that differ. Generation options
    given now with other values are not used, and a warning says so. Call before ``summary`` is written again."""
    config = cfg.model_dump(mode="json")
    if not rescore:
        return config
    made = {spec.label: read_generation(out, spec) for spec in specs}
    if any(settings is not None for settings in made.values()):
        source = f"{SAMPLES_DIR}/<label>.generation.json"
        generated_with, differing, unrecorded = shared_settings(made)
    else:  # sample files from before the records: the earlier summary's config, if it is readable
        source, differing, unrecorded = summary, {}, []
        generated_with = read_json_object(out / summary).get("config")
    recorded, ignored = rescored_config(config, generated_with if isinstance(generated_with, dict) else None,
                                        cfg.model_fields_set)
    what = [f"{key} ({', '.join(f'{label}={json.dumps(v)}' for label, v in values.items())})"
            for key, values in differing.items() if key in config]
    what += [f"no record for {', '.join(unrecorded)}"] if unrecorded else []
    if what:
        print(f"warning: the saved samples were not all made with the same settings: {'; '.join(what)}; "
              f"{summary} records only the settings they share", file=sys.stderr)
    if ignored:
        now = ", ".join(f"{k}={json.dumps(config[k])}" for k in ignored)
        then = ", ".join(f"{k}={json.dumps(recorded[k])}" for k in ignored)
        print(f"warning: --rescore scores the saved samples as they are: {now} not used (they were made with "
              f"{then}, as {source} records)", file=sys.stderr)
    return recorded


def with_saved_levels(cfg: RunConfig, out: Path, specs: list[ModelSpec]) -> RunConfig:
    """``cfg`` with the numbers of people of the samples saved in ``out`` (a ``--rescore`` without ``--people``:
    the default 2–8 would leave other levels out and write tables without them)."""
    levels = saved_levels(out, specs)
    return cfg.model_copy(update={"people": levels}) if levels else cfg


Config = TypeVar("Config", bound=RunConfig)


def without_limit(cfg: Config) -> Config:
    """``cfg`` without its ``limit``, for a ``--rescore`` (of `logicrl eval`, `eval memorization` or `eval math`),
    which scores every saved sample again: a warning says so when one was given, and the summary records none."""
    if cfg.limit is None:
        return cfg
    print(f"warning: --rescore scores every saved sample: limit={cfg.limit} not used", file=sys.stderr)
    return cfg.model_copy(update={"limit": None})


def rescore_config(cfg: Config, out: Path, specs: list[ModelSpec]) -> Config:
    """A ``--rescore``'s config (`logicrl eval`, `eval memorization`): the saved samples' levels unless
    ``--people`` is given (`with_saved_levels`), and no limit (`without_limit`)."""
    if "people" not in cfg.model_fields_set:
        cfg = with_saved_levels(cfg, out, specs)
    return without_limit(cfg)


def warn_unpaired(rows_by_label: dict[str, list[dict[str, Any]]]) -> None:
    """A warning when the models' rows are not of the same puzzles (several evaluations with other --limit,
    --people or --data into one --out): their accuracies then differ by what was asked, and the paired
    differences count only the puzzles they share."""
    ids = {label: {str(r.get("id")) for r in rows} for label, rows in rows_by_label.items()}
    if len({frozenset(v) for v in ids.values()}) > 1:
        shared = len(set.intersection(*ids.values()))
        counts = ", ".join(f"{label} {len(v)}" for label, v in ids.items())
        print(f"warning: the models were scored on different puzzles ({counts}; {shared} shared): their "
              "accuracies are not comparable, and the paired differences use the shared ones only",
              file=sys.stderr)


@eval_app.callback()
def eval_cmd(
    ctx: typer.Context, model: Models = None, data: Data = None,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("outputs/eval"),
    people: People = None, split: TestSplit = None, limit: Limit = None, samples: Samples = None,
    temperature: Temperature = None, max_tokens: MaxTokens = None, seed: Seed = None,
    batch_size: BatchSize = None, device: Device = None, endpoint: Endpoint = None,
    concurrency: Concurrency = None, reward_mode: RewardMode = None, template: Template = None,
    rescore: Rescore = False, config: ConfigOpt = None, sets: Sets = None, overrides: Overrides = None,
) -> None:
    """Accuracy by number of people (Table 2) with format rate and length; pass@k and maj@k with -k > 1."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = eval_config(EvalConfig, config, _overrides(sets, overrides), reward_mode, template,
                  people=people, split=split, limit=limit, samples=samples, temperature=temperature,
                  max_tokens=max_tokens, seed=seed, batch_size=batch_size, device=device, endpoint=endpoint,
                  concurrency=concurrency)
    specs = model_specs(model, out, rescore, RESULT_FILES[0])
    if not rescore:
        cfg.ks(cfg.samples)  # pass_k within the samples, before hours of generation
    else:
        cfg = rescore_config(cfg, out, specs)
    warn_file_split(cfg, _data(data))
    records = select_records(data, cfg.split, cfg.people, cfg.limit, every_level="people" in cfg.model_fields_set)
    check_before_loading(specs, cfg, out, rescore, RESULT_FILES[0])
    for spec in specs if not rescore else []:
        if seen := trained_on(spec.name, records):
            warnings.warn(seen, stacklevel=1)  # this module's line: shown as a `warning: ...` line
    with FolderLock(out), restored_on_failure(rescored_files(out, specs, rescore)):  # this command's --out
        config = start_results(cfg, out, RESULT_FILES, specs, rescore, data)
        results, rows_by_label = {}, {}
        for spec in specs:
            rows = rows_by_label[spec.label] = _rows(spec, records, cfg, out, n=cfg.samples, rescore=rescore)
            most = max((len(group) for group in by_puzzle(rows).values()), default=1)
            results[spec.label] = accuracy_table(rows, cfg.ks(most))
        warn_unpaired(rows_by_label)
        tables = [("Accuracy by number of people", table2(results))]
        tables += [(metric, metric_table(results, metric)) for metric in extra_metrics(results)]
        if len(specs) > 1:
            base = specs[0].label
            comparisons = {f"{s.label} vs {base}": compare_rows(rows_by_label[base], rows_by_label[s.label])
                           for s in specs[1:]}
            atomic_write_text(out / "compare.json", json.dumps(comparisons, indent=2) + "\n")
            tables.append((f"Paired difference vs {base} (first sample per puzzle; Δ and 95% interval)",
                           comparison_table(comparisons)))
        atomic_write_text(out / "table.md", "\n".join(f"### {title}\n\n{markdown(t)}" for title, t in tables))
        atomic_write_text(out / "table.csv", results_csv(results))
        summary = results_json(results, {s.label: s.name for s in specs}, config)
        atomic_write_text(out / "results.json", json.dumps(summary, indent=2) + "\n")
        for title, table in tables:
            print_table(console, title, *table)
        if not rescore:  # the results are written: nothing left to resume (a rescore keeps a generation's)
            remove_journals(out, specs)
        print_line(console, f"wrote {out}/table.md, table.csv, results.json and samples/")


@eval_app.command("memorization")
def memorization_cmd(
    model: Models = None, data: Data = None,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("outputs/memorization"),
    kinds: Kinds = None, twins: Twins = None, people: People = None, split: TrainSplit = None, limit: Limit = None,
    temperature: Temperature = None, max_tokens: MaxTokens = None, seed: Seed = None,
    batch_size: BatchSize = None, device: Device = None, endpoint: Endpoint = None,
    concurrency: Concurrency = None, reward_mode: RewardMode = None, template: Template = None,
    rescore: Rescore = False, config: ConfigOpt = None, sets: Sets = None, overrides: Overrides = None,
) -> None:
    """Acc, CR and LiMem = Acc·(1 − CR) per number of people and perturbation kind (Xie et al. 2024)."""
    cfg = eval_config(MemorizationConfig, config, _overrides(sets, overrides), reward_mode, template,
                  kinds=kinds, twins=twins, people=people, split=split, limit=limit, temperature=temperature,
                  max_tokens=max_tokens, seed=seed, batch_size=batch_size, device=device, endpoint=endpoint,
                  concurrency=concurrency)
    specs = model_specs(model, out, rescore, MEMORIZATION_FILES[0])
    if rescore:
        cfg = rescore_config(cfg, out, specs)
    warn_file_split(cfg, _data(data))
    originals, repeats = distinct_by_id(select_records(data, cfg.split, cfg.people, cfg.limit,
                                                       every_level="people" in cfg.model_fields_set))
    if repeats:  # one puzzle counted twice would weigh double in Acc, CR and LiMem
        print(f"warning: {repeats} puzzle(s) of {data} repeat an earlier one (same id): each is measured once",
              file=sys.stderr)
    twin_dir = _data(data) if cfg.twins == "auto" else Path(cfg.twins)
    given = ({} if cfg.twins == "own"
             else load_twins(twin_dir, cfg.split, cfg.kinds, required=cfg.twins != "auto"))
    operators = dataset_operators(_data(data)) or ALL_OPERATORS  # a statement twin's, as the dataset's were drawn
    twin_records, pairs, sources = collect_twins(originals, cfg.kinds, cfg.perturb_seed, given, operators)
    check_before_loading(specs, cfg, out, rescore, MEMORIZATION_FILES[0])
    with FolderLock(out), restored_on_failure(rescored_files(out, specs, rescore)):  # this command's --out
        config = start_results(cfg, out, MEMORIZATION_FILES, specs, rescore, data)
        console.print("twins: " + ", ".join(f"{kind} {len(p)}/{len(originals)} ({sources[kind]})"
                                            for kind, p in pairs.items()))
        levels = {str(r["id"]): people_of(r) for r in originals}
        results = {}
        for spec in specs:
            rows = _rows(spec, originals + twin_records, cfg, out, n=1, rescore=rescore,
                         aside=lambda puzzle_id: twin_of_another_kind(puzzle_id, cfg.kinds))
            solved = {key: bool(row["solved"]) for key, row in first_samples(rows).items()}
            # the pairs of the originals answered (a rescore scores the saved samples, made with any --limit)
            answered = {kind: [p for p in kind_pairs if p[0] in solved] for kind, kind_pairs in pairs.items()}
            missing = [twin for kind_pairs in answered.values() for _, twin in kind_pairs if twin not in solved]
            if missing:
                raise DataError(f"{spec.label}: no sample of {len(set(missing))} puzzle(s) of these "
                                f"twins, e.g. {missing[0]!r} (rescore with the --data, --kinds and --twins "
                                "they were made with)")
            results[spec.label] = memorization_table(solved, levels, answered)
        table = memorization_rows(results)
        atomic_write_text(out / "memorization.md", markdown(table))
        atomic_write_text(out / "memorization.csv", csv_text(table))
        summary = memorization_json(results, config)
        atomic_write_text(out / "memorization.json", json.dumps(summary, indent=2) + "\n")
        if not rescore:
            remove_journals(out, specs)
        print_table(console, "Memorization (Xie et al. 2024): LiMem = Acc·(1 − CR)", *table, labels=2)
        print_line(console, f"wrote {out}/memorization.md, memorization.csv, memorization.json and samples/")


def _rows(
    spec: ModelSpec, records: list[dict], cfg: RunConfig, out: Path, *, n: int, rescore: bool,
    aside: Callable[[str], bool] | None = None,
) -> list[dict]:
    """One model's scored rows (`model_rows`), with a progress bar and the time taken."""
    start = time.perf_counter()
    with tqdm(total=len(records), desc=spec.label, unit="pz", disable=rescore) as bar:
        rows = model_rows(spec, records, cfg, out, n=n, rescore=rescore, progress=bar.update,
                          status=bar.set_postfix_str, aside=aside)
    verb = "rescored" if rescore else "generated"
    console.print(f"{spec.label}: {verb} {len(rows)} samples in {time.perf_counter() - start:.1f}s")
    return rows
