"""Log-probs and the entropy statistic over the full vocabulary: two passes against one log_softmax (issue #15).

The update's forward ends in [rows, T, V] logits (V = 49,152 for SmolLM2). From them it needs ℓ = log p(token)
(with its gradient) and the entropy H as a statistic (detached). "before" is how logicrl computed them until
2026-12-02: ℓ = z[token] − logsumexp(z), and H from a second log_softmax, p·where(p > 0, log p, 0), summed.
"after" is `logicrl.engine.logprobs.logprobs_and_entropy`: one float32 log_softmax, ℓ gathered from it, and
H = Σ entr(exp(log p)). Each row: forward and the backward of Σℓ, on bf16 logits (as under the recipes' bf16
autocast) or float32 ones, mean of ``--repeat`` timed calls after one untimed; the largest differences of ℓ
and H between the two are printed below the table.

Run:   .venv/bin/python benchmarks/logprob_entropy.py [--rows 8] [--tokens 200] [--threads 2] [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from logicrl.engine.logprobs import logprobs_and_entropy

VOCAB = 49_152  # SmolLM2


def before(logits: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two-pass formulas logicrl used before (token_logprobs + entropy_from_logits, detached)."""
    z = logits.float()
    logp = z.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(z, dim=-1)
    with torch.no_grad():
        log_all = torch.log_softmax(logits.detach().float(), dim=-1)
        p = log_all.exp()
        entropy = -(p * torch.where(p > 0, log_all, 0.0)).sum(-1)
    return logp, entropy


def after(logits: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return logprobs_and_entropy(logits, tokens, with_entropy=True, entropy_grad=False)


def timed(fn, logits: torch.Tensor, tokens: torch.Tensor, repeat: int) -> tuple[float, tuple]:
    seconds, out = [], None
    for i in range(repeat + 1):
        logits.grad = None
        start = time.perf_counter()
        out = fn(logits, tokens)
        out[0].sum().backward()
        if i:
            seconds.append(time.perf_counter() - start)
    return statistics.mean(seconds), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=8, help="rows of a micro-batch")
    parser.add_argument("--tokens", type=int, default=200, help="response tokens per row")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(args.rows, args.tokens, VOCAB, generator=generator)).to(getattr(torch, args.dtype))
    logits.requires_grad_()
    tokens = torch.randint(0, VOCAB, (args.rows, args.tokens), generator=generator)
    print(f"# log-probs + entropy statistic, [{args.rows}, {args.tokens}, {VOCAB}] {args.dtype} logits, "
          f"{args.threads} threads; forward + backward of Σℓ, mean of {args.repeat} after one untimed\n")
    print("| computation | s | speed-up |")
    print("|---|---:|---:|")
    results = {}
    for label, fn in (("before: logsumexp for ℓ, a second log_softmax for H", before),
                      ("after: one log_softmax for both (`logprobs_and_entropy`)", after)):
        results[label] = timed(fn, logits, tokens, args.repeat)
    first = next(iter(results.values()))[0]
    for label, (seconds, _) in results.items():
        print(f"| {label} | {seconds:.3f} | {first / seconds:.2f}× |")
    (logp_a, ent_a), (logp_b, ent_b) = ((t.detach() for t in out) for _, out in results.values())
    print(f"\nlargest |Δℓ| {float((logp_a - logp_b).abs().max()):.1e}, |ΔH| {float((ent_a - ent_b).abs().max()):.1e}")


if __name__ == "__main__":
    main()
