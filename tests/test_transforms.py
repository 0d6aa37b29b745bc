"""Tests of data.transforms against hand computations."""
import pytest
import torch

from data import transforms


def _images(batch=4, channels=2, size=5):
    numel = batch * channels * size * size
    return torch.arange(numel, dtype=torch.float32).reshape(batch, channels, size, size)


def test_layout_round_trip():
    flat = torch.arange(2 * 4 * 3 * 2, dtype=torch.float32).reshape(2, -1)
    nchw = transforms.flat_hwc_to_nchw(flat, (4, 3, 2))
    # Flat index of (h, w, c) in HWC order is (h * W + w) * C + c.
    assert nchw[1, 1, 2, 0] == flat[1, (2 * 3 + 0) * 2 + 1]
    assert torch.equal(transforms.nchw_to_flat_hwc(nchw), flat)
    with pytest.raises(ValueError, match='x: expected shape'):
        transforms.flat_hwc_to_nchw(flat, (4, 4, 2))


def test_normalize_per_channel():
    x = _images()
    out = transforms.normalize(x, (1.0, 2.0), (0.5, 4.0))
    torch.testing.assert_close(out[:, 0], (x[:, 0] - 1.0) / 0.5)
    torch.testing.assert_close(out[:, 1], (x[:, 1] - 2.0) / 4.0)
    with pytest.raises(ValueError, match='mean/std'):
        transforms.normalize(x, (0.0,), (1.0,))
    with pytest.raises(ValueError, match=r'x: expected shape \[B, C, H, W\]'):
        transforms.normalize(x[0], (0.0, 0.0), (1.0, 1.0))


def test_random_crop_equals_window_of_padded_image():
    x = _images(batch=6)
    gen = torch.Generator().manual_seed(3)
    out = transforms.random_crop_with_padding(x, 2, generator=gen)
    # Same draws as inside the function: offsets (dy, dx) per image.
    offsets = torch.randint(0, 5, (2, 6), generator=torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for b in range(6):
        dy, dx = offsets[0, b].item(), offsets[1, b].item()
        torch.testing.assert_close(out[b], padded[b, :, dy:dy + 5, dx:dx + 5], rtol=0, atol=0)
    assert transforms.random_crop_with_padding(x, 0) is x
    with pytest.raises(ValueError, match='padding'):
        transforms.random_crop_with_padding(x, -1)


def test_random_crop_hits_every_offset():
    x = torch.ones(400, 1, 3, 3)
    out = transforms.random_crop_with_padding(x, 1)
    # Shift (dy, dx) leaves a distinct zero pattern; all 9 must occur in 400 draws.
    assert len({tuple(o.flatten().tolist()) for o in out}) == 9


def test_horizontal_flip():
    x = _images(batch=200)
    out = transforms.random_horizontal_flip(x, prob=0.5)
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert torch.all(flipped ^ kept)
    # Binomial(200, 0.5): 60..140 holds with probability > 1 - 1e-8.
    assert 60 < int(flipped.sum()) < 140
    assert torch.equal(transforms.random_horizontal_flip(x, prob=1.0), x.flip(-1))
    assert torch.equal(transforms.random_horizontal_flip(x, prob=0.0), x)
    with pytest.raises(ValueError, match='prob'):
        transforms.random_horizontal_flip(x, prob=2.0)


def test_cutout_zeroes_a_clipped_square():
    x = torch.ones(50, 3, 8, 8)
    out = transforms.random_cutout(x, 4)
    zeros = (out[:, 0] == 0)
    assert torch.equal(zeros, (out[:, 2] == 0))
    counts = zeros.sum(dim=(1, 2))
    # A 4x4 square clipped at the border covers between 2x2 and 4x4 pixels.
    assert counts.min() >= 4 and counts.max() == 16
    with pytest.raises(ValueError, match='length'):
        transforms.random_cutout(x, 0)


def test_type_errors():
    with pytest.raises(TypeError, match='x: expected a torch.Tensor'):
        transforms.random_horizontal_flip([[1.0]])


@pytest.mark.cuda
def test_runs_on_cuda():
    x = _images().cuda()
    out = transforms.random_crop_with_padding(transforms.random_horizontal_flip(x), 1)
    assert out.device == x.device
