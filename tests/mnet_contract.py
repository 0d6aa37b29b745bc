"""Reusable checks of the main-network contract (``MainNetInterface``).

Every check takes a constructed network and an input batch and fails with an
``AssertionError`` when the network breaks the contract. Numerical checks run
in float64 (call :func:`as_double` first) so that "vmap equals the loop" can be
asserted to 1e-10: in float64 the only difference between the two is the
order of floating-point reductions, which costs ~1e-15 relative per op.
"""
import pytest
import torch

TOL = dict(rtol=1e-10, atol=1e-10)


def as_double(net):
    """Move ``net`` (parameters and buffers) to float64 and eval mode; returns it."""
    return net.double().eval()


def first_output(out):
    """The main output of ``forward`` (networks with ``out_fn`` return a tuple)."""
    return out[0] if isinstance(out, tuple) else out


def random_weights(net, num_sets=None, scale=0.5, dtype=torch.float64, generator=None):
    """Random tensors of ``net.param_shapes`` (with a leading ``num_sets`` if given)."""
    lead = [] if num_sets is None else [num_sets]
    return [scale * torch.randn(*lead, *s, dtype=dtype, generator=generator) for s in net.param_shapes]


def internal_as_full_list(net):
    """The internal parameters arranged in ``param_shapes`` order (detached copies)."""
    internal = net.internal_params
    return [internal[d['index']].detach().clone() for d in net.param_shapes_meta]


def check_bookkeeping(net):
    """``param_shapes``, ``param_shapes_meta``, ``num_params``, internal and
    learned shapes all describe the same set of tensors."""
    shapes = net.param_shapes
    meta = net.param_shapes_meta
    assert len(meta) == len(shapes)
    assert net.num_params == sum(int(torch.tensor(s).prod()) for s in shapes)
    internal = net.internal_params
    held = set()
    for slot, d in enumerate(meta):
        assert d['name'] in ('weight', 'bias', 'bn_scale', 'bn_shift', 'cm_scale', 'cm_shift', 'embedding')
        if d['index'] != -1:
            assert list(internal[d['index']].shape) == shapes[slot]
            held.add(d['index'])
    n_internal = 0 if internal is None else len(internal)
    assert held == set(range(n_internal)), 'every internal parameter must appear in param_shapes_meta'
    assert net.num_internal_params == sum(p.numel() for p in (internal or []))
    external = [slot for slot, d in enumerate(meta) if d['index'] == -1]
    if external:
        assert net.hyper_shapes_learned_ref == external
        assert net.hyper_shapes_learned == [shapes[i] for i in external]
    else:
        assert net.hyper_shapes_learned is None
    weights = [shapes[i] for i, d in enumerate(meta) if d['name'] == 'weight']
    if internal is not None and len(net.layer_weight_tensors) > 0:
        assert [list(w.shape) for w in net.layer_weight_tensors] == weights


def check_external_equals_internal(net, x):
    """Passing the internal weights explicitly gives the identical output."""
    expected = first_output(net(x))
    full = internal_as_full_list(net)
    assert torch.equal(first_output(net(x, weights=full)), expected)


def check_weights_used(net, x, weights):
    """Every tensor passed in ``weights`` changes the output (so all are used)
    and receives a nonzero gradient."""
    weights = [w.detach().clone().requires_grad_(True) for w in weights]
    out = first_output(net(x, weights=weights))
    (out ** 2).sum().backward()
    for i, w in enumerate(weights):
        assert w.grad is not None, f'weights[{i}] got no gradient'
        assert torch.any(w.grad != 0), f'weights[{i}] got an all-zero gradient'


def check_vmap_matches_loop(net, x, num_sets=3, distilled_params=None):
    """``torch.func.vmap`` over ``forward`` and ``forward_batch`` (shared and
    per-set ``x``) equal a loop of single forwards."""
    stack = random_weights(net, num_sets)

    def single(w, x_k):
        return first_output(net(x_k, weights=w, distilled_params=distilled_params))

    loop = torch.stack([single([t[k] for t in stack], x) for k in range(num_sets)])
    vmapped = torch.func.vmap(single, in_dims=(0, None))(stack, x)
    torch.testing.assert_close(vmapped, loop, **TOL)
    batched = first_output(net.forward_batch(x, stack, distilled_params=distilled_params))
    torch.testing.assert_close(batched, loop, **TOL)

    xs = torch.stack([x + 0.1 * k for k in range(num_sets)])
    loop_per_set = torch.stack([single([t[k] for t in stack], xs[k]) for k in range(num_sets)])
    batched = first_output(net.forward_batch(xs, stack, distilled_params=distilled_params))
    torch.testing.assert_close(batched, loop_per_set, **TOL)


def check_weight_errors(net, x):
    """Wrong count and wrong shape of ``weights`` raise ``ValueError`` naming it."""
    full = random_weights(net)
    with pytest.raises(ValueError, match='weights'):
        net(x, weights=full[:-1] + full[:-1])
    bad = list(full)
    bad[-1] = torch.zeros(*[d + 1 for d in full[-1].shape], dtype=full[-1].dtype)
    with pytest.raises(ValueError, match=r'weights\[.*expected shape'):
        net(x, weights=bad)
    with pytest.raises(TypeError, match='weights'):
        net(x, weights=full[0])


def check_no_weights_requires_weights(net, x):
    """A network built with ``no_weights=True`` refuses ``weights=None``."""
    with pytest.raises(ValueError, match='weights: .*no_weights'):
        net(x)


def check_all(net, x, num_sets=3):
    """Run every check on a network that holds all of its weights."""
    net = as_double(net)
    x = x.double()
    check_bookkeeping(net)
    check_external_equals_internal(net, x)
    check_weights_used(net, x, random_weights(net))
    check_vmap_matches_loop(net, x, num_sets)
    check_weight_errors(net, x)
