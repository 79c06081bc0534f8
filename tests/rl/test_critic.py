"""PPO's value model (logicrl.rl.critic): gradient checkpointing gives the same values and gradients.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/rl/test_critic.py -q
"""

from __future__ import annotations

import torch

from logicrl.engine.compat import enable_activation_checkpointing
from logicrl.engine.sequences import positions_from_mask
from logicrl.models import build_tiny_model
from logicrl.rl.critic import ValueModel


def values_and_grads(critic: ValueModel, ids, mask, n_response: int):
    critic.zero_grad()
    values = critic(ids, mask, positions_from_mask(mask), n_response)
    (values * torch.linspace(-1, 2, n_response)).sum().backward()
    grads = {name: p.grad.clone() for name, p in critic.named_parameters() if p.grad is not None}
    critic.zero_grad()
    return values.detach(), grads


def test_gradient_checkpointing_gives_the_same_values_and_gradients():
    policy = build_tiny_model()[0]
    plain = ValueModel(policy).train()
    torch.nn.init.normal_(plain.head.weight, std=0.1)  # a zero head would give the body no gradient
    enable_activation_checkpointing(policy)
    checkpointed = ValueModel(policy).train()  # the trainer copies the body after enabling checkpointing
    checkpointed.load_state_dict(plain.state_dict())
    assert checkpointed.body.gradient_checkpointing and not plain.body.gradient_checkpointing
    ids = torch.randint(3, 200, (3, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[0, :2] = 0  # a left-padded prompt
    expected, expected_grads = values_and_grads(plain, ids, mask, 4)
    values, grads = values_and_grads(checkpointed, ids, mask, 4)
    torch.testing.assert_close(values, expected, atol=1e-6, rtol=0)
    assert grads.keys() == expected_grads.keys() and len(grads) > 2
    for name, grad in expected_grads.items():
        torch.testing.assert_close(grads[name], grad, atol=1e-6, rtol=1e-5)
