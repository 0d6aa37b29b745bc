"""StructuredHMLP: assembled shapes, equality with a per-chunk computation, batched conditions, conditional
chunk embeddings, external weights, gradients and input errors."""
import pytest
import torch

from hnets.structured_mlp_hnet import StructuredHMLP

TARGETS = [[3], [3], [10, 5], [10], [20, 5], [20]]
CHUNKS = [[[3]], [[10, 5], [10]]]
NUM_PER_CHUNK = [2, 3]
TOL = dict(rtol=1e-5, atol=1e-6)  # float32 gemms of different batch sizes round differently


def _assemble(chunks):
    """Chunks 0, 1 are the two [3] vectors, chunk 2 the [10, 5] layer, chunks 3 and 4 are the two halves
    (rows) of the [20, 5] layer."""
    (a,), (b,), (w1, b1), (w2a, b2a), (w2b, b2b) = chunks
    return [a, b, w1, b1, torch.cat([w2a, w2b]), torch.cat([b2a, b2b])]


def _hnet(**kwargs):
    args = dict(cond_in_size=4, num_cond_embs=3, verbose=False)
    args.update(kwargs)
    return StructuredHMLP(TARGETS, CHUNKS, NUM_PER_CHUNK, 3, {'layers': [6]}, _assemble, **args)


def _per_chunk_reference(hnet, cond_input, chunk_embs, uncond_weights_by_kind):
    """One internal-HMLP pass per chunk, then the assembly: what the batched forward must equal."""
    chunks = []
    for i, inner in enumerate(hnet.internal_hnets):
        for j in range(NUM_PER_CHUNK[i]):
            out = inner(uncond_input=chunk_embs[i][j].unsqueeze(0), cond_input=cond_input.unsqueeze(0),
                        weights={'uncond_weights': uncond_weights_by_kind[i]}, ret_format='sequential')
            chunks.append(out[0])
    return _assemble(chunks)


def _trunks(hnet):
    return [[p for p, m in zip(hnet.unconditional_params, [hnet.param_shapes_meta[r] for r in
                                                              hnet.unconditional_param_shapes_ref])
             if m.get('hnet_ind') == i and m.get('info') != 'chunk embeddings'] for i in range(2)]


def test_bookkeeping_matches_hypnettorch_layout():
    hnet = _hnet()
    # hypnettorch 0.0.4 gives the same param_shapes for this configuration: 3 condition embeddings, the
    # trunk of each internal HMLP (inputs 3 + 4), then one chunk-embedding tensor per kind.
    assert hnet.param_shapes == [[4], [4], [4], [6, 7], [6], [3, 6], [3], [6, 7], [6], [60, 6], [60], [2, 3],
                                 [3, 3]]
    assert hnet.num_chunks == 5 and hnet.chunk_emb_shapes == [[2, 3], [3, 3]]
    assert hnet.num_outputs == 186 and hnet.num_known_conds == 3
    assert len(hnet.conditional_params) == 3 and len(list(hnet.parameters())) == len(hnet.internal_params)
    layers = [m['layer'] for m in hnet.param_shapes_meta if m['name'] == 'weight']
    assert len(set(layers)) == len(layers)  # trunk layer ids are unique across the internal HMLPs
    assert len(hnet.layer_weight_tensors) == 4


def test_forward_equals_per_chunk_computation_and_batched_cond_ids():
    hnet = _hnet()
    out = hnet(cond_id=[2, 0], ret_format='sequential')
    assert [[list(t.shape) for t in ws] for ws in out] == [TARGETS, TARGETS]
    cembs = hnet.get_chunk_embs()
    for k, c in enumerate([2, 0]):
        expected = _per_chunk_reference(hnet, hnet.get_cond_in_emb(c), cembs, _trunks(hnet))
        assert all(torch.allclose(a, b, **TOL) for a, b in zip(out[k], expected))
        single = hnet(cond_id=c)
        assert all(torch.allclose(a, b, **TOL) for a, b in zip(out[k], single))
    flat = hnet(cond_id=[2, 0], ret_format='flattened')
    assert flat.shape == (2, 186)
    assert torch.equal(hnet.convert_out_format(out, 'sequential', 'flattened'), flat)
    stacked = hnet(cond_id=[2, 0], ret_format='stacked')
    assert [list(t.shape) for t in stacked] == [[2, *s] for s in TARGETS]
    # cond_input and cond_id are the same thing
    e = torch.stack([hnet.get_cond_in_emb(2), hnet.get_cond_in_emb(0)])
    assert torch.equal(hnet(cond_input=e, ret_format='flattened'), flat)


def test_conditional_chunk_embeddings_without_inputs():
    hnet = StructuredHMLP(TARGETS, CHUNKS, NUM_PER_CHUNK, [2, 3], {'layers': []}, _assemble, cond_chunk_embs=True,
                          cond_in_size=0, num_cond_embs=2, verbose=False)
    assert hnet.conditional_param_shapes == [[2, 2], [3, 3], [2, 2], [3, 3]]
    out = hnet(cond_id=[1, 0], ret_format='flattened')
    given = [torch.stack([a, b]) for a, b in zip(hnet.get_chunk_embs(cond_id=1), hnet.get_chunk_embs(cond_id=0))]
    assert torch.equal(out, hnet(weights={'chunk_embs': given}, ret_format='flattened'))
    # A linear hypernetwork: chunk j of kind i is W_i c_ij + b_i (soft weight sharing via templates).
    w0, b0 = _trunks(hnet)[0]
    assert torch.allclose(out[0, :3], w0 @ hnet.get_chunk_embs(cond_id=1)[0][0] + b0, **TOL)
    with pytest.raises(ValueError, match="cond_id, weights\\['chunk_embs'\\]"):
        hnet(cond_id=0, weights={'chunk_embs': given})
    with pytest.raises(ValueError, match="chunk_embs'\\]\\[1\\]: expected a tensor \\[K, 3, 3\\]"):
        hnet(weights={'chunk_embs': [given[0], given[1][:, :2]]})
    with pytest.raises(ValueError, match='conditional chunk embeddings need one of them'):
        hnet()


def test_gradients_reach_every_parameter():
    hnet = _hnet()
    hnet(cond_id=[0, 1, 2], ret_format='flattened').pow(2).sum().backward()
    for i, p in enumerate(hnet.internal_params):
        assert p.grad is not None and p.grad.abs().sum() > 0, i
    assert (hnet.get_chunk_embs()[1].grad.abs().sum(1) > 0).all()  # every chunk embedding is used


def test_external_weights_equal_internal_and_vmap():
    ref = _hnet()
    ext = _hnet(no_uncond_weights=True, no_cond_weights=True)
    assert ext.internal_params is None and ext.hyper_shapes_learned == ref.param_shapes
    theta = [p.detach() for p in ref.unconditional_params]
    cond = [p.detach() for p in ref.conditional_params]
    full = [p.detach() for p in ref.internal_params]
    expected = ref(cond_id=[1, 2], ret_format='flattened')
    assert torch.equal(ext(cond_id=[1, 2], weights=full, ret_format='flattened'), expected)
    assert torch.equal(ext(cond_id=[1, 2], weights={'uncond_weights': theta, 'cond_weights': cond},
                           ret_format='flattened'), expected)
    with pytest.raises(ValueError, match='no_uncond_weights=True'):
        ext(cond_input=torch.randn(2, 4))
    e = torch.randn(2, 4)
    stack = [torch.stack([t, 2 * t]) for t in theta]
    batched = torch.func.vmap(lambda ws: ext(cond_input=e, weights={'uncond_weights': ws},
                                             ret_format='flattened'))(stack)
    assert torch.allclose(batched[1], ext(cond_input=e, weights={'uncond_weights': [2 * t for t in theta]},
                                          ret_format='flattened'), **TOL)


def test_uncond_input_and_batch_norm_options():
    hnet = StructuredHMLP(TARGETS, CHUNKS, NUM_PER_CHUNK, 3, {'layers': [6], 'use_batch_norm': True}, _assemble,
                          uncond_in_size=2, cond_in_size=0, verbose=False)
    assert hnet.num_known_conds == 0 and len(hnet.batchnorm_layers) == 2  # one hidden layer per kind
    z = torch.randn(4, 2)
    out = hnet(uncond_input=z, ret_format='flattened')
    assert out.shape == (4, 186)
    hnet.eval()
    out_eval = hnet(uncond_input=z, ret_format='flattened')
    assert torch.allclose(out_eval[1:2], hnet(uncond_input=z[1:2], ret_format='flattened'), **TOL)
    assert all(not h.training for h in hnet.internal_hnets)  # train/eval reaches the internal HMLPs


def test_assembly_mismatches_are_reported_at_construction():
    with pytest.raises(ValueError, match='assembly_fct: expected tensors of target_shapes'):
        StructuredHMLP(TARGETS, CHUNKS, NUM_PER_CHUNK, 3, {}, lambda c: _assemble(c)[:-1], verbose=False)
    # chunk shapes that do not fit the assembly: the [20, 5] layer cannot be joined from [10, 4] halves
    with pytest.raises(ValueError, match='assembly_fct: expected tensors of target_shapes'):
        StructuredHMLP(TARGETS, [[[3]], [[10, 4], [10]]], NUM_PER_CHUNK, 3, {}, _assemble, verbose=False)
    with pytest.raises(ValueError, match='assembly_fct: failed on 4 chunks'):
        StructuredHMLP(TARGETS, CHUNKS, [2, 2], 3, {}, _assemble, verbose=False)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_per_chunk=[2, 0]), 'num_per_chunk: expected a list of 2 positive ints'),
    (dict(num_per_chunk=[2]), 'num_per_chunk: expected a list of 2 positive ints'),
    (dict(chunk_emb_sizes=[0, 3]), 'chunk_emb_sizes\\[0\\]: expected > 0 since num_per_chunk\\[0\\] = 2'),
    (dict(chunk_emb_sizes=[3, -1]), 'chunk_emb_sizes: expected an int >= 0'),
    (dict(hmlp_kwargs={'cond_in_size': 3}), "hmlp_kwargs\\[0\\]: expected none of .* got \\['cond_in_size'\\]"),
    (dict(hmlp_kwargs=[{}]), 'hmlp_kwargs: expected a dict or a list of 2 dicts'),
    (dict(assembly_fct=None), 'assembly_fct: expected a callable'),
    (dict(chunk_shapes=[[[3]], []]), 'target_shapes: expected a non-empty list'),
    (dict(cond_in_size=0), 'uncond_in_size, cond_in_size: expected a positive total input size'),
    (dict(cond_in_size=0, cond_chunk_embs=True, chunk_emb_sizes=[3, 0], num_per_chunk=[2, 1],
          chunk_shapes=[[[3]], [[10, 5], [10]]]), 'chunk_emb_sizes: expected no 0'),
])
def test_bad_constructor_arguments(kwargs, match):
    args = dict(target_shapes=TARGETS, chunk_shapes=CHUNKS, num_per_chunk=NUM_PER_CHUNK, chunk_emb_sizes=3,
                hmlp_kwargs={}, assembly_fct=_assemble, verbose=False)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        StructuredHMLP(**args)


def test_bad_forward_arguments():
    hnet = _hnet()
    with pytest.raises(ValueError, match='cond_id: expected values in \\[0, 3\\), got 3'):
        hnet(cond_id=3)
    with pytest.raises(ValueError, match='cond_input: expected a tensor of shape \\[K, 4\\], got \\[2, 5\\]'):
        hnet(cond_input=torch.randn(2, 5))
    with pytest.raises(ValueError, match="weights\\['chunk_embs'\\]: only allowed with cond_chunk_embs=True"):
        hnet(cond_id=0, weights={'chunk_embs': []})
    with pytest.raises(ValueError, match='distilled_params'):
        hnet(cond_id=0, distilled_params=[torch.zeros(1)])
    with pytest.raises(ValueError, match='cond_id: expected None'):
        hnet.get_chunk_embs(cond_id=0)
