"""Tests of utils.hat: annealing, gradient rules, sparsity regulariser, and protection of a learned task."""
import copy

import pytest
import torch

from mnets.mlp import MLP
from utils.hat import (
    HAT_S_MAX,
    HATMasks,
    HATMaskSparsityReg,
    embedding_grad_compensation,
    s_schedule,
    weight_grad_multiplier,
)


def test_s_schedule_endpoints_range_and_formula():
    num_batches = 7
    values = [s_schedule(b, num_batches, 400.0) for b in range(num_batches)]
    assert values[0] == pytest.approx(1 / 400) and values[-1] == pytest.approx(400.0)
    assert all(1 / 400 <= v <= 400 for v in values)
    assert all(a < b for a, b in zip(values, values[1:]))
    # Paper formula with b counted from 1; plugging the 0-based index into it would give s < 0 first.
    for idx, value in enumerate(values):
        b = idx + 1
        assert value == pytest.approx(1 / 400 + (400 - 1 / 400) * (b - 1) / (num_batches - 1))
    assert 1 / 400 + (400 - 1 / 400) * (0 - 1) / (num_batches - 1) < 0
    assert s_schedule(0, 1, 50.0) == 50.0
    assert s_schedule(0, 3) == pytest.approx(1 / HAT_S_MAX)


def test_s_schedule_errors():
    with pytest.raises(ValueError, match='batch_idx'):
        s_schedule(5, 5)
    with pytest.raises(ValueError, match='batch_idx'):
        s_schedule(-1, 5)
    with pytest.raises(ValueError, match='num_batches'):
        s_schedule(0, 0)
    with pytest.raises(ValueError, match='s_max'):
        s_schedule(0, 3, 0.5)
    with pytest.raises(TypeError, match='batch_idx'):
        s_schedule(1.0, 3)


def test_weight_grad_multiplier_closed_form():
    out_prev = torch.tensor([1.0, 0.0, 0.3])
    in_prev = torch.tensor([0.0, 1.0])
    expected = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.7]])
    torch.testing.assert_close(weight_grad_multiplier(out_prev, in_prev, (3, 2)), expected)
    conv = weight_grad_multiplier(out_prev, in_prev, (3, 2, 5, 5))
    assert conv.shape == (3, 2, 1, 1)
    torch.testing.assert_close(conv[..., 0, 0], expected)
    torch.testing.assert_close(weight_grad_multiplier(out_prev, None, (3, 4)), (1 - out_prev)[:, None])


def test_compensated_embedding_grad_equals_s_max_times_unit_slope_grad():
    # sigma'(x) = 1 / (2 (cosh x + 1)): the compensated gradient of sigmoid(s e) is s_max sigma'(e) for
    # every s (while |s e| stays below the cosh clamp): annealing does not distort the embedding steps.
    # |s e| <= 20 keeps sigmoid'(s e) representable in float64 (at 40 it rounds to 0).
    embs = torch.tensor([-0.05, -0.01, 0.0, 0.02, 0.05], dtype=torch.float64)
    for s in (1 / 400, 0.5, 10.0, 400.0):
        e = embs.clone().requires_grad_(True)
        torch.sigmoid(s * e).sum().backward()
        compensated = e.grad * embedding_grad_compensation(embs, s, 400.0)
        expected = 400.0 * torch.sigmoid(embs) * (1 - torch.sigmoid(embs))
        torch.testing.assert_close(compensated, expected)
    big = torch.tensor([6.0])
    factor = embedding_grad_compensation(big, 400.0, 400.0, cosh_clamp=50.0)
    torch.testing.assert_close(factor, (torch.cosh(torch.tensor([50.0])) + 1) / (torch.cosh(big) + 1))


def test_masks_cumulative_update_and_context_mod_format():
    hat = HATMasks(3, [4, 2], s_max=10.0)
    with torch.no_grad():
        hat.task_embs[0].copy_(torch.tensor([[1.0, -1.0, 0.0, 2.0], [-2.0, 0.5, 0.1, 0.0],
                                             [0.3, 0.3, -0.3, -0.3]]))
    masks = hat.get_masks(1, s=2.0)
    torch.testing.assert_close(masks[0], torch.sigmoid(2.0 * torch.tensor([-2.0, 0.5, 0.1, 0.0])))
    stacked = hat.get_masks([0, 2])
    assert stacked[0].shape == (2, 4) and stacked[1].shape == (2, 2)
    torch.testing.assert_close(stacked[0][1], hat.get_masks(2)[0])
    assert all(torch.equal(p, torch.zeros_like(p)) for p in hat.prev_masks)
    hat.update_cumulative_masks(0)
    hat.update_cumulative_masks(1)
    expected = torch.maximum(hat.get_masks(0)[0], hat.get_masks(1)[0])
    torch.testing.assert_close(hat.prev_masks[0], expected)
    assert int(hat.num_learned_tasks) == 2
    cm = hat.context_mod_weights(2, s=3.0)
    assert len(cm) == 4
    torch.testing.assert_close(cm[0], hat.get_masks(2, 3.0)[0])
    assert torch.equal(cm[1], torch.zeros(4)) and torch.equal(cm[3], torch.zeros(2))
    assert 'prev_mask_0' in hat.state_dict() and 'num_learned_tasks' in hat.state_dict()


def test_mask_weight_grads_rules():
    hat = HATMasks(2, [3])
    weights = [torch.randn(3, 2, requires_grad=True), torch.randn(2, 3, requires_grad=True)]
    biases = [torch.randn(3, requires_grad=True), torch.randn(2, requires_grad=True)]
    for p in weights + biases:
        p.grad = torch.ones_like(p)
    hat.mask_weight_grads_(weights, biases)  # nothing learned yet: every gradient passes
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in weights + biases)
    with torch.no_grad():
        hat.prev_mask_0.copy_(torch.tensor([1.0, 0.0, 0.25]))
        hat.num_learned_tasks += 1
    hat.mask_weight_grads_(weights, biases)
    torch.testing.assert_close(weights[0].grad, torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.75, 0.75]]))
    torch.testing.assert_close(biases[0].grad, torch.tensor([0.0, 1.0, 0.75]))
    # Unmasked shared output layer: all outputs count as used, so only inputs from free units may change.
    torch.testing.assert_close(weights[1].grad, torch.tensor([[0.0, 1.0, 0.75]] * 2))
    torch.testing.assert_close(biases[1].grad, torch.zeros(2))
    # Multi-head: rows of heads no earlier task used stay free.
    for p in weights + biases:
        p.grad = torch.ones_like(p)
    hat.mask_weight_grads_(weights, biases, out_prev=torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(weights[1].grad, torch.tensor([[0.0, 1.0, 0.75], [1.0, 1.0, 1.0]]))
    torch.testing.assert_close(biases[1].grad, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match='weights'):
        hat.mask_weight_grads_(weights + weights, None)
    with pytest.raises(ValueError, match=r'weights\[1\]'):
        hat.mask_weight_grads_([weights[0], torch.zeros(2, 4)], None)
    with pytest.raises(ValueError, match='biases'):
        hat.mask_weight_grads_(weights, biases[:1])


def _hand_masks():
    torch.manual_seed(1)
    masks = [torch.rand(12), torch.rand(40)]
    # Layer 0: about 6 free units, below the guard; layer 1: soft previous masks, > 10 free and > 10 used.
    prev = [(torch.rand(12) > 0.5).float(), (0.5 + 0.5 * torch.rand(40)) * (torch.rand(40) > 0.4).float()]
    return masks, prev


def test_sparsity_reg_original_hand_computation():
    masks, prev = _hand_masks()
    reg, per_layer = HATMaskSparsityReg(0.75, mode='original')(masks, prev)
    num, den = 0.0, 0.0
    for a, a_prev in zip(masks, prev):
        num += sum(float(x) * (1 - float(y)) for x, y in zip(a, a_prev))
        den += sum(1 - float(y) for y in a_prev)
    assert float(reg) == pytest.approx(0.75 * num / den, rel=1e-5)
    for l, (a, a_prev) in enumerate(zip(masks, prev)):
        free = float((1 - a_prev).sum())
        expected = float((a * (1 - a_prev)).sum()) / free if free > 10 else 0.0
        assert float(per_layer[l]) == pytest.approx(expected, rel=1e-5)
    assert float((1 - prev[0]).sum()) <= 10  # the first layer exercises the small-denominator guard
    assert float(per_layer[0]) == 0.0


def test_sparsity_reg_cross_hand_computation():
    masks, prev = _hand_masks()
    reg, per_layer = HATMaskSparsityReg(2.0, mode='cross')(masks, prev)
    original, _ = HATMaskSparsityReg(1.0, mode='original')(masks, prev)
    used = sum(float(a_prev.sum()) for a_prev in prev)
    reused = sum(float((a * a_prev).sum()) for a, a_prev in zip(masks, prev))
    assert used > 10
    assert float(reg) == pytest.approx(2.0 * 0.5 * (float(original) + 1 - reused / used), rel=1e-5)
    # The public port multiplies by the *sum* of the previous mask; that would give a different value.
    wrong = sum(float((a * a_prev.sum()).sum()) for a, a_prev in zip(masks, prev))
    assert float(reg) != pytest.approx(2.0 * 0.5 * (float(original) + 1 - wrong / used), rel=1e-3)
    a, a_prev = masks[1], prev[1]
    assert float(a_prev.sum()) > 10 and float((1 - a_prev).sum()) > 10
    layer_orig = float((a * (1 - a_prev)).sum() / (1 - a_prev).sum())
    layer_cross = 1 - float((a * a_prev).sum() / a_prev.sum())
    assert float(per_layer[1]) == pytest.approx(0.5 * (layer_orig + layer_cross), rel=1e-5)


def test_sparsity_reg_dict_input_guards_and_gradient():
    masks, prev = _hand_masks()
    named = {'fc1': masks[0], 'fc2': masks[1]}
    named_prev = {'fc1': prev[0], 'fc2': prev[1]}
    reg_list, sparsity_list = HATMaskSparsityReg(0.75)(masks, prev)
    reg_dict, sparsity_dict = HATMaskSparsityReg(0.75)(named, named_prev)
    torch.testing.assert_close(reg_dict, reg_list)
    assert set(sparsity_dict) == {'fc1', 'fc2'}
    torch.testing.assert_close(sparsity_dict['fc2'], sparsity_list[1])
    # First task: nothing used yet, so the cross term's denominator is 0 and only the original half counts.
    fresh = [torch.zeros(12), torch.zeros(40)]
    reg, _ = HATMaskSparsityReg(1.0, mode='cross')(masks, fresh)
    expected = 0.5 * float(sum(a.sum() for a in masks)) / 52
    assert float(reg) == pytest.approx(expected, rel=1e-5)
    # Nearly everything taken: fewer free units than the guard, so the regulariser is 0.
    full = [torch.ones(12), torch.ones(40)]
    reg, per_layer = HATMaskSparsityReg(1.0)(masks, full)
    assert float(reg) == 0.0 and all(float(v) == 0.0 for v in per_layer)
    embs = torch.randn(15, requires_grad=True)
    reg, _ = HATMaskSparsityReg(1.0)([torch.sigmoid(embs)], [torch.zeros(15)])
    reg.backward()
    assert torch.all(torch.isfinite(embs.grad)) and embs.grad.abs().sum() > 0


def test_sparsity_reg_and_masks_errors():
    with pytest.raises(ValueError, match='mode'):
        HATMaskSparsityReg(0.75, mode='dense')
    with pytest.raises(ValueError, match='factor'):
        HATMaskSparsityReg(-1.0)
    reg = HATMaskSparsityReg(0.75)
    with pytest.raises(ValueError, match='prev_masks'):
        reg([torch.rand(12)], [torch.rand(12), torch.rand(3)])
    with pytest.raises(ValueError, match='prev_masks'):
        reg([torch.rand(12)], [torch.rand(11)])
    with pytest.raises(ValueError, match='prev_masks'):
        reg({'a': torch.rand(12)}, {'b': torch.rand(12)})
    with pytest.raises(ValueError, match='masks'):
        reg([], [])
    with pytest.raises(ValueError, match='num_tasks'):
        HATMasks(0, [3])
    with pytest.raises(ValueError, match='layer_sizes'):
        HATMasks(2, [3, 0])
    with pytest.raises(ValueError, match='s_max'):
        HATMasks(2, [3], s_max=0.5)
    hat = HATMasks(2, [3])
    with pytest.raises(ValueError, match='task_id'):
        hat.get_masks(2)
    with pytest.raises(TypeError, match='task_id'):
        hat.get_masks(1.0)
    with pytest.raises(ValueError, match='s'):
        hat.compensate_embedding_grads_(0.0)


def _hat_mlp(n_in, hidden, num_tasks):
    """The split-MNIST recipe: an mnets MLP whose context-mod gains carry the HAT masks after each ReLU."""
    mnet = MLP(n_in=n_in, n_out=1, hidden_layers=hidden, use_context_mod=True, context_mod_no_weights=True,
               no_last_layer_context_mod=True, context_mod_post_activation=True, verbose=False)
    return mnet, HATMasks(num_tasks, hidden)


def _predict(mnet, hat, x, task_id, s=None):
    return mnet(x, weights={'mod_weights': hat.context_mod_weights(task_id, s)})


def _train_task(mnet, hat, task_id, x, y, use_hat_grad_rules, epochs=30, batch_size=16):
    reg = HATMaskSparsityReg(0.02)  # small: the toy tasks need about half of the 20 units per layer
    # Plain SGD: a masked (zero) gradient means no step at all.
    optimizer = torch.optim.SGD(list(mnet.parameters()) + list(hat.parameters()), lr=0.1)
    num_batches = x.shape[0] // batch_size
    for _ in range(epochs):
        perm = torch.randperm(x.shape[0])
        for b in range(num_batches):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            s = s_schedule(b, num_batches, hat.s_max)
            optimizer.zero_grad()
            loss = (_predict(mnet, hat, x[idx], task_id, s) - y[idx]).pow(2).mean()
            loss = loss + reg(hat.get_masks(task_id, s), hat.prev_masks)[0]
            loss.backward()
            if use_hat_grad_rules:
                hat.adjust_grads_(mnet.layer_weight_tensors, mnet.layer_bias_vectors, s)
            else:
                hat.compensate_embedding_grads_(s)
            optimizer.step()
            hat.clamp_embeddings_()


def test_training_task2_leaves_task1_outputs_unchanged():
    mnet, hat = _hat_mlp(4, [20, 20], num_tasks=2)
    x1, x2 = torch.randn(128, 4), torch.randn(128, 4)
    y1, y2 = torch.sin(2 * x1[:, :1]), torch.tanh(2 * x2[:, 1:2])
    _train_task(mnet, hat, 0, x1, y1, use_hat_grad_rules=True)
    with torch.no_grad():
        task1_out = _predict(mnet, hat, x1, 0)
    assert (task1_out - y1).pow(2).mean() < 0.2 * y1.var()  # measured ~0.07 of the variance
    hat.update_cumulative_masks(0)
    unprotected_mnet, unprotected_hat = copy.deepcopy(mnet), copy.deepcopy(hat)

    _train_task(mnet, hat, 1, x2, y2, use_hat_grad_rules=True)
    with torch.no_grad():
        # Task 2 is learned (measured ~0.02 of the variance) ...
        assert (_predict(mnet, hat, x2, 1) - y2).pow(2).mean() < 0.2 * y2.var()
        # ... and the masks at s_max saturate to exactly 0/1 in float32, so the frozen connections carry
        # task 1 exactly: measured drift 0.0.
        torch.testing.assert_close(_predict(mnet, hat, x1, 0), task1_out, atol=1e-6, rtol=0)

    # Control: the same training without weight-gradient masking does change task-1 outputs.
    _train_task(unprotected_mnet, unprotected_hat, 1, x2, y2, use_hat_grad_rules=False)
    with torch.no_grad():
        assert (_predict(unprotected_mnet, unprotected_hat, x1, 0) - task1_out).abs().max() > 0.1


@pytest.mark.cuda
def test_hat_runs_on_cuda():
    mnet, hat = _hat_mlp(4, [12, 12], num_tasks=2)
    mnet, hat = mnet.cuda(), hat.cuda()
    x = torch.randn(8, 4, device='cuda')
    hat.update_cumulative_masks(0)
    out = _predict(mnet, hat, x, 1, s=2.0)
    reg, _ = HATMaskSparsityReg(0.75, mode='cross')(hat.get_masks(1, 2.0), hat.prev_masks)
    (out.sum() + reg).backward()
    hat.adjust_grads_(mnet.layer_weight_tensors, mnet.layer_bias_vectors, 2.0)
    hat.clamp_embeddings_()
    assert out.device.type == 'cuda' and hat.task_embs[0].grad.device.type == 'cuda'
