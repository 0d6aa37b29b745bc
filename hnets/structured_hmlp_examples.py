"""Structured chunkings of residual networks for :class:`hnets.structured_mlp_hnet.StructuredHMLP`.

Each function returns ``(chunk_shapes, num_per_chunk, assembly_fct)``, ready for the ``StructuredHMLP``
constructor. A chunk is (a slice of) one layer: its weight and, where produced, its bias and batch-norm
scale/shift, in that order. Layers of equal shape are chunks of the same kind, so they share one internal
hypernetwork and differ only by their chunk embedding.

``gcd`` chunking goes further: a layer ``[C_out, C_in, 3, 3]`` is cut into ``C / g`` slices for the greatest
common divisor ``g`` of the feature-map counts involved, so layers of *different* widths share a chunk kind.

The assembly functions return the tensors in the order of the network's :attr:`param_shapes` (batch-norm
tensors, 1x1 shortcut convolutions, conv weights/biases, output layer), restricted to what is produced.
"""
import math

import torch

from mnets.resnet import ResNet
from mnets.wide_resnet import WRN

__all__ = ['resnet_chunking', 'wrn_chunking']


class _ChunkPlan:
    """Chunk kinds plus where every target tensor comes from; builds the assembly function.

    A *placement* fills the target tensors of one layer from ``count`` consecutive chunks of one kind:
    element ``e`` of those chunks goes to target ``targets[e]``. Several chunks are joined along
    ``weight_dim`` for the weight; the other elements are either joined along dim 0 (output slices,
    ``join_rest=True``) or taken from the first chunk (input slices share the layer's bias/bn).
    """

    def __init__(self):
        self.chunk_shapes = []
        self.num_per_chunk = []
        self._placements = []

    def add_kind(self, shapes, count):
        self.chunk_shapes.append([list(s) for s in shapes])
        self.num_per_chunk.append(count)
        return len(self.chunk_shapes) - 1

    def place(self, kind, first, count, targets, weight_dim=0, join_rest=True):
        self._placements.append((kind, first, count, list(targets), weight_dim, join_rest))

    def assembly_fct(self, num_targets):
        offsets = [sum(self.num_per_chunk[:k]) for k in range(len(self.num_per_chunk))]
        placements = [(offsets[kind] + first, count, targets, weight_dim, join_rest)
                      for kind, first, count, targets, weight_dim, join_rest in self._placements]
        num_chunks = sum(self.num_per_chunk)

        def assemble(list_of_chunks):
            if len(list_of_chunks) != num_chunks:
                raise ValueError('list_of_chunks: expected %d chunks, got %d' % (num_chunks, len(list_of_chunks)))
            out = [None] * num_targets
            for start, count, targets, weight_dim, join_rest in placements:
                chunks = list_of_chunks[start:start + count]
                for e, t in enumerate(targets):
                    if count == 1 or (e > 0 and not join_rest):
                        out[t] = chunks[0][e]
                    else:
                        out[t] = torch.cat([c[e] for c in chunks], dim=weight_dim if e == 0 else 0)
            return out

        return assemble


def _layers_of(net):
    """Per weight tensor (in :attr:`param_shapes` order): its index and that of its bias (or ``None``);
    and the ``(scale, shift)`` index pairs of the batch-norm layers."""
    meta = net.param_shapes_meta
    layers = []
    for i, m in enumerate(meta):
        if m['name'] == 'weight':
            has_b = i + 1 < len(meta) and meta[i + 1]['name'] == 'bias'
            layers.append((i, i + 1 if has_b else None))
    bn = [(i, i + 1) for i, m in enumerate(meta) if m['name'] == 'bn_scale']
    return layers, bn


def _check_net(net, cls, fn):
    if not isinstance(net, cls):
        raise TypeError('net: expected a %s.%s for %s, got %s'
                        % (cls.__module__, cls.__name__, fn, type(net).__name__))
    if net.context_mod_layers:
        raise ValueError('net: %s does not produce context-modulation weights; expected a net built with '
                         'use_context_mod=False' % fn)


def resnet_chunking(net, gcd_chunking=False):
    """A layer-wise chunking of a :class:`mnets.resnet.ResNet` (``6n + 2`` layers).

    Default: 8 chunk kinds -- the input conv layer, per residual group its first conv layer and its
    remaining ``2n - 1`` conv layers (all of one shape), and the output layer; ``num_per_chunk =
    [1, 1, 2n-1, 1, 2n-1, 1, 2n-1, 1]``. A chunk is ``[[C_out, C_in, 3, 3], [C_out], [C_out], [C_out]]``
    (weight, bias if ``use_bias``, batch-norm scale/shift if ``use_batch_norm``).

    ``gcd_chunking=True``: the ``6n`` group layers are cut along the output maps into slices of
    ``g = gcd(C_1, C_2, C_3, C_4)`` maps; one kind per input-map count ``C_i`` with chunks
    ``[[g, C_i, 3, 3], [g], ...]``, so 6 kinds in total.

    Args:
        net (mnets.resnet.ResNet): the main network (without context modulation).
        gcd_chunking (bool): see above.

    Returns:
        ``(chunk_shapes, num_per_chunk, assembly_fct)``; ``assembly_fct`` yields all of
        ``net.param_shapes``.
    """
    _check_net(net, ResNet, 'resnet_chunking')
    n = net._n
    shapes = net.param_shapes
    layers, bn = _layers_of(net)
    if len(layers) != 6 * n + 2:
        raise ValueError('net: expected %d weight tensors in a ResNet with n=%d, got %d'
                         % (6 * n + 2, n, len(layers)))

    def elements(l):
        """Target indices of layer ``l``: weight, bias, bn scale, bn shift (those that exist)."""
        w, b = layers[l]
        return [w] + ([] if b is None else [b]) + (list(bn[l]) if l < len(bn) else [])

    plan = _ChunkPlan()
    first = plan.add_kind([shapes[t] for t in elements(0)], 1)
    plan.place(first, 0, 1, elements(0))
    if gcd_chunking:
        maps = net._filter_sizes
        g = math.gcd(*maps)
        # Group layer l (1 .. 6n) reads C_0 (l = 1) or the maps of the group before it.
        by_input = [[1], list(range(2, 2 * n + 2)), list(range(2 * n + 2, 4 * n + 2)),
                    list(range(4 * n + 2, 6 * n + 1))]
        for c_in, group in zip(maps, by_input):
            proto = elements(group[0])
            kind = plan.add_kind([[g, c_in, *shapes[proto[0]][2:]]] + [[g]] * (len(proto) - 1),
                                 sum(shapes[layers[l][0]][0] // g for l in group))
            pos = 0
            for l in group:
                count = shapes[layers[l][0]][0] // g
                plan.place(kind, pos, count, elements(l))
                pos += count
    else:
        for grp in range(3):
            head = 1 + 2 * n * grp
            kind = plan.add_kind([shapes[t] for t in elements(head)], 1)
            plan.place(kind, 0, 1, elements(head))
            rest = list(range(head + 1, head + 2 * n))
            kind = plan.add_kind([shapes[t] for t in elements(rest[0])], len(rest))
            for pos, l in enumerate(rest):
                plan.place(kind, pos, 1, elements(l))
    last = plan.add_kind([shapes[t] for t in elements(6 * n + 1)], 1)
    plan.place(last, 0, 1, elements(6 * n + 1))
    return plan.chunk_shapes, plan.num_per_chunk, plan.assembly_fct(len(shapes))


def wrn_chunking(net, ignore_bn_weights=True, ignore_out_weights=True, gcd_chunking=False):
    """A chunking of a :class:`mnets.wide_resnet.WRN` after Sacramento et al., "Economical ensembles with
    hypernetworks" (2020), table S1.

    Chunk kinds, in order (those that exist):

    - the input conv layer (1 chunk);
    - per conv group ``g`` with input maps ``C_prev`` and output maps ``C = C_{g+1}``: if
      ``max/min(C_prev, C)`` is 1 or 2 (or ``gcd_chunking``), ONE kind of input slices
      ``[[C, d, 3, 3], [C], ...]`` with ``d = min(C_prev, C)`` (or ``gcd(C_prev, C)``): ``C_prev/d`` chunks
      for the first layer and ``C/d`` for each of the other ``2n - 1``, joined along the input maps (the
      bias/bn of a layer come from its first slice, the other slices' copies are unused); otherwise a kind
      for the group's first layer and one for its other ``2n - 1`` layers;
    - each 1x1 shortcut convolution (1 chunk each);
    - the output layer (unless ``ignore_out_weights``).

    Args:
        net (mnets.wide_resnet.WRN): the main network (without context modulation).
        ignore_bn_weights (bool): do not produce batch-norm scales/shifts.
        ignore_out_weights (bool): do not produce the output layer.
        gcd_chunking (bool): see above.

    Returns:
        ``(chunk_shapes, num_per_chunk, assembly_fct)``; ``assembly_fct`` yields ``net.param_shapes``
        without the ignored tensors, in their order.
    """
    _check_net(net, WRN, 'wrn_chunking')
    n = net._n
    maps = net._filter_sizes
    shapes = net.param_shapes
    all_layers, bn = _layers_of(net)
    use_bn = bool(bn) and not ignore_bn_weights
    skips = [w for w, _ in all_layers if shapes[w][2:] == [1, 1]]
    convs = [lb for lb in all_layers if shapes[lb[0]][2:] != [1, 1]]
    if len(convs) != 6 * n + 2:
        raise ValueError('net: expected %d conv/linear weight tensors in a WRN with n=%d, got %d'
                         % (6 * n + 2, n, len(convs)))
    fc = convs.pop()
    produced = [i for i in range(len(shapes)) if (use_bn or i not in {t for p in bn for t in p})
                and (not ignore_out_weights or i not in fc)]
    target_of = {p: t for t, p in enumerate(produced)}

    def elements(l):
        w, b = convs[l]
        return [target_of[w]] + ([] if b is None else [target_of[b]]) + \
            ([target_of[i] for i in bn[l]] if use_bn else [])

    def src_shapes(l):
        return [shapes[produced[t]] for t in elements(l)]

    plan = _ChunkPlan()
    kind = plan.add_kind(src_shapes(0), 1)
    plan.place(kind, 0, 1, elements(0))
    for g in range(3):
        c_prev, c = maps[g], maps[g + 1]
        group = list(range(1 + 2 * n * g, 1 + 2 * n * (g + 1)))
        if max(c_prev, c) / min(c_prev, c) in (1, 2) or gcd_chunking:
            d = min(c_prev, c) if max(c_prev, c) / min(c_prev, c) in (1, 2) else math.gcd(c_prev, c)
            proto = src_shapes(group[0])
            kind = plan.add_kind([[c, d, *proto[0][2:]]] + proto[1:], c_prev // d + (2 * n - 1) * (c // d))
            pos = 0
            for l in group:
                count = shapes[convs[l][0]][1] // d
                plan.place(kind, pos, count, elements(l), weight_dim=1, join_rest=False)
                pos += count
        else:
            kind = plan.add_kind(src_shapes(group[0]), 1)
            plan.place(kind, 0, 1, elements(group[0]))
            kind = plan.add_kind(src_shapes(group[1]), 2 * n - 1)
            for pos, l in enumerate(group[1:]):
                plan.place(kind, pos, 1, elements(l))
    for w in skips:
        kind = plan.add_kind([shapes[w]], 1)
        plan.place(kind, 0, 1, [target_of[w]])
    if not ignore_out_weights:
        out = [i for i in fc if i is not None]
        kind = plan.add_kind([shapes[i] for i in out], 1)
        plan.place(kind, 0, 1, [target_of[i] for i in out])
    return plan.chunk_shapes, plan.num_per_chunk, plan.assembly_fct(len(produced))
