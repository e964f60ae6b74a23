"""The three inverse dynamics models: one call signature, shapes, temperature semantics."""
import pytest
import torch

from fastpolicy_invdyn_ros.core.invdyn import (
    EnhancedInvDynamic,
    InvDynConfig,
    MLPInvDynamic,
    SeqInvDynamic,
    build_invdyn,
)

S, A, L = 6, 3, 3


def make(model_type: str, **overrides) -> torch.nn.Module:
    config = InvDynConfig(model_type=model_type, state_dim=S, action_dim=A, seq_length=L, hidden_dim=64,
                          gru_hidden_dim=32, **overrides)
    return build_invdyn(config)


@pytest.mark.parametrize("model_type, cls", [("mlp", MLPInvDynamic), ("seq", SeqInvDynamic),
                                             ("enhanced", EnhancedInvDynamic)])
def test_one_signature_for_all_models(model_type, cls):
    model = make(model_type).eval()
    assert isinstance(model, cls)
    history, next_state = torch.randn(5, L, S), torch.randn(5, S)
    action = model(history, next_state, temperature=0.3)
    assert action.shape == (5, A)
    loss = model.loss(history, next_state, torch.randn(5, A))
    assert loss.ndim == 0 and torch.isfinite(loss)


@pytest.mark.parametrize("model_type, overrides", [("mlp", {}), ("seq", {}), ("enhanced", {}),
                                                   ("enhanced", {"use_probabilistic": True})])
def test_samples_sharing_a_history_get_the_actions_of_their_pairs(model_type, overrides):
    model = make(model_type, **overrides).eval()
    history, next_states = torch.randn(2, L + 1, S), torch.randn(2, 5, S)
    shared = model.forward_samples(history, next_states)
    assert shared.shape == (2, 5, A)
    for row in range(2):
        pairs = model(history[row].expand(5, -1, -1), next_states[row])
        torch.testing.assert_close(shared[row], pairs, rtol=1e-5, atol=1e-6)


def test_enhanced_defaults_follow_the_design():
    model = EnhancedInvDynamic(InvDynConfig(state_dim=S, action_dim=A))
    linears = [layer.linear for layer in model.trunk]
    assert [layer.out_features for layer in linears] == [512] * 4
    assert all(isinstance(layer.norm, torch.nn.LayerNorm) for layer in model.trunk)
    # Final layer init scale 1e-2: weights bounded by sqrt(3 * 0.01 / fan_in).
    bound = (3 * 1e-2 / 512) ** 0.5
    assert model.mean_head.weight.abs().max() <= bound + 1e-7
    first = linears[0]
    assert first.weight.abs().max() <= (3 / first.in_features) ** 0.5 + 1e-7
    assert torch.all(first.bias == 0)


def test_longer_history_is_accepted_and_cut_to_seq_length():
    model = make("enhanced").eval()
    history, next_state = torch.randn(2, L + 4, S), torch.randn(2, S)
    assert torch.equal(model(history, next_state), model(history[:, -L:], next_state))


def test_temperature_zero_is_exactly_the_mean_and_deterministic():
    model = make("enhanced", use_probabilistic=True).eval()
    history, next_state = torch.randn(4, L, S), torch.randn(4, S)
    mean, log_std = model.distribution(history, next_state)
    first = model(history, next_state, temperature=0.0)
    second = model(history, next_state, temperature=0.0)
    assert torch.equal(first, mean) and torch.equal(first, second)
    assert torch.all(torch.isfinite(first))
    assert torch.all(log_std >= -5.0) and torch.all(log_std <= 2.0)


def test_sample_std_grows_with_temperature():
    model = make("enhanced", use_probabilistic=True).eval()
    history = torch.randn(1, L, S).expand(4000, L, S)
    next_state = torch.randn(1, S).expand(4000, S)
    torch.manual_seed(0)
    stds = [model(history, next_state, temperature=t).std(dim=0).mean().item() for t in (0.0, 0.1, 0.5, 1.0)]
    assert stds[0] == 0.0
    assert stds[1] < stds[2] < stds[3]
    # mean + temperature * std * eps: the spread is linear in temperature.
    assert stds[3] / stds[2] == pytest.approx(2.0, rel=0.1)


def test_deterministic_head_ignores_temperature():
    model = make("enhanced").eval()
    history, next_state = torch.randn(3, L, S), torch.randn(3, S)
    assert torch.equal(model(history, next_state, temperature=1.0), model(history, next_state))


def test_invalid_configs_are_refused():
    with pytest.raises(ValueError, match="model_type"):
        InvDynConfig(model_type="transformer")
    with pytest.raises(ValueError, match="use_probabilistic"):
        InvDynConfig(model_type="mlp", use_probabilistic=True)
    with pytest.raises(ValueError, match="seq_length"):
        InvDynConfig(seq_length=0)
