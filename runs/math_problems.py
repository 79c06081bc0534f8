"""Write a small math problem file with known answers (JSONL: id, source, year, problem, answer).

Problems in the answer forms `logicrl eval math` must check: integers (AIME-style 0–999), fractions in
lowest terms (``\\frac{a}{b}``), negative numbers and a solution of a linear equation. Deterministic for a
seed; no data is downloaded. Usage: python runs/math_problems.py OUT.jsonl [--n 30] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
from fractions import Fraction
from pathlib import Path


def problem(rng: random.Random, kind: int) -> tuple[str, str]:
    """One (problem, answer) of the given kind."""
    if kind == 0:
        a, b = rng.randint(100, 999), rng.randint(100, 999)
        return f"What is {a} + {b}?", str(a + b)
    if kind == 1:
        base, power, mod = rng.randint(2, 9), rng.randint(5, 12), rng.choice([7, 11, 13, 17])
        return f"What is the remainder when ${base}^{{{power}}}$ is divided by {mod}?", str(pow(base, power, mod))
    if kind == 2:
        x = Fraction(rng.randint(1, 9), rng.randint(2, 9)) + Fraction(rng.randint(1, 9), rng.randint(2, 9))
        a, b = x.numerator, x.denominator
        text = "Compute $\\frac{%d}{%d}$ in lowest terms." % (a * 3, b * 3)
        return text, str(a) if b == 1 else f"\\frac{{{a}}}{{{b}}}"
    a, x, c = rng.randint(2, 9), rng.randint(-20, 20), rng.randint(-30, 30)
    return f"Solve ${a}x + {c} = {a * x + c}$ for $x$.", str(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = []
    for i in range(args.n):
        text, answer = problem(rng, i % 4)
        rows.append({"id": f"gen-{i:03d}", "source": "generated", "year": 2026, "problem": text, "answer": answer})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"wrote {len(rows)} problems to {args.out}")


if __name__ == "__main__":
    main()
