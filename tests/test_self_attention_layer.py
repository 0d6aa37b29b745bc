"""SelfAttnLayerV2 against an explicit per-location computation, supplied vs held weights, vmap, errors."""
import pytest
import torch

from utils.self_attention_layer import SelfAttnLayerV2


def _explicit(x, w):
    """SAGAN attention written location by location: o_i = sum_j softmax_j(f_i . g_j) v_j."""
    b, c, wd, ht = x.shape
    flat = x.reshape(b, c, -1)
    f = torch.einsum('oc,bcn->bon', w[0][:, :, 0, 0], flat) + w[1][:, None]
    g = torch.einsum('oc,bcn->bon', w[2][:, :, 0, 0], flat) + w[3][:, None]
    v = torch.einsum('oc,bcn->bon', w[4][:, :, 0, 0], flat) + w[5][:, None]
    out = torch.empty_like(flat)
    att = torch.empty(b, wd * ht, wd * ht)
    for i in range(wd * ht):
        a = torch.softmax((f[:, :, i:i + 1] * g).sum(1), dim=-1)   # [b, N]
        att[:, i] = a
        out[:, :, i] = (v * a[:, None]).sum(-1)
    return w[6] * out.reshape(b, c, wd, ht) + x, att


def test_equals_explicit_computation_and_supplied_weights():
    layer = SelfAttnLayerV2(16, False)
    assert layer.weight_shapes == [[2, 16, 1, 1], [2], [2, 16, 1, 1], [2], [16, 16, 1, 1], [16], [1]]
    assert float(layer.weights[6].detach()) == 0.  # starts as the identity
    x = torch.randn(3, 16, 4, 5)
    assert torch.equal(layer(x), x)
    with torch.no_grad():
        layer.weights[6].fill_(0.8)
    y, att = layer(x, ret_attention=True)
    ref, ref_att = _explicit(x, list(layer.weights))
    assert torch.allclose(y, ref, atol=1e-5) and torch.allclose(att, ref_att, atol=1e-6)
    assert torch.allclose(att.sum(-1), torch.ones(3, 20))
    ext = SelfAttnLayerV2(16, False, no_weights=True)
    assert ext.weights is None
    # Not bitwise: torch.matmul folds the batch dimension differently when an operand requires grad, so the
    # held (grad-requiring) and the supplied (detached) weights may round differently (seen on AMD EPYC).
    assert torch.allclose(ext(x, weights=[p.detach() for p in layer.weights]), y.detach(), rtol=0, atol=1e-6)
    d = [torch.randn(s) * 0.1 for s in layer.weight_shapes]
    assert torch.allclose(layer(x, dWeights=d), ext(x, weights=[p + q for p, q in zip(layer.weights, d)]))
    init = SelfAttnLayerV2(16, False, init_weights=[p.detach() for p in layer.weights])
    assert torch.equal(init(x), y.detach())


def test_gradients_spectral_norm_and_vmap():
    layer = SelfAttnLayerV2(8, True)
    with torch.no_grad():
        layer.weights[6].fill_(1.)
    x = torch.randn(2, 8, 3, 3)
    layer(x).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.weights)
    # spectral norm: scaling a weight does not change the output
    ws = [p.detach() for p in layer.weights]
    scaled = [w * 3 if i in (0, 2, 4) else w for i, w in enumerate(ws)]
    assert torch.allclose(layer(x, weights=ws), layer(x, weights=scaled), atol=1e-5)
    stack = [torch.stack([w, 2 * w]) for w in ws]
    out = torch.func.vmap(lambda w: layer(x, weights=w))(stack)
    assert torch.allclose(out[1], layer(x, weights=[2 * w for w in ws]), atol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match='in_dim: expected an int >= 8'):
        SelfAttnLayerV2(4, False)
    with pytest.raises(ValueError, match='init_weights: expected None when no_weights=True'):
        SelfAttnLayerV2(8, False, no_weights=True, init_weights=[])
    layer = SelfAttnLayerV2(8, False, no_weights=True)
    with pytest.raises(ValueError, match='weights: expected a list of 7 tensors since the layer holds none'):
        layer(torch.randn(1, 8, 2, 2))
    with pytest.raises(ValueError, match='weights: expected a list of 7 tensors, got 6'):
        layer(torch.randn(1, 8, 2, 2), weights=[torch.zeros(1)] * 6)
    with pytest.raises(ValueError, match='weights\\[1\\]: expected shape \\[1\\], got \\[2\\]'):
        layer(torch.randn(1, 8, 2, 2), weights=[torch.zeros(s) for s in [[1, 8, 1, 1], [2]]] + [None] * 5)
    good = [torch.zeros(s) for s in layer.weight_shapes]
    with pytest.raises(ValueError, match='x: expected a tensor \\[B, 8, W, H\\], got \\[1, 4, 2, 2\\]'):
        layer(torch.randn(1, 4, 2, 2), weights=good)
