"""Tests for utils.hnet_regularizer: the batched regularizer equals a plain per-task loop."""
import pytest
import torch

from hnets.mlp_hnet import HMLP
from mnets.mlp import MLP
from utils.hnet_regularizer import calc_fix_target_reg, flatten_and_remove_out_heads, get_current_targets

NUM_TASKS = 4


def _nets():
    torch.manual_seed(3)
    mnet = MLP(n_in=3, n_out=6, hidden_layers=[5], no_weights=True, verbose=False)
    hnet = HMLP(mnet.param_shapes, uncond_in_size=0, cond_in_size=4, layers=[8], num_cond_embs=NUM_TASKS + 1,
                verbose=False).double()
    return mnet, hnet


def _perturb(hnet, scale=0.05):
    with torch.no_grad():
        for p in hnet.parameters():
            p.add_(scale * torch.randn_like(p))


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


def _loop_reg(hnet, task_ids, targets, mnet=None, heads=None, fisher=None, dTheta=None, dTembs=None,
              scaling=None):
    """One hnet forward per task, as the definition reads."""
    uncond = [p + d for p, d in zip(hnet.unconditional_params, dTheta)] if dTheta else \
        list(hnet.unconditional_params)
    weights = {'uncond_weights': uncond}
    if dTembs:
        weights['cond_weights'] = [e + d for e, d in zip(hnet.conditional_params, dTembs)]
    total = 0.
    for j in task_ids:
        predicted = hnet.forward(cond_id=j, weights=weights)
        if heads is not None:
            w_pred = flatten_and_remove_out_heads(mnet, predicted, heads[j])
            w_target = flatten_and_remove_out_heads(mnet, targets[j], heads[j])
            importance = 1. if fisher is None else flatten_and_remove_out_heads(mnet, fisher[j], heads[j])
        else:
            w_pred, w_target = _flat(predicted), _flat(targets[j])
            importance = 1. if fisher is None else _flat(fisher[j])
        term = (importance * (w_target - w_pred).pow(2)).sum()
        total = total + (1. if scaling is None else scaling[j]) * term
    return total / len(task_ids)


def _grads(value, hnet):
    return torch.autograd.grad(value, list(hnet.parameters()), allow_unused=True)


def _assert_same(batched, looped, hnet):
    # float64; the batched forward sums in another order, hence 1e-10 relative.
    torch.testing.assert_close(batched, looped, rtol=1e-10, atol=1e-14)
    for a, b in zip(_grads(batched, hnet), _grads(looped, hnet)):
        if a is None or b is None:
            assert a is None and b is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)


def test_targets_are_detached_outputs_and_mode_restored():
    _, hnet = _nets()
    hnet.train()
    targets = get_current_targets(NUM_TASKS, hnet)
    assert len(targets) == NUM_TASKS and hnet.training
    for j, target in enumerate(targets):
        for t, w in zip(target, hnet.forward(cond_id=j)):
            assert not t.requires_grad
            torch.testing.assert_close(t, w.detach(), rtol=1e-12, atol=1e-14)
    assert get_current_targets(0, hnet) == []


def test_zero_at_targets_and_plain_loop():
    mnet, hnet = _nets()
    targets = get_current_targets(NUM_TASKS, hnet)
    assert calc_fix_target_reg(hnet, NUM_TASKS, targets=targets) == 0
    _perturb(hnet)
    _assert_same(calc_fix_target_reg(hnet, NUM_TASKS, targets=targets),
                 _loop_reg(hnet, range(NUM_TASKS), targets), hnet)


def test_all_options_equal_loop():
    mnet, hnet = _nets()
    targets = get_current_targets(NUM_TASKS, hnet)
    _perturb(hnet)
    g = torch.Generator().manual_seed(9)
    dTheta = [0.01 * torch.randn(p.shape, generator=g, dtype=torch.float64) for p in hnet.unconditional_params]
    dTembs = [0.01 * torch.randn(p.shape, generator=g, dtype=torch.float64) for p in hnet.conditional_params]
    fisher = [[torch.rand(s, generator=g, dtype=torch.float64) for s in hnet.target_shapes]
              for _ in range(NUM_TASKS)]
    heads = [[0, 1], [2, 3], [4], [5, 0]]
    scaling = [0.5, 1.0, 2.0, 3.0]
    cases = [dict(dTheta=dTheta), dict(dTembs=dTembs), dict(fisher=fisher), dict(heads=heads),
             dict(scaling=scaling), dict(dTheta=dTheta, dTembs=dTembs, fisher=fisher, heads=heads,
                                         scaling=scaling)]
    for case in cases:
        batched = calc_fix_target_reg(
            hnet, NUM_TASKS, targets=targets, dTheta=case.get('dTheta'), dTembs=case.get('dTembs'),
            mnet=mnet, inds_of_out_heads=case.get('heads'), fisher_estimates=case.get('fisher'),
            reg_scaling=case.get('scaling'))
        looped = _loop_reg(hnet, range(NUM_TASKS), targets, mnet, case.get('heads'), case.get('fisher'),
                           case.get('dTheta'), case.get('dTembs'), case.get('scaling'))
        _assert_same(batched, looped, hnet)


def test_dtheta_gradient_flows():
    _, hnet = _nets()
    targets = get_current_targets(NUM_TASKS, hnet)
    dTheta = [torch.zeros_like(p, requires_grad=True) for p in hnet.unconditional_params]
    reg = calc_fix_target_reg(hnet, NUM_TASKS, targets=targets, dTheta=dTheta)
    # At the targets with dTheta = 0 the regularizer is at its minimum: zero gradient.
    for g in torch.autograd.grad(reg, dTheta):
        assert torch.count_nonzero(g) == 0
    _perturb(hnet)
    reg = calc_fix_target_reg(hnet, NUM_TASKS, targets=targets, dTheta=dTheta)
    # dTheta enters as theta + dTheta, so its gradient equals that of theta.
    for a, b in zip(torch.autograd.grad(reg, dTheta, retain_graph=True),
                    torch.autograd.grad(reg, list(hnet.unconditional_params))):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0)


def test_prev_theta_targets_on_the_fly():
    _, hnet = _nets()
    prev_theta = [p.detach().clone() for p in hnet.unconditional_params]
    prev_embs = [e.detach().clone() for e in hnet.conditional_params]
    targets = get_current_targets(NUM_TASKS, hnet)
    _perturb(hnet)
    hnet.train()
    batched = calc_fix_target_reg(hnet, NUM_TASKS, prev_theta=prev_theta, prev_task_embs=prev_embs)
    assert hnet.training
    _assert_same(batched, _loop_reg(hnet, range(NUM_TASKS), targets), hnet)


def test_batch_size_subsamples_tasks():
    _, hnet = _nets()
    targets = get_current_targets(NUM_TASKS, hnet)
    _perturb(hnet)
    per_task = [_loop_reg(hnet, [j], targets).detach() for j in range(NUM_TASKS)]
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        value = calc_fix_target_reg(hnet, NUM_TASKS, targets=targets, batch_size=2).detach()
        # Must equal the mean over one of the 2-subsets of tasks.
        matches = [(a, b) for a in range(NUM_TASKS) for b in range(a + 1, NUM_TASKS)
                   if torch.isclose(value, (per_task[a] + per_task[b]) / 2, rtol=1e-10, atol=0)]
        assert matches
        seen.update(matches)
    assert len(seen) > 1  # different subsets are drawn
    for size in (None, 0, -1, NUM_TASKS, NUM_TASKS + 3):  # all tasks
        full = calc_fix_target_reg(hnet, NUM_TASKS, targets=targets, batch_size=size)
        torch.testing.assert_close(full.detach(), sum(per_task) / NUM_TASKS, rtol=1e-10, atol=0)


def test_one_batched_forward_for_all_tasks():
    _, hnet = _nets()
    targets = get_current_targets(NUM_TASKS, hnet)
    prev = ([p.detach().clone() for p in hnet.unconditional_params],
            [e.detach().clone() for e in hnet.conditional_params])
    calls = []
    original = hnet.forward

    def counting_forward(*args, **kwargs):
        calls.append(kwargs.get('cond_id'))
        return original(*args, **kwargs)

    hnet.forward = counting_forward
    calc_fix_target_reg(hnet, NUM_TASKS, targets=targets, batch_size=3)
    assert len(calls) == 1 and len(calls[0]) == 3
    calls.clear()
    calc_fix_target_reg(hnet, NUM_TASKS, prev_theta=prev[0], prev_task_embs=prev[1])
    assert len(calls) == 2 and all(c == list(range(NUM_TASKS)) for c in calls)


def test_flatten_and_remove_out_heads():
    mnet, hnet = _nets()
    weights = hnet.forward(cond_id=0)
    flat = flatten_and_remove_out_heads(mnet, weights, [1, 4])
    expected = torch.cat([weights[0].flatten(), weights[1].flatten(), weights[2][[1, 4]].flatten(),
                          weights[3][[1, 4]]])
    torch.testing.assert_close(flat, expected, rtol=0, atol=0)


def test_errors():
    mnet, hnet = _nets()
    targets = get_current_targets(NUM_TASKS, hnet)
    with pytest.raises(ValueError, match='task_id'):
        calc_fix_target_reg(hnet, 0, targets=[])
    with pytest.raises(ValueError, match='targets: expected 4 entries'):
        calc_fix_target_reg(hnet, NUM_TASKS, targets=targets[:3])
    with pytest.raises(ValueError, match='targets, prev_theta'):
        calc_fix_target_reg(hnet, NUM_TASKS)
    with pytest.raises(ValueError, match='prev_task_embs'):
        calc_fix_target_reg(hnet, NUM_TASKS, prev_theta=list(hnet.unconditional_params))
    with pytest.raises(ValueError, match='mnet'):
        calc_fix_target_reg(hnet, NUM_TASKS, targets=targets, inds_of_out_heads=[[0]] * NUM_TASKS)
    with pytest.raises(ValueError, match='dTheta: expected'):
        calc_fix_target_reg(hnet, NUM_TASKS, targets=targets, dTheta=[])
    with pytest.raises(ValueError, match='reg_scaling'):
        calc_fix_target_reg(hnet, NUM_TASKS, targets=targets, reg_scaling=[1.])
    with pytest.raises(ValueError, match='targets: expected'):
        calc_fix_target_reg(hnet, NUM_TASKS, targets=[t[:2] for t in targets])
    with pytest.raises(ValueError, match='task_id'):
        get_current_targets(-1, hnet)


def test_predicted_outputs_and_stacked_targets_give_the_same_value_and_gradient():
    """One forward for the current task and all previous ones (as the split-MNIST sim trains) equals two."""
    mnet, hnet = _nets()
    targets = get_current_targets(NUM_TASKS, hnet)
    stacked = torch.stack([_flat(t) for t in targets])
    _perturb(hnet)
    current = NUM_TASKS
    x = torch.randn(7, 3, dtype=torch.float64)

    def loss_and_grads(combined):
        hnet.zero_grad()
        if combined:
            outputs = hnet.forward(cond_id=[current] + list(range(current)), ret_format='flattened')
            weights = hnet.convert_out_format(outputs[:1], 'flattened', 'squeezed')
            reg = calc_fix_target_reg(hnet, current, targets=stacked, predicted=outputs[1:])
        else:
            weights = hnet.forward(cond_id=current)
            reg = calc_fix_target_reg(hnet, current, targets=targets)
        loss = mnet.forward(x, weights=weights).square().mean() + 0.1 * reg
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in hnet.parameters()]

    loss_two, grads_two = loss_and_grads(False)
    loss_one, grads_one = loss_and_grads(True)
    assert torch.allclose(loss_one, loss_two, atol=1e-12)
    for a, b in zip(grads_one, grads_two):
        assert torch.allclose(a, b, atol=1e-12)
    # With a random subset of tasks, stacked targets select the same rows as the per-task lists.
    torch.manual_seed(0)
    subset_stacked = calc_fix_target_reg(hnet, current, targets=stacked, batch_size=2)
    torch.manual_seed(0)
    subset_lists = calc_fix_target_reg(hnet, current, targets=targets, batch_size=2)
    assert torch.allclose(subset_stacked, subset_lists, atol=1e-12)


def test_predicted_outputs_errors():
    mnet, hnet = _nets()
    targets = get_current_targets(2, hnet)
    outputs = hnet.forward(cond_id=[0, 1], ret_format='flattened')
    with pytest.raises(ValueError, match='predicted: expected a tensor of shape'):
        calc_fix_target_reg(hnet, 2, targets=targets, predicted=outputs[:1])
    with pytest.raises(ValueError, match='dTheta'):
        calc_fix_target_reg(hnet, 2, targets=targets, predicted=outputs,
                            dTheta=[torch.zeros_like(p) for p in hnet.unconditional_params])
    with pytest.raises(ValueError, match='batch_size'):
        calc_fix_target_reg(hnet, 2, targets=targets, predicted=outputs, batch_size=1)
    with pytest.raises(ValueError, match='targets: expected a tensor'):
        calc_fix_target_reg(hnet, 2, targets=torch.zeros(2, 3, dtype=torch.float64))
