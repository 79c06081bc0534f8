"""PPO's value model (logicrl.rl.critic): gradient checkpointing gives the same values and gradients.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/rl/test_critic.py -q
"""

from __future__ import annotations

import pytest
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


def test_a_critic_made_from_a_lora_policy_is_a_whole_model_of_its_weights():
    """`optim.stage_reset` makes a new critic from the stage's actor; in a LoRA run that is a peft model, whose
    base is frozen: the critic copied its adapter layers and trained only them and the head. It is now the plain
    model with the trained adapter merged in, every weight trainable, as a run's first critic is."""
    pytest.importorskip("peft")
    from logicrl.models.lora import lora_model
    from logicrl.rl.config import LoraConfig

    policy = lora_model(build_tiny_model()[0], LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    for name, weight in policy.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(weight, std=0.1)  # a trained adapter (B = 0 would merge to the base)
    critic = ValueModel(policy)
    names = [name for name, _ in critic.named_parameters()]
    assert not any("lora" in name for name in names) and all(p.requires_grad for p in critic.parameters())
    ids = torch.randint(0, policy.config.vocab_size, (2, 6))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        expected = policy.get_base_model().get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
        got = critic.body(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(got, expected.float(), rtol=1e-4, atol=1e-5)  # the actor with its adapter
    assert any(p.requires_grad is False for p in policy.parameters())  # the policy itself is left as it was
    assert not shared_storage(policy, critic)


def shared_storage(a: torch.nn.Module, b: torch.nn.Module) -> set[int]:
    return {p.data_ptr() for p in a.parameters()} & {p.data_ptr() for p in b.parameters()}


def test_a_critic_is_a_copy_that_leaves_the_policy_alone():
    policy = build_tiny_model()[0]
    before = {name: p.detach().clone() for name, p in policy.named_parameters()}
    critic = ValueModel(policy)
    assert not shared_storage(policy, critic)
    for p in critic.body.parameters():
        p.data.add_(1.0)
    assert all(torch.equal(p, before[name]) for name, p in policy.named_parameters())


@pytest.mark.parametrize("targets", [["foo_proj"], ["q_proj", "foo_proj"]])
def test_a_lora_target_the_model_lacks_is_one_line(targets):
    """A misspelt target: peft raised a traceback when no target matched and silently skipped one when another
    matched; both are a UserError naming it and the model's linear layers."""
    pytest.importorskip("peft")
    from logicrl.errors import UserError
    from logicrl.models.lora import lora_model
    from logicrl.rl.config import LoraConfig

    with pytest.raises(UserError, match=r"^model.lora.target_modules: this model has no linear layer named "
                                        r"foo_proj \(its linear layers: down_proj, gate_proj, k_proj, lm_head, "):
        lora_model(build_tiny_model()[0], LoraConfig(r=4, target_modules=targets))
