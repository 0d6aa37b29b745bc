"""Tests of utils.local_conv2d_layer.LocalConv2dLayer against an explicit per-pixel loop and Conv2d."""
import math

import pytest
import torch
import torch.nn.functional as F

from utils.local_conv2d_layer import LocalConv2dLayer

TOL = dict(rtol=1e-10, atol=1e-10)  # float64: only summation order differs


def _loop_reference(x, filters, bias, kernel, stride, padding):
    """G[n, o, y, x] = b[o, p] + sum_{i, a, b} W[o, (i, a, b), p] * x_pad[n, i, y*s + a, x*s + b], p = y*W + x."""
    x_pad = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
    n, c_in = x.shape[:2]
    c_out = filters.shape[0]
    out_h = (x_pad.shape[2] - kernel[0]) // stride[0] + 1
    out_w = (x_pad.shape[3] - kernel[1]) // stride[1] + 1
    out = torch.zeros(n, c_out, out_h, out_w, dtype=x.dtype)
    for row in range(out_h):
        for col in range(out_w):
            pixel = row * out_w + col
            patch = x_pad[:, :, row * stride[0]:row * stride[0] + kernel[0],
                          col * stride[1]:col * stride[1] + kernel[1]]
            w = filters[:, :, pixel].reshape(c_out, c_in, kernel[0], kernel[1])
            out[:, :, row, col] = torch.einsum('nihw,oihw->no', patch, w) + bias[:, pixel]
    return out


@pytest.mark.parametrize('kernel, stride, padding', [(3, 1, 0), ((2, 3), (2, 1), (1, 0)), (5, 2, 2)])
def test_equals_per_pixel_loop(kernel, stride, padding):
    layer = LocalConv2dLayer(2, 3, 7, 6, kernel, stride=stride, padding=padding).double()
    x = torch.randn(4, 2, 7, 6, dtype=torch.float64)
    as_pair = [(v, v) if isinstance(v, int) else v for v in (kernel, stride, padding)]
    expected = _loop_reference(x, layer.filters.detach(), layer.bias.detach(), *as_pair)
    out = layer(x)
    assert out.shape == expected.shape == (4, 3, layer.out_height, layer.out_width)
    torch.testing.assert_close(out, expected, **TOL)


def test_shared_filters_reduce_to_conv2d():
    """With the same filter at every pixel the layer is an ordinary convolution."""
    layer = LocalConv2dLayer(3, 4, 8, 8, 3, stride=2, padding=1, no_weights=True)
    kernel = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    num_pix = layer.out_height * layer.out_width
    filters = kernel.reshape(4, 27, 1).expand(4, 27, num_pix)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(layer(x, weights=[filters, bias[:, None].expand(4, num_pix)]),
                               F.conv2d(x, kernel, bias, stride=2, padding=1), **TOL)


def test_param_shapes_and_init_bound():
    layer = LocalConv2dLayer(3, 5, 10, 10, 3)
    assert layer.param_shapes == [[5, 27, 64], [5, 64]]
    assert [list(w.shape) for w in layer.weights] == layer.param_shapes
    bound = 1 / math.sqrt(27)
    assert layer.filters.abs().max() <= bound and layer.filters.abs().max() > 0.9 * bound
    no_bias = LocalConv2dLayer(3, 5, 10, 10, 3, bias=False)
    assert no_bias.param_shapes == [[5, 27, 64]] and len(no_bias.weights) == 1
    x = torch.randn(2, 3, 10, 10)
    assert torch.equal(no_bias(x), no_bias(x, weights=[no_bias.filters]))


def test_vmap_over_weight_sets_and_per_sample_weights():
    layer = LocalConv2dLayer(2, 3, 5, 5, 3, padding=1, no_weights=True)
    x = torch.randn(4, 2, 5, 5, dtype=torch.float64)
    filters = torch.randn(6, *layer.param_shapes[0], dtype=torch.float64)
    biases = torch.randn(6, *layer.param_shapes[1], dtype=torch.float64)
    loop = torch.stack([layer(x, weights=[filters[k], biases[k]]) for k in range(6)])
    vmapped = torch.func.vmap(lambda f, b: layer(x, weights=[f, b]))(filters, biases)
    torch.testing.assert_close(vmapped, loop, **TOL)
    # One weight set per sample (leading N) equals running each sample with its own set.
    per_sample = layer(x, weights=[filters[:4], biases[:4]])
    expected = torch.cat([layer(x[i:i + 1], weights=[filters[i], biases[i]]) for i in range(4)])
    torch.testing.assert_close(per_sample, expected, **TOL)


def test_gradients_reach_filters_and_bias():
    layer = LocalConv2dLayer(2, 3, 5, 5, 2)
    (layer(torch.randn(3, 2, 5, 5)) ** 2).sum().backward()
    assert torch.all(layer.filters.grad != 0) and torch.all(layer.bias.grad != 0)


def test_errors():
    layer = LocalConv2dLayer(2, 3, 5, 5, 3, no_weights=True)
    x = torch.randn(4, 2, 5, 5)
    with pytest.raises(ValueError, match='weights: the layer was built with no_weights=True'):
        layer(x)
    with pytest.raises(ValueError, match=r'x: expected shape \[N, 2, 5, 5\], got \[4, 2, 6, 5\]'):
        layer(torch.randn(4, 2, 6, 5), weights=[torch.zeros(3, 18, 9), torch.zeros(3, 9)])
    with pytest.raises(ValueError, match='weights: expected a list of 2 tensors, got 1 tensors'):
        layer(x, weights=[torch.zeros(3, 18, 9)])
    with pytest.raises(ValueError, match=r'weights: expected filters of shape \[3, 18, 9\]'):
        layer(x, weights=[torch.zeros(3, 18, 8), torch.zeros(3, 9)])
    with pytest.raises(ValueError, match=r'weights: expected bias of shape \[3, 9\]'):
        layer(x, weights=[torch.zeros(3, 18, 9), torch.zeros(9)])
    with pytest.raises(ValueError, match='kernel_size: a \\(7, 7\\) kernel does not fit'):
        LocalConv2dLayer(2, 3, 5, 5, 7)
    with pytest.raises(ValueError, match='stride: expected an int or a pair of ints'):
        LocalConv2dLayer(2, 3, 5, 5, 3, stride=(1, 1, 1))
    with pytest.raises(ValueError, match='in_channels: expected a positive int'):
        LocalConv2dLayer(0, 3, 5, 5, 3)
