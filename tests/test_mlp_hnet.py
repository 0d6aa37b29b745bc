"""HMLP: batched conditions, closed forms, gradients, external weights, vmap/grad, hyperfan init, CL run."""
import math

import pytest
import torch

from hnets.mlp_hnet import HMLP
from mnets.mlp import MLP

SHAPES = [[4, 3], [4], [2, 4], [2]]
# float32 gemms of different batch sizes round differently; 1e-5 relative is far below any real bug.
TOL = dict(rtol=1e-5, atol=1e-6)


def test_batched_cond_ids_equal_single_passes():
    hnet = HMLP(SHAPES, cond_in_size=5, layers=(9, 9), num_cond_embs=4, verbose=False)
    ids = [3, 0, 3, 1]
    batch = hnet(cond_id=ids, ret_format='flattened')
    assert batch.shape == (4, hnet.num_outputs)
    for k, i in enumerate(ids):
        assert torch.allclose(batch[k], hnet(cond_id=i, ret_format='flattened')[0], **TOL)
        single = hnet(cond_id=i)
        assert torch.allclose(batch[k], torch.cat([t.flatten() for t in single]), **TOL)


def test_linear_hnet_is_affine_map_of_input():
    hnet = HMLP(SHAPES, uncond_in_size=2, cond_in_size=3, layers=(), num_cond_embs=1, verbose=False)
    z, e = torch.randn(5, 2), torch.randn(5, 3)
    w, b = hnet.layer_weight_tensors[0], hnet.layer_bias_vectors[0]
    expected = torch.cat([z, e], dim=1) @ w.T + b
    assert torch.allclose(hnet(uncond_input=z, cond_input=e, ret_format='flattened'), expected, **TOL)


def test_spectral_norm_divides_by_largest_singular_value():
    hnet = HMLP(SHAPES, cond_in_size=3, layers=(), use_spectral_norm=True, use_bias=False, verbose=False)
    e = torch.randn(2, 3)
    w = hnet.layer_weight_tensors[0]
    expected = e @ (w / torch.linalg.svdvals(w)[0]).T
    assert torch.allclose(hnet(cond_input=e, ret_format='flattened'), expected, **TOL)


def test_gradients_reach_theta_and_used_embeddings():
    hnet = HMLP(SHAPES, cond_in_size=5, layers=(9,), num_cond_embs=3, verbose=False)
    hnet(cond_id=[0, 2], ret_format='flattened').pow(2).sum().backward()
    for p in hnet.unconditional_params:
        assert p.grad is not None and p.grad.abs().sum() > 0
    embs = hnet.conditional_params
    assert embs[0].grad.abs().sum() > 0 and embs[2].grad.abs().sum() > 0
    assert embs[1].grad is None


def test_external_uncond_weights_equal_internal_ones():
    ref = HMLP(SHAPES, cond_in_size=5, layers=(9,), verbose=False)
    ext = HMLP(SHAPES, cond_in_size=5, layers=(9,), no_uncond_weights=True, verbose=False)
    assert ext.unconditional_params is None and ext.hyper_shapes_learned == ref.unconditional_param_shapes
    e = torch.randn(3, 5)
    theta = [p.detach().clone() for p in ref.unconditional_params]
    expected = ref(cond_input=e, ret_format='flattened')
    assert torch.equal(ext(cond_input=e, weights=theta, ret_format='flattened'), expected)
    assert torch.equal(ext(cond_input=e, weights={'uncond_weights': theta}, ret_format='flattened'), expected)


def test_external_cond_weights():
    hnet = HMLP(SHAPES, cond_in_size=5, layers=(9,), no_cond_weights=True, num_cond_embs=2, verbose=False)
    embs = [torch.randn(5), torch.randn(5)]
    out = hnet(cond_id=[1, 0], weights={'cond_weights': embs}, ret_format='flattened')
    assert torch.equal(out, hnet(cond_input=torch.stack([embs[1], embs[0]]), ret_format='flattened'))
    with pytest.raises(ValueError, match='cond_id: needs conditional embeddings'):
        hnet(cond_id=0)


def test_vmap_and_grad_compose_with_forward():
    hnet = HMLP(SHAPES, cond_in_size=5, layers=(9,), verbose=False)
    e = torch.randn(2, 5)
    theta = [p.detach() for p in hnet.unconditional_params]
    stack = [torch.stack([t + 0.1 * k for k in range(3)]) for t in theta]

    def produce(ws):
        return hnet(cond_input=e, weights={'uncond_weights': ws}, ret_format='flattened')

    batched = torch.func.vmap(produce)(stack)
    for k in range(3):
        assert torch.allclose(batched[k], produce([t[k] for t in stack]), **TOL)

    grads = torch.func.grad(lambda ws: produce(ws).pow(2).sum())(theta)
    ws = [t.clone().requires_grad_() for t in theta]
    produce(ws).pow(2).sum().backward()
    for g, w in zip(grads, ws):
        assert torch.allclose(g, w.grad, **TOL)


def test_dropout_and_batchnorm_options():
    hnet = HMLP(SHAPES, cond_in_size=5, layers=(9, 9), num_cond_embs=4, dropout_rate=0.5, use_batch_norm=True,
                verbose=False)
    assert len(hnet.batchnorm_layers) == 2
    names = [m['name'] for m in hnet.param_shapes_meta]
    assert names.count('bn_scale') == 2 and names.count('bn_shift') == 2
    hnet.train()
    out = hnet(cond_id=[0, 1, 2, 3], ret_format='flattened')
    assert torch.isfinite(out).all()
    hnet.eval()
    assert torch.equal(hnet(cond_id=[0, 1], ret_format='flattened'), hnet(cond_id=[0, 1], ret_format='flattened'))


def test_constructor_validation():
    with pytest.raises(ValueError, match='target_shapes'):
        HMLP([], verbose=False)
    with pytest.raises(ValueError, match='dropout_rate'):
        HMLP(SHAPES, dropout_rate=1.5, verbose=False)
    with pytest.raises(ValueError, match='layers'):
        HMLP(SHAPES, layers=(0,), verbose=False)
    with pytest.warns(UserWarning, match='num_cond_embs'):
        hnet = HMLP(SHAPES, uncond_in_size=3, cond_in_size=0, verbose=False)
    assert hnet.num_known_conds == 0
    with pytest.raises(ValueError, match='uncond_input: expected a tensor \\[K, 3\\], got None'):
        hnet(cond_id=None, cond_input=torch.zeros(1, 0))


def _hyperfan_second_moments(hnet, mnet, method, use_xavier, n_inits=30, n_embs=40, uncond_var=1., cond_var=1.):
    sums = torch.zeros(len(hnet.target_shapes), dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    for seed in range(n_inits):
        torch.manual_seed(seed)
        hnet.apply_hyperfan_init(method=method, use_xavier=use_xavier, uncond_var=uncond_var, cond_var=cond_var,
                                 mnet=mnet)
        kwargs = {'cond_input': torch.randn(n_embs, hnet._cond_in_size, generator=gen) * math.sqrt(cond_var)}
        if hnet._uncond_in_size > 0:
            kwargs['uncond_input'] = torch.randn(n_embs, hnet._uncond_in_size, generator=gen) * \
                math.sqrt(uncond_var)
        with torch.no_grad():
            out = hnet(ret_format='stacked', **kwargs)
        sums += torch.stack([t.double().pow(2).mean() for t in out])
    return sums / n_inits


@pytest.mark.parametrize('method, expected', [
    # mnet 10 -> 20 -> 5, Kaiming (c = 2), weights and biases produced (c_b = 2):
    ('in', [2 / (2 * 10), 1., 2 / (2 * 20), 1.]),               # c/(c_b fan_in), c/2
    ('out', [2 / 20, 2 * (1 - 10 / 20), 2 / 5, 0.]),             # c/fan_out, max(0, c(1 - fan_in/fan_out))
    ('harmonic', [0.1, 1., 2 * 0.05 * 0.4 / 0.45, 0.]),
])
def test_hyperfan_init_gives_target_variances(method, expected):
    mnet = MLP(10, 5, (20,), no_weights=True, verbose=False)
    hnet = HMLP(mnet.param_shapes, uncond_in_size=4, cond_in_size=8, layers=(64, 64), verbose=False)
    got = _hyperfan_second_moments(hnet, mnet, method, False, uncond_var=2., cond_var=0.5)
    for g, e in zip(got.tolist(), expected):
        if e == 0:
            assert g == 0
        else:
            assert abs(g / e - 1) < 0.2, (method, got.tolist(), expected)


def test_hyperfan_xavier_with_linear_activations():
    mnet = MLP(10, 5, (20,), no_weights=True, verbose=False)
    hnet = HMLP(mnet.param_shapes, cond_in_size=8, layers=(64,), activation_fn=None, verbose=False)
    got = _hyperfan_second_moments(hnet, mnet, 'in', True)
    expected = [1 / (2 * 10), 0.5, 1 / (2 * 20), 0.5]
    assert all(abs(g / e - 1) < 0.2 for g, e in zip(got.tolist(), expected)), got


def test_hyperfan_init_user_distribution_and_errors():
    hnet = HMLP([[3, 2], [3], [3]], cond_in_size=4, layers=(8,), verbose=False)
    hnet.apply_hyperfan_init(w_val=[None, None, 0.], w_var=[None, None, 0.], b_val={'bias': 5.},
                             b_var={'bias': 0.})
    out = hnet(cond_input=torch.randn(1, 4))
    assert torch.allclose(out[2], torch.full((3,), 5.))  # guessed as a bias: constant head bias
    with pytest.raises(ValueError, match='method'):
        hnet.apply_hyperfan_init(method='fan')
    ext = HMLP(SHAPES, cond_in_size=4, no_uncond_weights=True, verbose=False)
    with pytest.raises(ValueError, match='no_uncond_weights'):
        ext.apply_hyperfan_init()


def test_two_task_continual_learning_with_output_regularizer():
    torch.manual_seed(0)
    mnet = MLP(2, 1, (16,), no_weights=True, verbose=False)
    x = torch.randn(128, 2)
    targets = [torch.sin(2 * x[:, :1]) + x[:, 1:], torch.cos(2 * x[:, 1:]) - x[:, :1]]

    def train(hnet, task, steps, reg_targets=None, beta=0.05):
        params = list(hnet.unconditional_params) + [hnet.conditional_params[task]]
        opt = torch.optim.Adam(params, lr=5e-3)
        for _ in range(steps):
            opt.zero_grad()
            loss = (mnet(x, weights=hnet(cond_id=task)) - targets[task]).pow(2).mean()
            if reg_targets is not None:
                prev = hnet(cond_id=list(range(task)), ret_format='flattened')
                loss = loss + beta * (prev - reg_targets).pow(2).sum()
            loss.backward()
            opt.step()

    def mse(hnet, task):
        with torch.no_grad():
            return (mnet(x, weights=hnet(cond_id=task)) - targets[task]).pow(2).mean().item()

    results = {}
    for regularize in (True, False):
        torch.manual_seed(1)
        hnet = HMLP(mnet.param_shapes, cond_in_size=4, layers=(32,), num_cond_embs=2, verbose=False)
        train(hnet, 0, 400)
        task1_after_1 = mse(hnet, 0)
        reg = hnet(cond_id=[0], ret_format='flattened').detach() if regularize else None
        train(hnet, 1, 400, reg_targets=reg)
        results[regularize] = (task1_after_1, mse(hnet, 0), mse(hnet, 1))
    first, task1, task2 = results[True]
    assert first < 0.05 and task2 < 0.05, results
    assert task1 < 2 * first + 0.01, results          # task 1 kept
    assert results[False][1] > 5 * task1, results     # and without the regularizer it is forgotten
