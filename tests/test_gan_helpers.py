"""GAN losses against their closed forms, accuracy thresholds, mean-stat concatenation, errors."""
import math

import pytest
import torch

from utils.gan_helpers import accuracy, concat_mean_stats, dis_loss, gen_loss

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-0.5, 1.5])


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_losses_equal_closed_forms():
    r, f = REAL.tolist(), FAKE.tolist()
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    bce = lambda p, t: -(t * math.log(p) + (1 - t) * math.log(1 - p))  # noqa: E731
    expected_dis = {
        0: mean([bce(_sig(x), 0.9) for x in r]) + mean([bce(_sig(x), 0.) for x in f]),
        1: mean([(x - 1) ** 2 for x in r]) + mean([x ** 2 for x in f]),
        2: mean([(x - 1) ** 2 for x in r]) + mean([(x + 1) ** 2 for x in f]),
        3: mean(f) - mean(r),
    }
    expected_gen = {0: mean([-math.log(_sig(x)) for x in f]), 1: mean([(x - 1) ** 2 for x in f]),
                    2: mean([x ** 2 for x in f]), 3: -mean(f)}
    for c in range(4):
        assert dis_loss(REAL, FAKE, c).item() == pytest.approx(expected_dis[c], rel=1e-6)
        assert gen_loss(FAKE, c).item() == pytest.approx(expected_gen[c], rel=1e-6)


def test_vanilla_loss_stays_finite_for_large_logits():
    big = torch.tensor([100.])
    assert torch.isfinite(dis_loss(big, big, 0)) and torch.isfinite(gen_loss(-big, 0))
    assert gen_loss(-big, 0).item() == pytest.approx(100., rel=1e-6)


def test_accuracy_thresholds():
    # vanilla/WGAN/Pearson: threshold 0 -> real 2.0, 0.5 correct; fake -0.5 correct -> 3 / 5
    for c in (0, 2, 3):
        assert accuracy(REAL, FAKE, c).item() == pytest.approx(3 / 5)
    # LSGAN: threshold 0.5 -> real 2.0 correct only; fake -0.5 correct -> 2 / 5
    assert accuracy(REAL, FAKE, 1).item() == pytest.approx(2 / 5)


def test_concat_mean_stats():
    x = torch.randn(4, 3, 2)
    out = concat_mean_stats(x)
    assert out.shape == (4, 6, 2)
    assert torch.allclose(out[:, :3], x.mean(0, keepdim=True).expand(4, 3, 2)) and torch.equal(out[:, 3:], x)


def test_errors():
    with pytest.raises(ValueError, match='loss_choice: expected one of \\[0, 1, 2, 3\\].*got 4'):
        dis_loss(REAL, FAKE, 4)
    with pytest.raises(ValueError, match='loss_choice'):
        gen_loss(FAKE, True)
    with pytest.raises(ValueError, match='loss_choice'):
        accuracy(REAL, FAKE, -1)
    with pytest.raises(ValueError, match='inputs: expected a tensor \\[B, F, ...\\], got \\[3\\]'):
        concat_mean_stats(torch.zeros(3))
