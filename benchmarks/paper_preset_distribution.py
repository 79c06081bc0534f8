"""Does `logicrl data generate --preset paper` sample what the public K&K generator samples? Per level and
split, its puzzles against the public generator's own sampler (``KKProblemSampler`` of Xie et al. 2024, as
ported verbatim in reasoning-gym's knights_knaves.py; no public data file is read):

* operator mix — the top operator of every statement (leaf, not, and, or, ->, <=>): χ² test of homogeneity;
* depth share — statements of depth 2 vs 1: χ² test (2 × 2);
* quiz length — characters of the quiz: two-sample Kolmogorov–Smirnov test. The reference statements are
  rendered with logicrl's ``public`` text style (the public generator's wording), random names and
  templates, so the test compares what the statements make of the text.

The reference draws as the public generator does: one stream of unique puzzles per level, test first, then
train. At 2 people only 399 unique puzzles exist, so the split a puzzle lands in changes its distribution
(a puzzle drawn late is one the earlier draws did not take): the reference for a split is the same slice of
many independent streams, and the table also shows logicrl's old order (test drawn after 200 train), which
the preset's ``test_first`` replaces. Large p-values = no detectable difference.

Run:  .venv/bin/python benchmarks/paper_preset_distribution.py            (about 3 minutes)
      .venv/bin/python benchmarks/paper_preset_distribution.py --quick    (levels 2 and 3, ~1 minute)
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections import Counter

from logicrl.puzzles.dataset import PRESETS, DataConfig, generate
from logicrl.puzzles.logic import statements_from_json
from logicrl.puzzles.names import COMMON_NAMES, Roles
from logicrl.puzzles.render import PUBLIC_SPEECH_TEMPLATES, quiz_text

OPS = ["leaf", "not", "and", "or", "->", "<=>"]


def chi2_sf(x: float, dof: int) -> float:
    """P(χ²_dof ≥ x) = Q(dof/2, x/2), the regularized upper incomplete gamma function (series or continued
    fraction, Numerical Recipes §6.2)."""
    a, z = dof / 2, x / 2
    if z <= 0:
        return 1.0
    log_front = a * math.log(z) - z - math.lgamma(a)
    if z < a + 1:  # series for P, then Q = 1 - P
        term = total = 1 / a
        n = a
        while abs(term) > 1e-15 * abs(total):
            n += 1
            term *= z / n
            total += term
        return max(0.0, 1 - total * math.exp(log_front))
    b, c, d = z + 1 - a, 1e300, 1 / (z + 1 - a)
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h * math.exp(log_front)


def chi2_homogeneity(a: Counter, b: Counter, keys: list[str]) -> float:
    """p-value of the χ² test that two samples of categories come from one distribution."""
    keys = [k for k in keys if a[k] + b[k] > 0]
    na, nb = sum(a[k] for k in keys), sum(b[k] for k in keys)
    stat = 0.0
    for k in keys:
        total = a[k] + b[k]
        for observed, n in ((a[k], na), (b[k], nb)):
            expected = total * n / (na + nb)
            stat += (observed - expected) ** 2 / expected
    return chi2_sf(stat, len(keys) - 1)


def ks_two_sample(a: list[float], b: list[float]) -> float:
    """p-value of the two-sample Kolmogorov–Smirnov test (asymptotic, with Stephens' small-sample factor)."""
    a, b = sorted(a), sorted(b)
    i = j = 0
    d = 0.0
    while i < len(a) and j < len(b):
        x = min(a[i], b[j])
        while i < len(a) and a[i] == x:
            i += 1
        while j < len(b) and b[j] == x:
            j += 1
        d = max(d, abs(i / len(a) - j / len(b)))
    ne = len(a) * len(b) / (len(a) + len(b))
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    return min(1.0, max(0.0, 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))))


def features(statement_sets: list, quizzes: list[str]) -> tuple[Counter, Counter, list[float]]:
    ops, depths = Counter(), Counter()
    for statements in statement_sets:
        for s in statements:
            ops["leaf" if s.op.is_leaf else s.op.value] += 1
            depths[str(s.depth)] += 1
    return ops, depths, [float(len(q)) for q in quizzes]


def render_public(statements, rng: random.Random) -> str:
    names = rng.sample(COMMON_NAMES, len(statements))
    templates = [rng.randrange(len(PUBLIC_SPEECH_TEMPLATES)) for _ in statements]
    return quiz_text(statements, names, Roles(), templates, style="public")


def reference(n_people: int, start: int, count: int, streams: int, seed: int) -> tuple[list, list[str]]:
    """Puzzles ``start .. start + count`` of ``streams`` independent streams of the public sampler."""
    from reasoning_gym.logic.knights_knaves import KKProblemSampler

    rng = random.Random(seed)
    sets, quizzes = [], []
    for s in range(streams):
        problems = KKProblemSampler(seed * 1000 + s, n_people).sample_valid_problems(start + count)
        for problem in problems[start:start + count]:
            statements = statements_from_json(json.loads(json.dumps(problem["statements"])))
            sets.append(statements)
            quizzes.append(render_public(statements, rng))
    return sets, quizzes


def ours(records: list[dict]) -> tuple[list, list[str]]:
    return [statements_from_json(json.loads(r["statements"])) for r in records], [r["quiz"] for r in records]


def row(label: str, mine: tuple, ref: tuple) -> str:
    (ops_a, dep_a, len_a), (ops_b, dep_b, len_b) = features(*mine), features(*ref)
    share = lambda ops: " ".join(f"{ops[k] / sum(ops.values()):.2f}" for k in OPS)
    return (f"| {label} | {len(mine[0])} | {share(ops_a)} | {share(ops_b)} | "
            f"{chi2_homogeneity(ops_a, ops_b, OPS):.3f} | {dep_a['2'] / sum(dep_a.values()):.3f} / "
            f"{dep_b['2'] / sum(dep_b.values()):.3f} | {chi2_homogeneity(dep_a, dep_b, ['1', '2']):.3f} | "
            f"{sum(len_a) / len(len_a):.0f} / {sum(len_b) / len(len_b):.0f} | {ks_two_sample(len_a, len_b):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="levels 2 and 3 only")
    parser.add_argument("--seed", type=int, default=0, help="seed of the preset and of the reference streams")
    args = parser.parse_args()
    people = [2, 3] if args.quick else list(range(2, 9))
    cfg = DataConfig(**{**PRESETS["paper"], "people": people, "seed": args.seed, "perturb": []})
    splits = generate(cfg)
    old = generate(cfg.model_copy(update={"test_first": False, "people": [2]}))
    print("| level, split | puzzles | operator mix, preset (leaf not and or -> <=>) | public sampler | χ² p |"
          " depth-2 share preset / public | χ² p | mean quiz chars preset / public | KS p |")
    print("|" + " --- |" * 9)
    for n in people:
        n_train = cfg.train_count(n)
        # 2 people: 20 streams of 300 (test = draws 0-99, train = 100-299); else one draw of 1,000 + 100
        streams = 20 if n == 2 else 1
        test_ref = reference(n, 0, 100 if n == 2 else 1000, streams, args.seed + n)
        train_ref = reference(n, 100, n_train if n == 2 else 1000, streams if n == 2 else 1, args.seed + 50 + n)
        print(row(f"{n}, test", ours(splits[n]["test"]), test_ref))
        print(row(f"{n}, train", ours(splits[n]["train"]), train_ref))
        if n == 2:
            print(row("2, test drawn after train (old order)", ours(old[2]["test"]), test_ref))


if __name__ == "__main__":
    main()
