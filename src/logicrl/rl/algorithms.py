"""Public facade of logicrl's RL algorithms: pure tensor functions, each citing its formula and source.

    advantages  GRPO (Dr.GRPO via scale_by_std=False), RLOO, REINFORCE++, REINFORCE++-baseline, GAE,
                masked whitening, and the ADVANTAGE_ESTIMATORS registry (one signature for all)
    kl          k1/k2/k3/abs/k3+ estimators, KL as a loss or in the reward, fixed/adaptive controllers
    losses      loss aggregation modes (AGGREGATIONS registry), clipped policy loss (dual clip), clipped value
                loss; token entropy (entropy_from_logits) lives with the log-probs in logicrl.engine.logprobs
    policy_losses  the POLICY_LOSSES registry: vanilla (the clipped loss), gspo, cispo (one signature)

The formulas, their papers, the veRL functions they mirror and where we differ are in docs/algorithms.md.
Import from here (`from logicrl.rl.algorithms import grpo_advantages`); the submodules are an internal split.
"""

from logicrl.engine.logprobs import entropy_from_logits
from logicrl.rl.advantages import (
    ADVANTAGE_ESTIMATORS,
    AdvantageEstimator,
    AdvantageInputs,
    AdvantageOutputs,
    discounted_returns,
    gae_advantages,
    get_advantage_estimator,
    grpo_advantages,
    masked_whiten,
    register_advantage,
    reinforce_pp_advantages,
    reinforce_pp_baseline_advantages,
    rloo_advantages,
)
from logicrl.rl.kl import (
    KL_ESTIMATORS,
    AdaptiveKLController,
    FixedKLController,
    kl_estimate,
    kl_loss,
    register_kl_estimator,
    token_rewards_from_scores,
)
from logicrl.rl.losses import (
    AGGREGATIONS,
    aggregate,
    get_aggregation,
    masked_mean,
    policy_loss,
    policy_loss_with_stats,
    register_aggregation,
    value_loss,
    value_loss_with_stats,
)
from logicrl.rl.policy_losses import (
    POLICY_LOSSES,
    PolicyLoss,
    cispo_loss_with_stats,
    get_policy_loss,
    gspo_loss_with_stats,
    register_policy_loss,
    tis_weights,
)

__all__ = [
    # advantages
    "ADVANTAGE_ESTIMATORS",
    "AdvantageEstimator",
    "AdvantageInputs",
    "AdvantageOutputs",
    "discounted_returns",
    "gae_advantages",
    "get_advantage_estimator",
    "grpo_advantages",
    "masked_whiten",
    "register_advantage",
    "reinforce_pp_advantages",
    "reinforce_pp_baseline_advantages",
    "rloo_advantages",
    # kl
    "KL_ESTIMATORS",
    "AdaptiveKLController",
    "FixedKLController",
    "kl_estimate",
    "kl_loss",
    "register_kl_estimator",
    "token_rewards_from_scores",
    # losses
    "AGGREGATIONS",
    "aggregate",
    "entropy_from_logits",
    "get_aggregation",
    "masked_mean",
    "policy_loss",
    "policy_loss_with_stats",
    "register_aggregation",
    "value_loss",
    "value_loss_with_stats",
    # policy losses
    "POLICY_LOSSES",
    "PolicyLoss",
    "cispo_loss_with_stats",
    "get_policy_loss",
    "gspo_loss_with_stats",
    "register_policy_loss",
    "tis_weights",
]
