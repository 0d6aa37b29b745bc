"""HDeconv: image sizes, exact output count, batched conditions, explicit layer-by-layer reference,
external weights and vmap, gradients, batch norm / spectral norm options, errors."""
import pytest
import torch
import torch.nn.functional as F

from hnets.deconv_hnet import HDeconv
from mnets.mlp import MLP

MNET = MLP(n_in=5, n_out=3, hidden_layers=(10,), verbose=False)
SHAPES = MNET.param_shapes  # 93 outputs
TOL = dict(rtol=1e-4, atol=1e-5)


def _hnet(**kw):
    args = dict(num_layers=3, num_filters=[16, 8], kernel_size=4, sa_units=(0, 1), cond_in_size=4,
                num_cond_embs=3, verbose=False)
    args.update(kw)
    return HDeconv(SHAPES, (10, 11), **args)


def test_planned_image_sizes_and_exact_output_count():
    hnet = _hnet()
    # 10 x 11 <- 5 x 6 (stride 2) <- 5 x 6 (3 < 4: stride 1) from the fully-connected layer
    assert hnet._sizes == [[5, 6], [5, 6], [10, 11]] and hnet._strides == [(1, 1), (2, 2)]
    feats = []
    hnet._sa_layers['1'].register_forward_hook(lambda m, i, o: feats.append(o.shape))
    out = hnet(cond_id=[0, 2], ret_format='flattened')
    assert out.shape == (2, 93) and feats == [torch.Size([2, 8, 5, 6])]
    assert [list(t.shape) for t in hnet(cond_id=1)] == SHAPES
    big = HDeconv(SHAPES, (32, 20, 2), num_layers=5, num_filters=[32, 16, 8, 8], sa_units=(1, 3), verbose=False)
    assert big._sizes[-1] == [32, 20] and big._sizes[0] == [4, 5]
    assert big(cond_id=0, ret_format='flattened').shape == (1, 93)
    logits = MNET.forward(torch.randn(4, 5), weights=hnet(cond_id=0))
    assert logits.shape == (4, 3)


def test_equals_explicit_layer_by_layer_reference_and_batched_cond_ids():
    hnet = _hnet(sa_units=(1,))
    with torch.no_grad():
        for m in hnet.param_shapes_meta:
            if m['name'] == 'sa_gamma':
                hnet.internal_params[m['index']].fill_(0.5)
    out = hnet(cond_id=[2, 0], ret_format='flattened')
    params = [hnet.internal_params[m['index']] for m in hnet.param_shapes_meta[3:]]
    fc_w, fc_b, c1_w, c1_b = params[:4]
    sa = params[4:11]
    c2_w, c2_b = params[11:]
    e = torch.stack([hnet.get_cond_in_emb(2), hnet.get_cond_in_emb(0)])
    h = F.relu((e @ fc_w.T + fc_b).reshape(2, 16, 5, 6))
    h = F.relu(F.conv_transpose2d(h, c1_w, c1_b, padding=(1, 1))[:, :, :5, :6])
    h = hnet._sa_layers['1'](h, weights=sa)
    h = F.conv_transpose2d(h, c2_w, c2_b, stride=2, padding=(1, 1))[:, :, :10, :11]
    assert torch.allclose(out, h.reshape(2, -1)[:, :93], **TOL)
    for k, c in enumerate([2, 0]):
        assert torch.allclose(out[k], hnet(cond_id=c, ret_format='flattened')[0], **TOL)


def test_gradients_reach_every_parameter():
    hnet = _hnet(use_batch_norm=True)
    with torch.no_grad():
        for m in hnet.param_shapes_meta:
            if m['name'] == 'sa_gamma':  # gamma = 0 at init blocks the attention weights' gradients
                hnet.internal_params[m['index']].fill_(0.5)
    hnet(cond_id=[0, 1, 2], ret_format='flattened').pow(2).sum().backward()
    for i, (p, m) in enumerate(zip(hnet.internal_params, hnet.param_shapes_meta)):
        if m.get('sa_role') == 'key_bias':
            # f_i . (g_j + b) = f_i . g_j + f_i . b: constant over j, so the softmax removes it (exactly zero)
            assert p.grad is not None and torch.allclose(p.grad, torch.zeros_like(p), atol=1e-6)
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, (i, m)


def test_external_weights_vmap_and_spectral_norm():
    ref = _hnet(use_spectral_norm=True)
    ext = _hnet(use_spectral_norm=True, no_uncond_weights=True)
    theta = [p.detach() for p in ref.unconditional_params]
    e = torch.randn(2, 4)
    expected = ref(cond_input=e, ret_format='flattened')
    assert torch.allclose(ext(cond_input=e, weights={'uncond_weights': theta}, ret_format='flattened'), expected,
                          rtol=1e-6, atol=1e-7)
    stack = [torch.stack([t, t + 0.1]) for t in theta]
    batched = torch.func.vmap(lambda ws: ext(cond_input=e, weights={'uncond_weights': ws},
                                             ret_format='flattened'))(stack)
    assert torch.allclose(batched[0], expected, **TOL)
    assert torch.allclose(batched[1], ext(cond_input=e, weights={'uncond_weights': [t + 0.1 for t in theta]},
                                          ret_format='flattened'), **TOL)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_layers=1), 'num_layers: expected an int >= 2'),
    (dict(num_filters=[8]), 'num_filters: expected 2 positive ints'),
    (dict(kernel_size=[3]), 'kernel_size: expected an int, a tuple or a list of 2'),
    (dict(kernel_size=1), 'kernel_size: kernel \\(1, 1\\) of transposed conv layer 2 is too small'),
    (dict(sa_units=(2,)), 'sa_units: expected layer indices in \\[0, 2\\)'),
    (dict(num_filters=[16, 4], sa_units=(1,)), 'sa_units: self-attention after layer 1 needs >= 8 channels'),
    (dict(cond_in_size=0), 'uncond_in_size, cond_in_size: expected a positive total input size'),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _hnet(**kwargs)


def test_bad_image_and_inputs():
    with pytest.raises(ValueError, match='hyper_img_shape: expected at least num_outputs = 93 pixels, got '
                                         '\\[9, 10, 1\\] = 90'):
        HDeconv(SHAPES, (9, 10), verbose=False)
    with pytest.raises(ValueError, match='hyper_img_shape: expected \\(width, height\\)'):
        HDeconv(SHAPES, (10,), verbose=False)
    hnet = _hnet()
    with pytest.raises(ValueError, match='cond_input: expected a tensor of shape \\[K, 4\\], got \\[2, 3\\]'):
        hnet(cond_input=torch.randn(2, 3))
    with pytest.raises(ValueError, match='cond_id: expected values in \\[0, 3\\), got 5'):
        hnet(cond_id=5)
