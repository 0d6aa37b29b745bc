"""resnet_chunking / wrn_chunking: chunk shapes and counts as hypnettorch 0.0.4 (reference values recorded
from it for the same networks), assembly semantics, StructuredHMLP producing exactly the main network's
shapes (and weights the network runs with), and errors."""
import pytest
import torch

from hnets.structured_hmlp_examples import resnet_chunking, wrn_chunking
from hnets.structured_mlp_hnet import StructuredHMLP
from mnets.mlp import MLP
from mnets.resnet import ResNet
from mnets.wide_resnet import WRN

IN = (8, 8, 3)


def _resnet(**kw):
    args = dict(in_shape=IN, num_classes=5, n=1, k=1, num_feature_maps=(8, 12, 24, 36), use_bias=True,
                use_batch_norm=True, verbose=False)
    args.update(kw)
    return ResNet(**args)


def _wrn(**kw):
    args = dict(in_shape=IN, num_classes=5, n=1, k=3, num_feature_maps=(8, 12, 24, 36), use_bias=True,
                use_batch_norm=True, verbose=False)
    args.update(kw)
    return WRN(**args)


def _random_chunks(chunk_shapes, num_per_chunk):
    return [[torch.randn(s) for s in shapes] for shapes, k in zip(chunk_shapes, num_per_chunk) for _ in range(k)]


def test_resnet_chunking_matches_hypnettorch():
    cs, npc, _ = resnet_chunking(_resnet())
    assert cs == [[[8, 3, 3, 3], [8], [8], [8]], [[12, 8, 3, 3], [12], [12], [12]], [[12, 12, 3, 3], [12], [12], [12]],
                  [[24, 12, 3, 3], [24], [24], [24]], [[24, 24, 3, 3], [24], [24], [24]],
                  [[36, 24, 3, 3], [36], [36], [36]], [[36, 36, 3, 3], [36], [36], [36]], [[5, 36], [5]]]
    assert npc == [1, 1, 1, 1, 1, 1, 1, 1]
    cs, npc, _ = resnet_chunking(_resnet(), gcd_chunking=True)
    assert cs == [[[8, 3, 3, 3], [8], [8], [8]], [[4, 8, 3, 3], [4], [4], [4]], [[4, 12, 3, 3], [4], [4], [4]],
                  [[4, 24, 3, 3], [4], [4], [4]], [[4, 36, 3, 3], [4], [4], [4]], [[5, 36], [5]]]
    assert npc == [1, 3, 9, 15, 9, 1]
    cs, npc, _ = resnet_chunking(_resnet(n=3, use_bias=False, use_batch_norm=False))
    assert npc == [1, 1, 5, 1, 5, 1, 5, 1] and cs[2] == [[12, 12, 3, 3]] and cs[-1] == [[5, 36]]


def test_wrn_chunking_matches_hypnettorch():
    cs, npc, _ = wrn_chunking(_wrn())
    assert cs == [[[8, 3, 3, 3], [8]], [[36, 8, 3, 3], [36]], [[36, 36, 3, 3], [36]], [[72, 36, 3, 3], [72]],
                  [[108, 72, 3, 3], [108]], [[108, 108, 3, 3], [108]], [[36, 8, 1, 1]], [[72, 36, 1, 1]],
                  [[108, 72, 1, 1]]]
    assert npc == [1, 1, 1, 3, 1, 1, 1, 1, 1]
    cs, npc, _ = wrn_chunking(_wrn(), gcd_chunking=True)
    assert cs == [[[8, 3, 3, 3], [8]], [[36, 4, 3, 3], [36]], [[72, 36, 3, 3], [72]], [[108, 36, 3, 3], [108]],
                  [[36, 8, 1, 1]], [[72, 36, 1, 1]], [[108, 72, 1, 1]]]
    assert npc == [1, 11, 3, 5, 1, 1, 1]
    cs, npc, _ = wrn_chunking(_wrn(k=2, num_feature_maps=(16, 16, 32, 64)), ignore_bn_weights=False,
                              ignore_out_weights=False, gcd_chunking=True)
    assert cs == [[[16, 3, 3, 3], [16], [16], [16]], [[32, 16, 3, 3], [32], [32], [32]],
                  [[64, 32, 3, 3], [64], [64], [64]], [[128, 64, 3, 3], [128], [128], [128]], [[32, 16, 1, 1]],
                  [[64, 32, 1, 1]], [[128, 64, 1, 1]], [[5, 128], [5]]]
    assert npc == [1, 3, 3, 3, 1, 1, 1, 1]


def test_wrn_28_10_chunking_of_the_paper():
    # Sacramento et al. (2020), table S1: the first group is too wide for its input (ratio 10) and gets its
    # own first-layer kind; groups 2 and 3 (ratio 2) are 160-wide input slices. hypnettorch 0.0.4 fails on
    # this net (use_bias=False) with an AssertionError.
    wrn = WRN(in_shape=(32, 32, 3), num_classes=10, n=4, k=10, use_bias=False, use_fc_bias=True, no_weights=True,
              verbose=False)
    cs, npc, _ = wrn_chunking(wrn)
    assert cs == [[[16, 3, 3, 3]], [[160, 16, 3, 3]], [[160, 160, 3, 3]], [[320, 160, 3, 3]], [[640, 320, 3, 3]],
                  [[160, 16, 1, 1]], [[320, 160, 1, 1]], [[640, 320, 1, 1]]]
    assert npc == [1, 1, 7, 15, 15, 1, 1, 1]


def test_assembly_places_slices_where_they_belong():
    net = _resnet()
    cs, npc, afct = resnet_chunking(net, gcd_chunking=True)
    chunks = _random_chunks(cs, npc)
    out = afct(chunks)
    assert [list(t.shape) for t in out] == net.param_shapes
    meta = net.param_shapes_meta
    weights = [i for i, m in enumerate(meta) if m['name'] == 'weight']
    # layer 1 ([12, 8, 3, 3]) is chunks 1..3 stacked along the output maps, its bias likewise
    assert torch.equal(out[weights[1]], torch.cat([chunks[k][0] for k in (1, 2, 3)]))
    assert torch.equal(out[weights[1] + 1], torch.cat([chunks[k][1] for k in (1, 2, 3)]))
    bn_scales = [i for i, m in enumerate(meta) if m['name'] == 'bn_scale']
    assert torch.equal(out[bn_scales[1]], torch.cat([chunks[k][2] for k in (1, 2, 3)]))

    wrn = _wrn()
    cs, npc, afct = wrn_chunking(wrn, gcd_chunking=True)
    chunks = _random_chunks(cs, npc)
    out = afct(chunks)
    convs = [t for t in out if t.dim() == 4 and t.shape[-1] == 3]
    # first group layer [36, 8, 3, 3]: chunks 1, 2 ([36, 4, 3, 3]) joined along the input maps; its bias
    # comes from the first slice
    assert torch.equal(convs[1], torch.cat([chunks[1][0], chunks[2][0]], dim=1))
    with pytest.raises(ValueError, match='list_of_chunks: expected 23 chunks, got 22'):
        afct(chunks[:-1])


@pytest.mark.parametrize('gcd', [False, True])
def test_structured_hmlp_produces_resnet_weights(gcd):
    net = _resnet(no_weights=True)
    cs, npc, afct = resnet_chunking(net, gcd_chunking=gcd)
    hnet = StructuredHMLP(net.param_shapes, cs, npc, 4, {'layers': [8]}, afct, cond_in_size=4, num_cond_embs=2,
                          verbose=False)
    out = hnet(cond_id=[0, 1], ret_format='sequential')
    assert [[list(t.shape) for t in ws] for ws in out] == [net.param_shapes] * 2
    assert hnet.num_outputs == net.num_params
    x = torch.randn(3, *IN)
    logits = net.forward(x, weights=out[1])
    assert logits.shape == (3, 5) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in hnet.internal_params)


@pytest.mark.parametrize('ignore_bn, ignore_out, gcd', [(True, True, False), (False, False, True)])
def test_structured_hmlp_produces_wrn_weights(ignore_bn, ignore_out, gcd):
    net = _wrn(no_weights=True)
    skipped = {'bn_scale', 'bn_shift'} if ignore_bn else set()
    out_layer = {len(net.param_shapes) - 2, len(net.param_shapes) - 1} if ignore_out else set()
    targets = [s for i, (s, m) in enumerate(zip(net.param_shapes, net.param_shapes_meta))
               if m['name'] not in skipped and i not in out_layer]
    cs, npc, afct = wrn_chunking(net, ignore_bn_weights=ignore_bn, ignore_out_weights=ignore_out, gcd_chunking=gcd)
    hnet = StructuredHMLP(targets, cs, npc, 4, {'layers': []}, afct, cond_in_size=2, verbose=False)
    weights = hnet(cond_id=0)
    assert [list(t.shape) for t in weights] == targets
    if not ignore_bn and not ignore_out:
        assert net.forward(torch.randn(2, *IN), weights=weights).shape == (2, 5)


def test_errors():
    with pytest.raises(TypeError, match='net: expected a mnets.resnet.ResNet for resnet_chunking, got MLP'):
        resnet_chunking(MLP(verbose=False))
    with pytest.raises(TypeError, match='net: expected a mnets.wide_resnet.WRN'):
        wrn_chunking(_resnet())
    with pytest.raises(ValueError, match='use_context_mod=False'):
        resnet_chunking(_resnet(use_context_mod=True))
    with pytest.raises(ValueError, match='use_context_mod=False'):
        wrn_chunking(_wrn(use_context_mod=True))
