"""Batched image transforms in plain torch ops (no torchvision, no PIL).

All functions take a batch ``x`` of shape ``[B, C, H, W]`` and work on any
device: random numbers are drawn on ``x.device`` (from ``generator`` if given,
else from torch's global RNG for that device), so a whole mini-batch is
augmented with a handful of tensor ops instead of a Python loop over images.

Dataset handlers store images as flat rows in ``H x W x C`` (channels last)
order; :func:`flat_hwc_to_nchw` and :func:`nchw_to_flat_hwc` convert between
that layout and the ``NCHW`` layout the transforms use.
"""
import torch
import torch.nn.functional as F


def _check_images(x, name='x'):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'{name}: expected a torch.Tensor, got {type(x).__name__}')
    if x.dim() != 4:
        raise ValueError(f'{name}: expected shape [B, C, H, W], got {list(x.shape)}')


def flat_hwc_to_nchw(x, img_shape):
    """``[B, H*W*C]`` rows (channels last) -> ``[B, C, H, W]``.

    Args:
        x (torch.Tensor): Flat images.
        img_shape (sequence): ``(H, W, C)``.
    """
    height, width, channels = img_shape
    if x.dim() != 2 or x.shape[1] != height * width * channels:
        raise ValueError(f'x: expected shape [B, {height * width * channels}], got {list(x.shape)}')
    return x.reshape(-1, height, width, channels).permute(0, 3, 1, 2)


def nchw_to_flat_hwc(x):
    """``[B, C, H, W]`` -> ``[B, H*W*C]`` rows in channels-last order."""
    _check_images(x)
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


def normalize(x, mean, std):
    """Per-channel standardisation ``(x[:, c] - mean[c]) / std[c]``.

    Args:
        x (torch.Tensor): ``[B, C, H, W]``.
        mean (sequence of float): ``C`` channel means.
        std (sequence of float): ``C`` channel standard deviations (> 0).
    """
    _check_images(x)
    mean_t = torch.as_tensor(mean, dtype=x.dtype, device=x.device).reshape(-1)
    std_t = torch.as_tensor(std, dtype=x.dtype, device=x.device).reshape(-1)
    if mean_t.numel() != x.shape[1] or std_t.numel() != x.shape[1]:
        raise ValueError(f'mean/std: expected {x.shape[1]} values (one per channel), '
                         f'got {mean_t.numel()} and {std_t.numel()}')
    return (x - mean_t[None, :, None, None]) / std_t[None, :, None, None]


def random_crop_with_padding(x, padding, generator=None):
    """Zero-pad by ``padding`` pixels on each side, then crop a random
    ``H x W`` window per image (the classic CIFAR/MNIST augmentation).

    Each image ``b`` gets offsets ``(dy_b, dx_b)`` uniform in
    ``{0, ..., 2 * padding}``; output pixel ``(i, j)`` is padded pixel
    ``(dy_b + i, dx_b + j)``. Implemented as one gather over the batch.

    Args:
        x (torch.Tensor): ``[B, C, H, W]``.
        padding (int): Padding width ``p >= 0``.
        generator (torch.Generator, optional): RNG on ``x.device``.

    Returns:
        (torch.Tensor): ``[B, C, H, W]``.
    """
    _check_images(x)
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f'padding: expected a non-negative int, got {padding!r}')
    if padding == 0:
        return x
    batch, _, height, width = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (2, batch), device=x.device, generator=generator)
    rows = offsets[0][:, None] + torch.arange(height, device=x.device)[None, :]
    cols = offsets[1][:, None] + torch.arange(width, device=x.device)[None, :]
    batch_idx = torch.arange(batch, device=x.device)[:, None, None]
    # Advanced indices separated by a slice move to the front: [B, H, W, C].
    crops = padded[batch_idx, :, rows[:, :, None], cols[:, None, :]]
    return crops.permute(0, 3, 1, 2)


def random_horizontal_flip(x, prob=0.5, generator=None):
    """Mirror each image left-right independently with probability ``prob``.

    Args:
        x (torch.Tensor): ``[B, C, H, W]``.
        prob (float): Flip probability in ``[0, 1]``.
        generator (torch.Generator, optional): RNG on ``x.device``.
    """
    _check_images(x)
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f'prob: expected a probability in [0, 1], got {prob}')
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < prob
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_cutout(x, length, generator=None):
    """Zero a ``length x length`` square at a random centre of each image
    (Cutout, DeVries & Taylor 2017); squares are clipped at the borders.

    Pixel ``(i, j)`` of image ``b`` is zeroed iff
    ``cy_b - length//2 <= i < cy_b - length//2 + length`` and the same holds
    for ``j`` and ``cx_b``; centres are uniform over all pixels.

    Args:
        x (torch.Tensor): ``[B, C, H, W]``.
        length (int): Side of the square (> 0).
        generator (torch.Generator, optional): RNG on ``x.device``.
    """
    _check_images(x)
    if not isinstance(length, int) or length <= 0:
        raise ValueError(f'length: expected a positive int, got {length!r}')
    batch, _, height, width = x.shape
    cy = torch.randint(0, height, (batch, 1), device=x.device, generator=generator)
    cx = torch.randint(0, width, (batch, 1), device=x.device, generator=generator)
    rows = torch.arange(height, device=x.device)[None, :]
    cols = torch.arange(width, device=x.device)[None, :]
    half = length // 2
    in_rows = (rows >= cy - half) & (rows < cy - half + length)
    in_cols = (cols >= cx - half) & (cols < cx - half + length)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
    return x * keep[:, None, :, :].to(x.dtype)
