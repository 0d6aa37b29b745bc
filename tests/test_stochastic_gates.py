"""Tests of utils.stochastic_gates: probabilities vs Monte Carlo, penalty, grouping, modes, errors."""
import math

import pytest
import torch

from utils.stochastic_gates import (
    BinaryConcreteStochasticGates,
    GaussianStochasticGates,
    StochasticGatesBase,
)

GATE_CLASSES = [GaussianStochasticGates, BinaryConcreteStochasticGates]


def _spread_params(gates):
    """Spread the gate parameters so that the active probabilities cover (0, 1) broadly."""
    with torch.no_grad():
        if isinstance(gates, GaussianStochasticGates):
            gates.mu.copy_(torch.linspace(-1.0, 1.0, gates.n_gates))
        else:
            gates.log_alpha_param.copy_(torch.linspace(-4.0, 4.0, gates.n_gates))


@pytest.mark.parametrize('cls', GATE_CLASSES)
def test_active_probs_match_monte_carlo(cls):
    gates = cls(7)
    _spread_params(gates)
    n_samples = 40000
    gated, _ = gates(torch.ones(n_samples, 7))
    empirical = (gated > 0).double().mean(0)
    probs = gates.get_gate_active_probs().double()
    # Binomial standard error of a frequency; 5 sigma keeps the false-alarm rate negligible across 7 gates.
    tolerance = 5 * torch.sqrt(probs * (1 - probs) / n_samples) + 1e-4
    assert torch.all((empirical - probs).abs() <= tolerance), (empirical, probs)
    assert probs.min() < 0.2 and probs.max() > 0.8  # the check covers both tails


def test_active_probs_closed_forms():
    gaussian = GaussianStochasticGates(3, std=0.7)
    with torch.no_grad():
        gaussian.mu.copy_(torch.tensor([-0.3, 0.0, 0.9]))
    expected = torch.tensor([0.5 * (1 + math.erf(m / (0.7 * math.sqrt(2)))) for m in (-0.3, 0.0, 0.9)])
    torch.testing.assert_close(gaussian.get_gate_active_probs(), expected)

    concrete = BinaryConcreteStochasticGates(2, temperature=0.5, lower_bound=-0.2, upper_bound=1.3)
    with torch.no_grad():
        concrete.log_alpha_param.copy_(torch.tensor([0.4, -1.0]))
    expected = torch.sigmoid(torch.tensor([0.4, -1.0]) - 0.5 * math.log(0.2 / 1.3))
    torch.testing.assert_close(concrete.get_gate_active_probs(), expected)


@pytest.mark.parametrize('cls', GATE_CLASSES)
@pytest.mark.parametrize('reduction', ['sum', 'mean', 'none'])
def test_l0_reg_is_weighted_reduction_of_probs(cls, reduction):
    gates = cls(5, reg_weight=0.3, reg_reduction=reduction)
    _spread_params(gates)
    _, reg = gates(torch.randn(4, 5))
    probs = gates.get_gate_active_probs()
    expected = {'sum': probs.sum(), 'mean': probs.mean(), 'none': probs}[reduction] * 0.3
    torch.testing.assert_close(reg, expected)


@pytest.mark.parametrize('cls', GATE_CLASSES)
def test_mask_groups_share_gates_exactly(cls):
    mask = torch.tensor([[0, 1, 1], [2, 0, 2]])
    gates = cls(3, mask=mask)
    _spread_params(gates)
    x = torch.ones(64, 2, 3)
    gated, _ = gates(x)
    # Every sample draws its own gates, but within a sample all elements of a group see the same value.
    assert torch.equal(gated[:, 0, 0], gated[:, 1, 1])
    assert torch.equal(gated[:, 0, 1], gated[:, 0, 2])
    assert torch.equal(gated[:, 1, 0], gated[:, 1, 2])
    assert not torch.equal(gated[:, 0, 0], gated[:, 0, 1])
    assert gated[:, 0, 1].unique().numel() > 1  # gates differ across the batch in training


@pytest.mark.parametrize('cls', GATE_CLASSES)
def test_mask_broadcasts_and_accepts_leading_unit_batch_dim(cls):
    gates = cls(2, mask=torch.tensor([0, 1]))
    gates.eval()
    x = torch.randn(3, 4, 2)
    gated, _ = gates(x)
    expected = x * gates.get_gate_values().reshape(1, 1, 2)
    torch.testing.assert_close(gated, expected)
    gates_3d = cls(2, mask=torch.tensor([[[0, 1]]]))
    with torch.no_grad():
        gates_3d.gate_params.copy_(gates.gate_params)
    gates_3d.eval()
    torch.testing.assert_close(gates_3d(x)[0], expected)


@pytest.mark.parametrize('cls', GATE_CLASSES)
def test_eval_is_deterministic_and_uses_gate_values(cls):
    gates = cls(6)
    _spread_params(gates)
    gates.eval()
    x = torch.randn(5, 6)
    out_a, reg_a = gates(x)
    out_b, reg_b = gates(x)
    assert torch.equal(out_a, out_b) and torch.equal(reg_a, reg_b)
    torch.testing.assert_close(out_a, x * gates.get_gate_values())
    values = gates.get_gate_values(clamp=False)
    assert values.min() < 0 or values.max() > 1  # the spread makes some unrectified values leave [0, 1]
    torch.testing.assert_close(gates.get_gate_values(), values.clamp(0, 1))


def test_eval_gate_values_closed_forms():
    gaussian = GaussianStochasticGates(2)
    with torch.no_grad():
        gaussian.mu.copy_(torch.tensor([-0.2, 0.6]))
    torch.testing.assert_close(gaussian.get_gate_values(), torch.tensor([0.0, 0.6]))
    concrete = BinaryConcreteStochasticGates(2)
    with torch.no_grad():
        concrete.log_alpha_param.copy_(torch.tensor([0.0, 5.0]))
    torch.testing.assert_close(concrete.get_gate_values(), torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(concrete.get_gate_values(clamp=False),
                               -0.1 + 1.2 * torch.sigmoid(torch.tensor([0.0, 5.0])))


@pytest.mark.parametrize('cls', GATE_CLASSES)
def test_gradients_reach_gate_parameters(cls):
    gates = cls(4, reg_weight=0.1)
    x = torch.randn(32, 4)
    gated, reg = gates(x)
    (gated.pow(2).sum() + reg).backward()
    grad = gates.gate_params.grad
    assert grad is not None and torch.all(torch.isfinite(grad)) and grad.abs().sum() > 0


@pytest.mark.parametrize('cls', GATE_CLASSES)
def test_external_gate_params(cls):
    gates = cls(3)
    gates.eval()
    external = torch.tensor([0.3, -2.0, 2.0], requires_grad=True)
    x = torch.randn(2, 3)
    gated, reg = gates(x, gate_params=external)
    torch.testing.assert_close(gated, x * gates.get_gate_values(gate_params=external))
    torch.testing.assert_close(reg, gates.get_gate_active_probs(gate_params=external).sum())
    reg.backward()
    assert external.grad is not None and gates.gate_params.grad is None
    # A batch of parameter sets (e.g. one per task from a hypernetwork) goes through vmap.
    params_per_task = torch.randn(4, 3)
    batched, regs = torch.func.vmap(lambda p: gates(x, gate_params=p))(params_per_task)
    for k in range(4):
        torch.testing.assert_close(batched[k], gates(x, gate_params=params_per_task[k])[0])
        torch.testing.assert_close(regs[k], gates(x, gate_params=params_per_task[k])[1])


@pytest.mark.parametrize('cls', GATE_CLASSES)
def test_from_pretrained(cls):
    params = torch.tensor([[0.2, -0.4], [1.5, 0.0]])
    gates = cls._from_pretrained(params, reg_weight=0.5)
    assert isinstance(gates, cls) and gates.n_gates == 4 and gates.reg_weight == 0.5
    torch.testing.assert_close(gates.gate_params.detach(), params.reshape(-1))
    assert gates.gate_params.requires_grad


@pytest.mark.parametrize('cls', GATE_CLASSES)
def test_shape_and_argument_errors(cls):
    with pytest.raises(ValueError, match='n_gates'):
        cls(0)
    with pytest.raises(ValueError, match='n_gates'):
        cls(-3)
    with pytest.raises(TypeError, match='n_gates'):
        cls(2.0)
    with pytest.raises(ValueError, match='mask'):
        cls(2, mask=torch.tensor([0, 2]))
    with pytest.raises(ValueError, match='mask'):
        cls(2, mask=torch.tensor([-1, 1]))
    with pytest.raises(TypeError, match='mask'):
        cls(2, mask=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match='reg_reduction'):
        cls(2, reg_reduction='max')
    gates = cls(3)
    with pytest.raises(ValueError, match='input_tensor'):
        gates(torch.randn(2, 4))
    with pytest.raises(ValueError, match='input_tensor'):
        gates(torch.randn(3))
    with pytest.raises(ValueError, match='gate_params'):
        gates(torch.randn(2, 3), gate_params=torch.zeros(4))
    masked = cls(2, mask=torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match='mask'):
        masked(torch.randn(2, 4))
    with pytest.raises(ValueError, match='mask'):
        cls(2, mask=torch.tensor([[0, 1], [1, 0]]))(torch.randn(2, 2))  # per-sample masks are not allowed
    with pytest.raises(TypeError):
        StochasticGatesBase(3)  # abstract: a distribution must be chosen


def test_distribution_argument_errors():
    with pytest.raises(ValueError, match='std'):
        GaussianStochasticGates(2, std=0.0)
    with pytest.raises(ValueError, match='std'):
        GaussianStochasticGates(2, std=-1.0)
    for temperature in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match='temperature'):
            BinaryConcreteStochasticGates(2, temperature=temperature)
    BinaryConcreteStochasticGates(2, temperature=1.0)  # the closed end of (0, 1] is allowed
    for lower in (0.0, 0.1):
        with pytest.raises(ValueError, match='lower_bound'):
            BinaryConcreteStochasticGates(2, lower_bound=lower)
    for upper in (1.0, 0.9):
        with pytest.raises(ValueError, match='upper_bound'):
            BinaryConcreteStochasticGates(2, upper_bound=upper)
    with pytest.raises(ValueError, match='eps'):
        BinaryConcreteStochasticGates(2, eps=0.0)


@pytest.mark.cuda
@pytest.mark.parametrize('cls', GATE_CLASSES)
def test_gates_run_on_cuda(cls):
    gates = cls(3, mask=torch.tensor([0, 1, 2, 2])).cuda()
    gated, reg = gates(torch.randn(5, 4, device='cuda'))
    assert gated.device.type == 'cuda' and reg.device.type == 'cuda'
    reg.backward()
    assert gates.gate_params.grad.device.type == 'cuda'
