"""Tests for utils.torch_utils: default init, optimizer factory, LR schedule, Cutout."""
import math

import pytest
import torch

from utils.torch_utils import CutoutTransform, get_optimizer, init_params, lambda_lr_schedule


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize('make_layer', [lambda: torch.nn.Linear(50, 40),
                                        lambda: torch.nn.Conv2d(6, 8, kernel_size=5)])
def test_init_params_equals_torch_default(make_layer):
    # Same seed, same draws: torch's own reset_parameters must give bit-identical tensors.
    torch.manual_seed(1)
    layer = make_layer()
    w, b = torch.empty_like(layer.weight), torch.empty_like(layer.bias)
    torch.manual_seed(1)
    init_params(w, b)
    assert torch.equal(w, layer.weight.detach()) and torch.equal(b, layer.bias.detach())


def test_init_params_bounds():
    w, b = torch.empty(300, 400), torch.empty(300)
    init_params(w, b)
    bound = 1 / math.sqrt(400)
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    assert b.abs().max() <= bound
    # U(-c, c) has std c / sqrt(3): 120k draws give a relative std error ~0.3%.
    assert abs(w.std().item() / (bound / math.sqrt(3)) - 1) < 0.02
    with pytest.raises(ValueError, match='weights: expected a tensor with at least 2 dims'):
        init_params(torch.empty(5))


def test_get_optimizer_types_and_hyperparameters():
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in range(3)]
    sgd = get_optimizer(params, 0.1, momentum=0.9, weight_decay=1e-4)
    assert type(sgd) is torch.optim.SGD
    group = sgd.param_groups[0]
    assert (group['lr'], group['momentum'], group['weight_decay']) == (0.1, 0.9, 1e-4)

    adam = get_optimizer(params, 1e-3, use_adam=True, adam_beta1=0.5)
    assert type(adam) is torch.optim.Adam and tuple(adam.param_groups[0]['betas']) == (0.5, 0.999)
    rms = get_optimizer(params, 1e-3, momentum=0.3, use_rmsprop=True)
    assert type(rms) is torch.optim.RMSprop and rms.param_groups[0]['momentum'] == 0.3
    assert type(get_optimizer(params, 1., use_adadelta=True)) is torch.optim.Adadelta
    assert type(get_optimizer(params, 1e-2, use_adagrad=True)) is torch.optim.Adagrad

    net = torch.nn.Linear(3, 2)
    assert len(get_optimizer(net.parameters(), 0.1).param_groups[0]['params']) == 2  # generator consumed


def test_get_optimizer_parameter_groups():
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in range(3)]
    opt = get_optimizer(params, [0.1, 0.01], weight_decay=[0., 1e-3], use_adam=True, adam_beta1=[0.9, 0.8],
                        pgroup_ids=[1, 0, 1])
    first, second = opt.param_groups
    assert first['params'] == [params[1]] and second['params'] == [params[0], params[2]]
    assert (first['lr'], second['lr']) == (0.1, 0.01)
    assert (first['weight_decay'], second['weight_decay']) == (0., 1e-3)
    assert (first['betas'][0], second['betas'][0]) == (0.9, 0.8)


def test_get_optimizer_errors():
    params = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match='expected at most one to be True'):
        get_optimizer(params, 0.1, use_adam=True, use_rmsprop=True)
    with pytest.raises(ValueError, match=r'pgroup_ids: expected one group id per parameter \(1\), got 2'):
        get_optimizer(params, 0.1, pgroup_ids=[0, 1])
    with pytest.raises(ValueError, match='pgroup_ids: expected non-negative ints'):
        get_optimizer(params, 0.1, pgroup_ids=[-1])
    with pytest.raises(ValueError, match=r'lr: expected one value per parameter group \(1\), got 2'):
        get_optimizer(params, [0.1, 0.2])
    with pytest.raises(TypeError, match='params'):
        get_optimizer(params[0], 0.1)


def test_lambda_lr_schedule():
    epochs = [0, 80, 81, 120, 121, 160, 161, 180, 181, 300]
    assert [lambda_lr_schedule(e) for e in epochs] == [1., 1., 1e-1, 1e-1, 1e-2, 1e-2, 1e-3, 1e-3, 5e-4, 5e-4]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda_lr_schedule)
    for _ in range(81):
        opt.step()
        sched.step()
    assert math.isclose(opt.param_groups[0]['lr'], 0.05)


def test_cutout():
    img = torch.ones(3, 32, 32)
    out = CutoutTransform(n_holes=1, length=8)(img)
    zero_mask = out[0] == 0
    assert torch.equal(zero_mask, out[1] == 0) and torch.equal(zero_mask, out[2] == 0)  # same patch per channel
    rows, cols = zero_mask.any(1).nonzero(), zero_mask.any(0).nonzero()
    assert 0 < len(rows) <= 8 and 0 < len(cols) <= 8  # clipped at the border when centred near it
    assert int(zero_mask.sum()) == len(rows) * len(cols)  # a single rectangle
    assert torch.equal(img, torch.ones(3, 32, 32))  # input untouched
    assert torch.equal(CutoutTransform(0, 8)(img), img)
    with pytest.raises(ValueError, match='img'):
        CutoutTransform(1, 4)(torch.ones(32, 32))
    with pytest.raises(ValueError, match='n_holes'):
        CutoutTransform(-1, 4)
