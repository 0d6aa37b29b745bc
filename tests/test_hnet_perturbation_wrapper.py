"""HPerturbWrapper: default output perturbation, custom handlers, shared parameters."""
import pytest
import torch

from hnets.hnet_perturbation_wrapper import HPerturbWrapper
from hnets.mlp_hnet import HMLP

SHAPES = [[3, 2], [3]]  # 9 outputs


def _inner():
    return HMLP(SHAPES, uncond_in_size=4, cond_in_size=0, layers=(8,), num_cond_embs=0, verbose=False)


def test_default_perturbation_adds_scaled_noise():
    inner = _inner()
    hnet = HPerturbWrapper(inner, hnet_uncond_in_size=4, sigma_noise=0.1, verbose=False)
    z = torch.randn(5, 9)
    expected = inner(uncond_input=z[:, :4], ret_format='flattened') + 0.1 * z
    assert torch.equal(hnet(uncond_input=z, ret_format='flattened'), expected)
    stacked = hnet(uncond_input=z, ret_format='stacked')
    assert [list(t.shape) for t in stacked] == [[5, 3, 2], [5, 3]]
    assert hnet.param_shapes == inner.param_shapes and hnet.internal_hnet is inner
    assert len(hnet.internal_params) == len(inner.internal_params)
    assert len(list(hnet.parameters())) == len(inner.internal_params)
    assert not hnet.has_fc_out and not hnet.has_linear_out


def test_custom_handlers_and_external_weights():
    inner = HMLP(SHAPES, cond_in_size=3, layers=(8,), num_cond_embs=2, verbose=False)

    def input_handler(uncond_input=None, cond_input=None, cond_id=None):
        return None, None, cond_id

    def output_handler(out, uncond_input=None, cond_input=None, cond_id=None):
        return 2 * out

    hnet = HPerturbWrapper(inner, input_handler=input_handler, output_handler=output_handler, verbose=False)
    assert torch.equal(hnet(cond_id=[1, 0], ret_format='flattened'), 2 * inner(cond_id=[1, 0], ret_format='flattened'))
    ws = [p.detach() + 1 for p in inner.internal_params]
    assert torch.equal(hnet(cond_id=0, weights=ws, ret_format='flattened'),
                       2 * inner(cond_id=0, weights=ws, ret_format='flattened'))
    hnet(cond_id=1, ret_format='flattened').sum().backward()
    assert all(p.grad is not None for p in inner.unconditional_params)


def test_errors():
    inner = _inner()
    with pytest.raises(ValueError, match='hnet_uncond_in_size, input_handler'):
        HPerturbWrapper(inner, verbose=False)
    with pytest.raises(TypeError, match='hnet: expected a HyperNetInterface'):
        HPerturbWrapper(torch.nn.Linear(2, 2), hnet_uncond_in_size=2, verbose=False)
    hnet = HPerturbWrapper(inner, hnet_uncond_in_size=4, verbose=False)
    with pytest.raises(ValueError, match='uncond_input: expected a tensor \\[K, 9\\]'):
        hnet()
    with pytest.raises(ValueError, match='uncond_input: expected shape \\[K, 9\\]'):
        hnet(uncond_input=torch.randn(2, 5))
    with pytest.raises(ValueError, match='ret_format'):
        hnet(uncond_input=torch.randn(2, 9), ret_format='x')
