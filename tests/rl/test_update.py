"""The update step: gradient accumulation is exact, the on-policy shortcut is exact, trimming is harmless.

Each test takes one optimizer step on two copies of the tiny model and compares the parameters.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest
import torch

from logicrl.engine.logprobs import response_logprobs
from logicrl.engine.sequences import left_pad
from logicrl.models import build_tiny_model
from logicrl.rl.batch import RolloutBatch, micro_batches, share, token_budget_batches
from logicrl.rl.config import AlgorithmConfig
from logicrl.rl.critic import ValueModel
from logicrl.rl.losses import masked_mean
from logicrl.rl.update import (
    adamw,
    batch_logprobs,
    batch_values,
    compute_advantages,
    critic_step,
    gradient_lengths,
    optimise,
    policy_step,
    sequence_mean,
)

PROMPT_LENGTHS = [5, 9, 7, 5, 9, 7, 6, 8]
RESPONSE_LENGTHS = [6, 2, 9, 4, 7, 1, 3, 8]


@pytest.fixture(scope="module")
def tiny_policy():
    model, _ = build_tiny_model()
    return model.float().eval()


def make_batch(seed: int = 0, shared_prompts: bool = False) -> RolloutBatch:
    """8 responses to 4 prompts (groups of 2), ragged prompt and response lengths, fixed scores; each row its own
    prompt, or with ``shared_prompts`` one per group (the rollouts of a group answer the same puzzle)."""
    gen = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(3, 200, (n,), generator=gen).tolist() for n in PROMPT_LENGTHS]
    if shared_prompts:
        prompts = [prompts[2 * (i // 2)] for i in range(8)]
    prompt_ids, prompt_mask = left_pad(prompts, pad_id=0)
    width = max(RESPONSE_LENGTHS)
    response_ids = torch.zeros((8, width), dtype=torch.long)
    mask = torch.zeros((8, width))
    for i, n in enumerate(RESPONSE_LENGTHS):
        response_ids[i, :n] = torch.randint(3, 200, (n,), generator=gen)
        mask[i, :n] = 1.0
    scores = torch.tensor([3.0, -1.0, -0.5, 3.0, -3.0, -1.0, 3.0, -0.5])
    return RolloutBatch(prompt_ids, prompt_mask, response_ids, mask, scores, torch.arange(8) // 2)


def one_step(policy, batch: RolloutBatch, algo: AlgorithmConfig, *, on_policy: bool, lr: float = 0.5,
             kl_coef: float = 0.1):
    policy = copy.deepcopy(policy)
    optimizer = torch.optim.SGD(policy.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    policy.train()
    stats = policy_step(policy, optimizer, scheduler, batch, algo, kl_coef=kl_coef, temperature=0.7,
                        norm_constant=16.0 if algo.loss_agg.endswith("norm") else None, grad_clip=1e9,
                        on_policy=on_policy)
    return policy, stats


def prepared(policy, algo: AlgorithmConfig) -> RolloutBatch:
    batch = make_batch()
    batch.old_logp = batch_logprobs(policy, batch, micro_batch_size=8, temperature=0.7)
    batch.ref_logp = batch.old_logp - 0.05 * batch.mask  # a reference slightly away from the policy
    return compute_advantages(batch, algo, kl_coef=0.1)


def assert_same_parameters(a, b, atol=1e-6):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=atol, rtol=0), name


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"])
def test_micro_batches_accumulate_to_the_full_batch_gradient(tiny_policy, agg):
    full = AlgorithmConfig(advantage="grpo", loss_agg=agg, micro_batch_size=8, entropy_coef=0.01)
    micro = full.model_copy(update={"micro_batch_size": 3})
    batch = prepared(tiny_policy, full)
    a, stats_a = one_step(tiny_policy, batch, full, on_policy=False)
    b, stats_b = one_step(tiny_policy, batch, micro, on_policy=False)
    moved = sum(float((p - q).detach().abs().sum()) for p, q in zip(a.parameters(), tiny_policy.parameters()))
    assert moved > 1e-3  # the step did something
    assert_same_parameters(a, b)
    for key in ("policy/loss", "kl", "entropy", "grad_norm"):
        assert stats_a[key] == pytest.approx(float(stats_b[key]), rel=1e-4, abs=1e-6), key


@pytest.mark.parametrize("agg", ["seq-mean-token-mean", "seq-mean-token-sum"])
def test_token_statistics_do_not_depend_on_the_micro_batches(tiny_policy, agg):
    """Under a seq-mean loss each micro-batch's kl was weighted by its share of the responses: the logged kl (and
    the adaptive KL controller's input) changed with micro_batch_size once the KL varies along a response (a
    reference a constant 0.05 away gives the same kl at every token, which hid it)."""
    from logicrl.rl.kl import kl_estimate

    full = AlgorithmConfig(advantage="grpo", loss_agg=agg, micro_batch_size=8)
    batch = prepared(tiny_policy, full)
    batch.ref_logp = batch.old_logp - 0.3 * torch.linspace(-1, 1, batch.mask.shape[1]) * batch.mask
    expected = float(masked_mean(kl_estimate(batch.old_logp, batch.ref_logp, "k3"), batch.mask))
    for size in (8, 3, 1):
        _, stats = one_step(tiny_policy, batch, full.model_copy(update={"micro_batch_size": size}), on_policy=False)
        assert float(stats["kl"]) == pytest.approx(expected, rel=1e-4), size


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean"])
def test_token_budget_micro_batches_give_the_same_step(tiny_policy, agg):
    full = AlgorithmConfig(advantage="grpo", loss_agg=agg, micro_batch_size=8)
    budget = full.model_copy(update={"micro_batch_tokens": 12})  # lengths 9,8,7,6,4,3,2,1 → [9] [8] [7] [6,4] [3,2,1]
    batch = prepared(tiny_policy, full)
    a, stats_a = one_step(tiny_policy, batch, full, on_policy=False)
    b, stats_b = one_step(tiny_policy, batch, budget, on_policy=False)
    assert_same_parameters(a, b)
    assert stats_a["policy/loss"] == pytest.approx(float(stats_b["policy/loss"]), rel=1e-4, abs=1e-6)
    logp = batch_logprobs(tiny_policy, batch, micro_batch_size=8, temperature=0.7, micro_batch_tokens=12)
    assert torch.allclose(logp, batch.old_logp, atol=1e-5)


def test_token_budget_batches_by_hand():
    lengths = torch.tensor(RESPONSE_LENGTHS)  # [6, 2, 9, 4, 7, 1, 3, 8]
    chunks = [c.tolist() for c in token_budget_batches(lengths, 8, 12)]
    assert chunks == [[2], [7], [4], [0, 3], [6, 1, 5]]  # 9 | 8 | 7 | 2·6 ≤ 12 | 3·3 ≤ 12
    assert [c.tolist() for c in token_budget_batches(lengths, 2, 100)] == [[2, 7], [4, 0], [3, 6], [1, 5]]
    assert [c.tolist() for c in token_budget_batches(lengths, 3, None)] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert [c.tolist() for c in token_budget_batches(lengths, 8, 5)] == [[2], [7], [4], [0], [3], [6], [1, 5]]


@pytest.mark.parametrize("advantage", ["reinforce_pp", "grpo", "rloo"])
def test_on_policy_shortcut_equals_a_separate_old_logprob_pass(tiny_policy, advantage):
    algo = AlgorithmConfig(advantage=advantage, micro_batch_size=4)
    batch = prepared(tiny_policy, algo)
    a, stats_a = one_step(tiny_policy, batch, algo, on_policy=True)
    b, stats_b = one_step(tiny_policy, batch, algo, on_policy=False)
    assert_same_parameters(a, b, atol=1e-5)
    assert float(stats_b["policy/clip_frac"]) == 0.0  # ρ = 1 at the first step on fresh rollouts
    assert float(stats_a["policy/loss"]) == pytest.approx(float(stats_b["policy/loss"]), abs=1e-6)
    assert float(stats_a["policy/approx_kl"]) == pytest.approx(float(stats_b["policy/approx_kl"]), abs=1e-6) == 0


def test_select_trims_padding_without_changing_logprobs(tiny_policy):
    batch = make_batch()
    whole = batch_logprobs(tiny_policy, batch, micro_batch_size=8, temperature=1.0)
    rows = torch.tensor([1, 5])  # the two shortest responses and a short+long prompt
    part = batch.select(rows)
    assert part.mask.shape[1] == max(RESPONSE_LENGTHS[1], RESPONSE_LENGTHS[5])
    assert part.prompt_ids.shape[1] == max(PROMPT_LENGTHS[1], PROMPT_LENGTHS[5])
    trimmed = batch_logprobs(tiny_policy, part, micro_batch_size=8, temperature=1.0)
    assert torch.allclose(trimmed, whole[rows, :part.mask.shape[1]], atol=1e-5)


def test_kl_in_the_reward_changes_the_advantages_and_kl_in_the_loss_does_not(tiny_policy):
    in_loss = prepared(tiny_policy, AlgorithmConfig(advantage="reinforce_pp", kl_placement="loss"))
    in_reward = prepared(tiny_policy, AlgorithmConfig(advantage="reinforce_pp", kl_placement="reward"))
    no_kl = prepared(tiny_policy, AlgorithmConfig(advantage="reinforce_pp", kl_placement="none"))
    assert torch.equal(in_loss.advantages, no_kl.advantages)
    assert not torch.allclose(in_reward.advantages, no_kl.advantages)


@pytest.mark.parametrize("policy_loss, agg", [("gspo", "seq-mean-token-mean"), ("cispo", "token-mean")])
def test_registered_policy_losses_accumulate_exactly_and_differ_from_vanilla(tiny_policy, policy_loss, agg):
    """A GSPO/CISPO step over micro-batches of 3 equals the whole-batch step; off-policy (ℓ_old ≠ ℓ) it is not
    the vanilla step, so the configured loss is the one the update runs."""
    full = AlgorithmConfig(advantage="grpo", policy_loss=policy_loss, loss_agg=agg, clip_low=0.01, clip_high=0.01,
                           micro_batch_size=8)
    batch = prepared(tiny_policy, full)
    batch.old_logp = batch.old_logp + 0.05 * torch.randn(batch.mask.shape, generator=torch.Generator().manual_seed(1))
    a, stats = one_step(tiny_policy, batch, full, on_policy=False)
    b, _ = one_step(tiny_policy, batch, full.model_copy(update={"micro_batch_size": 3}), on_policy=False)
    assert_same_parameters(a, b)
    assert 0.0 < float(stats["policy/clip_frac"]) < 1.0
    vanilla, _ = one_step(tiny_policy, batch, full.model_copy(update={"policy_loss": "vanilla"}), on_policy=False)
    assert any(not torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), vanilla.parameters()))


def test_truncated_importance_sampling_weights_the_loss_and_logs_the_ratio(tiny_policy):
    """Sampler log-probs equal to the trainer's: weights 1, the same step as without TIS. Sampler log-probs lower by
    log 3 on every token: ρ = 3 is cut to the cap 2, so every token's policy loss is doubled."""
    algo = AlgorithmConfig(advantage="grpo", micro_batch_size=8)
    batch = prepared(tiny_policy, algo)
    plain, plain_stats = one_step(tiny_policy, batch, algo, on_policy=False)
    tis = algo.model_copy(update={"tis_cap": 2.0})
    batch.rollout_logp = batch.old_logp.clone()
    same, stats = one_step(tiny_policy, batch, tis, on_policy=False)
    assert_same_parameters(plain, same)
    assert float(stats["tis/ratio_mean"]) == pytest.approx(1.0) and float(stats["tis/clip_frac"]) == 0.0
    batch.rollout_logp = batch.old_logp - math.log(3.0) * batch.mask
    doubled, stats = one_step(tiny_policy, batch, tis, on_policy=False)
    assert float(stats["tis/ratio_mean"]) == pytest.approx(3.0) and float(stats["tis/clip_frac"]) == 1.0
    assert float(stats["policy/loss"]) == pytest.approx(2 * float(plain_stats["policy/loss"]), rel=1e-5)
    assert any(not torch.allclose(p, q, atol=1e-6) for p, q in zip(plain.parameters(), doubled.parameters()))


@pytest.mark.parametrize("eps", [1e-8, 1e-3, 10.0])
def test_adamw_eps_enters_the_first_step_as_in_the_formula(eps):
    """Step 1 of AdamW (bias-corrected, no decay): θ − lr · g / (|g| + ε). At ε = 1e-8 every coordinate moves
    by ~lr whatever its gradient (sign descent); at ε ≫ |g| it moves by lr · g / ε (SGD)."""
    torch.manual_seed(0)
    theta = torch.nn.Parameter(torch.randn(64, dtype=torch.float64))
    start = theta.detach().clone()
    grad = torch.randn(64, dtype=torch.float64) * torch.logspace(-6, 0, 64, dtype=torch.float64)
    optimizer = adamw([theta], lr=0.1, eps=eps)
    theta.grad = grad.clone()
    optimizer.step()
    torch.testing.assert_close(theta.detach(), start - 0.1 * grad / (grad.abs() + eps), rtol=1e-6, atol=1e-12)


def test_credit_is_added_on_response_tokens_and_positive_only_clamps_by_hand():
    """GRPO on one group of scores [1, 0]: A = ±1/√2 (std with Bessel's correction: 1/√2 → ±0.7071); the credit
    adds on masked tokens only; positive_only keeps max(A, 0)."""
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    batch = RolloutBatch(torch.zeros(2, 1, dtype=torch.long), torch.ones(2, 1), torch.zeros(2, 3, dtype=torch.long),
                         mask, torch.tensor([1.0, 0.0]), torch.tensor([0, 0]))
    credit = torch.tensor([[0.0, -2.0, 5.0], [1.0, 0.0, 0.0]])
    plain = compute_advantages(copy.deepcopy(batch), AlgorithmConfig(advantage="grpo"), 0.0).advantages
    a = plain[0, 0].item()
    assert a > 0 and torch.allclose(plain, torch.tensor([[a, a, 0.0], [-a, -a, -a]]))
    shaped = compute_advantages(copy.deepcopy(batch), AlgorithmConfig(advantage="grpo"), 0.0, credit).advantages
    assert torch.allclose(shaped, torch.tensor([[a, a - 2, 0.0], [1 - a, -a, -a]]))
    clamped = compute_advantages(copy.deepcopy(batch), AlgorithmConfig(advantage="grpo", positive_only=True), 0.0,
                                 credit).advantages
    assert torch.allclose(clamped, torch.tensor([[a, 0.0, 0.0], [1 - a, 0.0, 0.0]]))


def test_gradient_lengths_by_hand():
    """n_i = 1 + the last position with A ≠ 0 on a response token; None wherever a skipped token would count."""
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    batch = RolloutBatch(torch.zeros(4, 1, dtype=torch.long), torch.ones(4, 1), torch.zeros(4, 4, dtype=torch.long),
                         mask, torch.zeros(4), torch.arange(4))
    batch.advantages = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 5.0, 0.0], [2.0, 0.0, 0.0, 0.0],
                                     [0.0, 0.0, 0.0, -1.0]])  # row 1's 5.0 sits on padding
    algo = AlgorithmConfig(advantage="grpo", kl_coef=0.0)
    assert gradient_lengths(batch, algo, on_policy=True).tolist() == [2, 0, 1, 4]
    assert gradient_lengths(batch, algo.model_copy(update={"policy_loss": "cispo"}), on_policy=True) is not None
    for other in ({"entropy_coef": 0.01}, {"tis_cap": 2.0},
                  {"policy_loss": "gspo", "loss_agg": "seq-mean-token-mean"}):
        assert gradient_lengths(batch, algo.model_copy(update=other), on_policy=True) is None, other
    assert gradient_lengths(batch, algo, on_policy=False) is None
    assert gradient_lengths(replace(batch, advantages=batch.advantages * (1 - mask)), algo, on_policy=True) is None
    batch.ref_logp = torch.zeros(4, 4)  # a KL term (or its statistic) reads every token
    assert gradient_lengths(batch, algo, on_policy=True) is None


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
def test_skipping_tokens_without_gradient_gives_the_same_step(tiny_policy, agg, monkeypatch):
    """Advantages with zero tails and one all-zero row (positive-only updates): the forward that stops at each
    row's last A ≠ 0 gives the same parameters and loss as the one over every token, on fewer tokens."""
    algo = AlgorithmConfig(advantage="grpo", kl_coef=0.0, loss_agg=agg, micro_batch_size=3, micro_batch_tokens=12)
    batch = make_batch()
    gen = torch.Generator().manual_seed(1)
    batch.advantages = torch.randn(batch.mask.shape, generator=gen).clamp(min=0.0) * batch.mask
    batch.advantages[:, 5:] = 0.0  # a tail past the 5th token for the long rows
    batch.advantages[3] = 0.0  # a row with nothing to learn
    lengths = gradient_lengths(batch, algo, on_policy=True)
    assert lengths[3] == 0 and int(lengths.sum()) < int(batch.mask.sum())

    def run(skip: bool):
        seen = []
        hook = tiny_policy.get_input_embeddings().register_forward_hook(lambda m, i, o: seen.append(i[0].numel()))
        if not skip:
            monkeypatch.setattr("logicrl.rl.update.gradient_lengths", lambda *a, **k: None)
        try:
            policy, stats = one_step(tiny_policy, batch, algo, on_policy=True)
        finally:
            hook.remove()
            monkeypatch.undo()
        return policy, stats, sum(seen)

    full, stats_full, tokens_full = run(skip=False)
    short, stats_short, tokens_short = run(skip=True)
    moved = sum(float((p - q).detach().abs().sum()) for p, q in zip(full.parameters(), tiny_policy.parameters()))
    assert moved > 1e-3
    assert_same_parameters(full, short)
    assert float(stats_short["policy/loss"]) == pytest.approx(float(stats_full["policy/loss"]), rel=1e-4, abs=1e-7)
    assert float(stats_short["grad_norm"]) == pytest.approx(float(stats_full["grad_norm"]), rel=1e-4)
    assert tokens_short < tokens_full


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean"])
def test_prompts_once_per_batch_give_the_same_step_on_fewer_tokens(tiny_policy, agg):
    """Groups that share a prompt, spread over length-sorted micro-batches: running each prompt once for the batch
    (forward, then its backward on the summed gradients) gives the parameters, loss and log-probs of running it
    in every micro-batch that holds one of its rows, with fewer token-forwards."""
    once = AlgorithmConfig(advantage="grpo", loss_agg=agg, micro_batch_size=3, micro_batch_tokens=12, kl_coef=0.1)
    each = once.model_copy(update={"prompts_once": False})
    batch = make_batch(shared_prompts=True)
    micro = token_budget_batches(batch.mask.sum(-1), 3, 12)
    assert all(sum(group in batch.group_ids[rows] for rows in micro) == 2 for group in range(4))  # [2] [7] [4] [0 3] [6 1 5]

    def run(algo: AlgorithmConfig):
        seen = []
        hook = tiny_policy.get_input_embeddings().register_forward_hook(lambda m, i, o: seen.append(i[0].numel()))
        try:
            logp = batch_logprobs(tiny_policy, batch, micro_batch_size=3, micro_batch_tokens=12, temperature=0.7,
                                  prompts_once=algo.prompts_once)
            prepared_batch = compute_advantages(replace(batch, old_logp=logp, ref_logp=logp - 0.05 * batch.mask),
                                                algo, kl_coef=0.1)
            policy, stats = one_step(tiny_policy, prepared_batch, algo, on_policy=True)
        finally:
            hook.remove()
        return logp, policy, stats, sum(seen)

    logp_once, policy_once, stats_once, tokens_once = run(once)
    logp_each, policy_each, stats_each, tokens_each = run(each)
    moved = sum(float((p - q).detach().abs().sum()) for p, q in zip(policy_once.parameters(), tiny_policy.parameters()))
    assert moved > 1e-3
    torch.testing.assert_close(logp_once, logp_each, atol=1e-5, rtol=0)
    assert_same_parameters(policy_once, policy_each)
    for key in ("policy/loss", "kl", "entropy", "grad_norm"):
        assert float(stats_once[key]) == pytest.approx(float(stats_each[key]), rel=1e-4, abs=1e-6), key
    assert tokens_once < tokens_each


def test_kl_in_the_loss_moves_the_step(tiny_policy):
    """With kl_placement="loss" the KL term enters the loss: a KL coefficient changes the parameters after a step."""
    algo = AlgorithmConfig(advantage="grpo", kl_placement="loss", micro_batch_size=8)
    batch = make_batch()
    batch.old_logp = batch_logprobs(tiny_policy, batch, micro_batch_size=8, temperature=0.7)
    batch.ref_logp = batch.old_logp - 0.5 * batch.mask  # a reference well away from the policy
    compute_advantages(batch, algo, kl_coef=0.1)
    with_kl, _ = one_step(tiny_policy, batch, algo, on_policy=False, kl_coef=0.5)
    without, _ = one_step(tiny_policy, batch, algo, on_policy=False, kl_coef=0.0)
    assert any(not torch.allclose(p, q, atol=1e-6) for p, q in zip(with_kl.parameters(), without.parameters()))


def test_entropy_bonus_raises_the_entropy(tiny_policy):
    """With zero advantages and no KL the only loss term is -entropy_coef * entropy: a step raises the entropy."""
    algo = AlgorithmConfig(advantage="grpo", micro_batch_size=8, entropy_coef=1.0, kl_coef=0.0)
    batch = make_batch()
    batch.advantages = torch.zeros_like(batch.mask)

    def entropy(model):
        with torch.no_grad():
            _, ent = response_logprobs(model, *batch.model_inputs("cpu"), batch.response_ids, temperature=0.7,
                                       with_entropy=True)
        return float(masked_mean(ent, batch.mask))

    before = entropy(tiny_policy)
    after, _ = one_step(tiny_policy, batch, algo, on_policy=True, lr=1.0, kl_coef=0.0)
    assert entropy(after.eval()) > before + 1e-4


def test_critic_micro_batches_accumulate_to_the_full_batch_step(tiny_policy):
    """critic_step weights each micro-batch's loss: micro_batch_size 3 gives the parameters and critic/loss of 8."""
    torch.manual_seed(0)
    critic = ValueModel(copy.deepcopy(tiny_policy)).train()
    torch.nn.init.normal_(critic.head.weight, std=0.1)
    algo = AlgorithmConfig(advantage="gae", micro_batch_size=8, kl_coef=0.0)
    batch = make_batch()
    batch.values = batch_values(critic, batch, micro_batch_size=8) + 0.3 * batch.mask  # old values off the current
    compute_advantages(batch, algo, 0.0)
    out = {}
    for size in (8, 3):
        model = copy.deepcopy(critic)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        stats = critic_step(model, optimizer, batch, algo.model_copy(update={"micro_batch_size": size}),
                            grad_clip=1e9, norm_constant=None)
        out[size] = model, float(stats["critic/loss"])
    moved = sum(float((p - q).detach().abs().sum()) for p, q in zip(out[8][0].parameters(), critic.parameters()))
    assert moved > 1e-3
    assert out[3][1] == pytest.approx(out[8][1], rel=1e-5)
    assert_same_parameters(out[8][0], out[3][0])


def probe_optimise(epochs: int, mini: int):
    """Run optimise with a step that records each mini-batch's scores and reports its own call number."""
    batch = make_batch()
    seen = []

    def step(mini_batch, whole):
        seen.append(mini_batch.scores.tolist())
        return {"x": torch.tensor(float(len(seen)))}

    algo = AlgorithmConfig(advantage="grpo", update_epochs=epochs, mini_batch_size=mini)
    return seen, optimise(batch, algo, seed=0, step_fn=step)


def test_each_update_epoch_draws_its_own_shuffle():
    """Epoch e shuffles with seed * 1000 + e, so two epochs visit the rows in different orders."""
    seen, _ = probe_optimise(2, 4)
    scores = make_batch().scores
    for epoch in range(2):
        order = torch.randperm(8, generator=torch.Generator().manual_seed(epoch))
        assert seen[2 * epoch] == scores[order[:4]].tolist()
        assert seen[2 * epoch + 1] == scores[order[4:]].tolist()
    assert seen[:2] != seen[2:]


def test_optimise_averages_stats_over_optimizer_steps():
    """One epoch of 4 mini-batches reporting 1, 2, 3, 4: the stats are their mean, 2.5."""
    _, stats = probe_optimise(1, 2)
    assert stats == {"x": 2.5}


def test_entropy_stat_ignores_rows_skipped_for_having_no_gradient(tiny_policy):
    """A row with no advantage is skipped; the entropy statistic is the same as without that row in the batch."""
    algo = AlgorithmConfig(advantage="grpo", kl_coef=0.0, loss_agg="token-mean", micro_batch_size=3,
                           micro_batch_tokens=12)
    batch = make_batch()
    gen = torch.Generator().manual_seed(1)
    batch.advantages = torch.randn(batch.mask.shape, generator=gen).clamp(min=0.0) * batch.mask
    batch.advantages[:, 5:] = 0.0
    batch.advantages[3] = 0.0  # skipped
    _, with_row = one_step(tiny_policy, batch, algo, on_policy=True)
    _, without_row = one_step(tiny_policy, batch.select(torch.tensor([0, 1, 2, 4, 5, 6, 7])), algo, on_policy=True)
    assert float(with_row["entropy"]) == pytest.approx(float(without_row["entropy"]), rel=1e-5)


def test_micro_batches_keep_a_remainder_of_one():
    """Five rows in micro-batches of 2: the last micro-batch holds the fifth row alone."""
    assert [rows.tolist() for rows in micro_batches(torch.arange(5), 2)] == [[0, 1], [2, 3], [4]]


def test_share_counts_only_rows_with_a_response():
    """seq-mean share: one of the two rows with response tokens is half, the empty row does not count."""
    mask = torch.tensor([[1., 1., 0.], [0., 0., 0.], [1., 0., 0.]])
    batch = RolloutBatch(torch.zeros(3, 1, dtype=torch.long), torch.ones(3, 1), torch.zeros(3, 3, dtype=torch.long),
                         mask, torch.zeros(3), torch.arange(3))
    assert share(batch.select(torch.tensor([0])), batch, "seq-mean-token-mean") == 0.5


def test_sequence_mean_weighs_each_response_the_same():
    """Row means 2 and 4 (a row without tokens is left out): 3, where the token mean would be 10/4 = 2.5."""
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0], [5.0, 5.0, 5.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert sequence_mean(values, mask) == pytest.approx(3.0)
    assert sequence_mean(values, torch.zeros_like(mask)) == 0.0
