"""Tests for utils.init_utils: fan computations on known shapes and the fan-in Xavier distribution."""
import math

import pytest
import torch

from utils.init_utils import calc_fan_in_and_out, xavier_fan_in_


@pytest.mark.parametrize('shape, fans', [([10, 20], (20, 10)), ([8, 3, 5, 5], (75, 200)), ([4, 2, 3], (6, 12)),
                                         ((6, 1), (1, 6))])
def test_fans_of_known_shapes(shape, fans):
    assert calc_fan_in_and_out(shape) == fans
    # Same convention as torch's private helper used by its init functions.
    assert calc_fan_in_and_out(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_xavier_fan_in_bounds_and_variance():
    torch.manual_seed(0)
    tensor = torch.empty(200, 30, 3, 3)  # fan-in 270, 54k draws
    assert xavier_fan_in_(tensor) is tensor
    bound = math.sqrt(3 / 270)
    assert tensor.abs().max() <= bound and tensor.abs().max() > 0.99 * bound
    # Target variance 1 / fan_in; the relative std error of a variance estimate of a uniform from 54k draws
    # is sqrt(0.8 / 54000) ~ 0.4%, so 2% is a 5-sigma bound.
    assert abs(tensor.var().item() * 270 - 1) < 0.02


def test_errors():
    with pytest.raises(ValueError, match=r'shapes: expected the shape of an at least 2-d tensor, got \[5\]'):
        calc_fan_in_and_out([5])
    with pytest.raises(ValueError, match='shapes: expected non-negative ints'):
        calc_fan_in_and_out([5, 2.5])
    with pytest.raises(ValueError, match='tensor: expected an at least 2-d weight'):
        xavier_fan_in_(torch.empty(3))
    with pytest.raises(ValueError, match='tensor: expected a non-zero fan-in'):
        xavier_fan_in_(torch.empty(3, 0))
