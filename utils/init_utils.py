r"""Weight-initialisation helpers complementing :mod:`torch.nn.init`.

For a weight of shape ``[out, in, *kernel]`` the *receptive field* is :math:`r = \prod \text{kernel}`
(1 for a linear layer), the fan-in is :math:`n_\text{in} = \text{in} \cdot r` and the fan-out
:math:`n_\text{out} = \text{out} \cdot r`. These are the numbers of inputs feeding one output unit and of
outputs fed by one input unit, which set the variance that keeps activations (fan-in) or gradients
(fan-out) at unit scale.
"""
import math

import torch

__all__ = ['xavier_fan_in_', 'calc_fan_in_and_out']


def calc_fan_in_and_out(shapes):
    """Fan-in and fan-out of a weight of the given shape.

    Args:
        shapes (list): Shape ``[out, in, *kernel]`` of an at least 2-d weight tensor.

    Returns:
        (tuple): ``(fan_in, fan_out)`` as ints, ``in * prod(kernel)`` and ``out * prod(kernel)``.
    """
    shapes = list(shapes)
    if len(shapes) < 2:
        raise ValueError(f'shapes: expected the shape of an at least 2-d tensor, got {shapes}')
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in shapes):
        raise ValueError(f'shapes: expected non-negative ints, got {shapes}')
    receptive_field = math.prod(shapes[2:])
    return shapes[1] * receptive_field, shapes[0] * receptive_field


@torch.no_grad()
def xavier_fan_in_(tensor):
    r"""Fill ``tensor`` in place with Xavier/Glorot-uniform values scaled by the fan-in only.

    :func:`torch.nn.init.xavier_uniform_` uses the average of fan-in and fan-out; here the variance is
    :math:`1 / n_\text{in}`, i.e. values are drawn from :math:`U(-a, a)` with :math:`a = \sqrt{3 / n_\text{in}}`.

    Args:
        tensor (torch.Tensor): At least 2-d weight ``[out, in, *kernel]``.

    Returns:
        torch.Tensor: ``tensor``.
    """
    if tensor.dim() < 2:
        raise ValueError(f'tensor: expected an at least 2-d weight, got shape {list(tensor.shape)}')
    fan_in, _ = calc_fan_in_and_out(list(tensor.shape))
    if fan_in == 0:
        raise ValueError(f'tensor: expected a non-zero fan-in, got shape {list(tensor.shape)}')
    bound = math.sqrt(3. / fan_in)
    return tensor.uniform_(-bound, bound)
