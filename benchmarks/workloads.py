"""The benchmark workloads, written once against the public API that hnetkit and hypnettorch share.

Run one workload in this process and print one JSON line::

    python benchmarks/workloads.py --impl project --workload W1
    benchmarks/.venv/bin/python benchmarks/workloads.py --impl hypnettorch --workload W3 --size 10000

``--impl project`` imports ``mnets``, ``hnets``, ``utils`` from this checkout; ``--impl hypnettorch`` imports the
same names with the ``hypnettorch.`` prefix. Workloads W1-W6 are those of the neutral referee
``shared/bench/peer_bench.py`` (same shapes, seeds and call sequences); W7 trains split MNIST end to end: hnetkit's
experiment script against a hypercl-style loop on hypnettorch (same networks, batch size and iterations).
``--size`` scales one dimension for the sweeps: samples (W3), previous tasks (W4), chains (W5),
iterations per task (W7).
"""
import argparse
import gzip
import importlib
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from benchmarks.roofline import count_flops_and_bytes  # noqa: E402

# Each workload: (default size, description, builder). A builder gets (impl module loader, size, device) and
# returns (step, units): ``step()`` does the timed work, ``units`` how many reported units one step covers.
WORKLOADS = {}


def workload(name, default_size, unit, description, end_to_end=False):
    """Register a workload. An ``end_to_end`` one (a whole training run) is timed once, cold, imports and
    data loading included, and its FLOPs are not counted (a dispatch-mode count of a whole run costs more
    than the run and says little about a path)."""
    def register(builder):
        WORKLOADS[name] = {'size': default_size, 'unit': unit, 'description': description,
                           'build': builder, 'end_to_end': end_to_end}
        return builder
    return register


def _batch(device):
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(128, 784, generator=gen).to(device),
            torch.randint(0, 10, (128,), generator=gen).to(device))


@workload('W1', 20, 'step', 'HMLP train step, target MLP 784-100-100-10, batch 128')
def build_w1(imp, size, device):
    MLP, HMLP = imp('mnets.mlp').MLP, imp('hnets.mlp_hnet').HMLP
    x, y = _batch(device)
    mnet = MLP(n_in=784, n_out=10, hidden_layers=[100, 100], no_weights=True, verbose=False).to(device)
    hnet = HMLP(mnet.param_shapes, uncond_in_size=0, cond_in_size=32, layers=[100, 100], num_cond_embs=5,
                verbose=False).to(device)
    opt = torch.optim.Adam(hnet.parameters(), lr=1e-3)

    def step():
        for _ in range(size):
            opt.zero_grad()
            weights = hnet.forward(cond_id=2)
            F.cross_entropy(mnet.forward(x, weights=weights), y).backward()
            opt.step()
    return step, size


@workload('W2', 10, 'step', 'ChunkedHMLP train step, target MLP 784-400-400-10, chunks of 4000')
def build_w2(imp, size, device):
    MLP, ChunkedHMLP = imp('mnets.mlp').MLP, imp('hnets.chunked_mlp_hnet').ChunkedHMLP
    x, y = _batch(device)
    mnet = MLP(n_in=784, n_out=10, hidden_layers=[400, 400], no_weights=True, verbose=False).to(device)
    hnet = ChunkedHMLP(mnet.param_shapes, chunk_size=4000, chunk_emb_size=32, cond_in_size=32, uncond_in_size=0,
                       layers=[100, 100], num_cond_embs=5, verbose=False).to(device)
    opt = torch.optim.Adam(hnet.parameters(), lr=1e-3)

    def step():
        for _ in range(size):
            opt.zero_grad()
            weights = hnet.forward(cond_id=2)
            F.cross_entropy(mnet.forward(x, weights=weights), y).backward()
            opt.step()
    return step, size


class MiniData:
    """The slice of the Dataset interface that ``compute_fisher`` reads (identical for both implementations)."""

    def __init__(self, n):
        gen = torch.Generator().manual_seed(3)
        self.x = torch.rand(n, 784, generator=gen)
        self.y = torch.randint(0, 2, (n,), generator=gen)
        self.num_train_samples = n
        self.classification = True
        self.out_shape = [2]
        self.num_classes = 2
        self.is_one_hot = False
        self._pos = 0

    def reset_batch_generator(self, train=True, test=False, val=False):
        self._pos = 0

    def next_train_batch(self, batch_size, return_ids=False):
        i = self._pos
        self._pos = (i + batch_size) % self.num_train_samples
        batch = (self.x[i:i + batch_size].numpy(), self.y[i:i + batch_size].numpy())
        return batch + (list(range(i, i + batch_size)),) if return_ids else batch

    def input_to_torch_tensor(self, x, device, mode='inference', **kwargs):
        return torch.as_tensor(x, device=device)

    def output_to_torch_tensor(self, y, device, mode='inference', **kwargs):
        return torch.as_tensor(y, device=device)


@workload('W3', 1000, '1000 samples', 'empirical diagonal Fisher of MLP 784-100-100-2 (size: samples)')
def build_w3(imp, size, device):
    ewc, MLP = imp('utils.ewc_regularizer'), imp('mnets.mlp').MLP
    mnet = MLP(n_in=784, n_out=2, hidden_layers=[100, 100], verbose=False).to(device)
    params = list(mnet.parameters())
    data = MiniData(size)

    def step():
        ewc.compute_fisher(0, data, params, torch.device(device), mnet, empirical_fisher=True, n_max=size)
    return step, size / 1000


@workload('W4', 9, 'call', 'hypernetwork output regularizer, fwd+bwd (size: previous tasks)')
def build_w4(imp, size, device):
    hreg, MLP, HMLP = imp('utils.hnet_regularizer'), imp('mnets.mlp').MLP, imp('hnets.mlp_hnet').HMLP
    mnet = MLP(n_in=784, n_out=10, hidden_layers=[100, 100], no_weights=True, verbose=False)
    hnet = HMLP(mnet.param_shapes, uncond_in_size=0, cond_in_size=32, layers=[100, 100],
                num_cond_embs=size + 1, verbose=False).to(device)
    targets = hreg.get_current_targets(size, hnet)

    def step():
        for _ in range(5):
            hnet.zero_grad()
            hreg.calc_fix_target_reg(hnet, size, targets=targets).backward()
    return step, 5


def _bnn(imp, device):
    hmc, MLP = imp('utils.hmc'), imp('mnets.mlp').MLP
    torch.manual_seed(1)
    xs = torch.linspace(-4, 4, 50).view(-1, 1)
    ys = torch.sin(xs) + 0.1 * torch.randn_like(xs)
    net = MLP(n_in=1, n_out=1, hidden_layers=[10, 10], no_weights=True, verbose=False).to(device)
    pot_energy = hmc.nn_pot_energy(net, xs.to(device), ys.to(device), hmc.log_prob_standard_normal_prior,
                                   tau_pred=100.)
    return hmc, net, pot_energy


@workload('W5', 4, '100 states', 'multi-chain HMC, 20 leapfrog steps, 25 states per chain (size: chains)')
def build_w5(imp, size, device):
    hmc, net, pot_energy = _bnn(imp, device)
    gen = torch.Generator().manual_seed(2)
    init = [(torch.randn(net.num_params, generator=gen) * 0.1).to(device) for _ in range(size)]

    def step():
        chains = hmc.MultiChainHMC([p.clone() for p in init], pot_energy, chain_type='hmc', stepsize=1e-3,
                                   num_steps=20)
        chains.simulate_chains(25)
    return step, size * 25 / 100


@workload('W6', 20, '20 states', 'NUTS, one chain, BNN posterior (size: states)')
def build_w6(imp, size, device):
    hmc, net, pot_energy = _bnn(imp, device)
    init = (torch.randn(net.num_params, generator=torch.Generator().manual_seed(2)) * 0.1).to(device)

    def step():
        chain = hmc.NUTS(init.clone(), pot_energy, stepsize=1e-2)
        chain.simulate_chain(size)
    return step, size / 20


def _read_idx(path):
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    ndim = raw[3]
    shape = np.frombuffer(raw, dtype='>u4', count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _split_mnist(device, num_train):
    folder = os.path.join(REPO, 'data', 'mnist')
    x_tr = _read_idx(os.path.join(folder, 'train-images-idx3-ubyte.gz'))[:num_train]
    y_tr = _read_idx(os.path.join(folder, 'train-labels-idx1-ubyte.gz'))[:num_train]
    x_te = _read_idx(os.path.join(folder, 't10k-images-idx3-ubyte.gz'))
    y_te = _read_idx(os.path.join(folder, 't10k-labels-idx1-ubyte.gz'))
    to_x = lambda a: torch.from_numpy(a.reshape(len(a), -1).astype(np.float32) / 255.).to(device)  # noqa: E731
    tasks = []
    for t in range(5):
        tr = (y_tr == 2 * t) | (y_tr == 2 * t + 1)
        te = (y_te == 2 * t) | (y_te == 2 * t + 1)
        tasks.append((to_x(x_tr[tr]), torch.from_numpy(y_tr[tr] % 2).long().to(device),
                      to_x(x_te[te]), torch.from_numpy(y_te[te] % 2).long().to(device)))
    return tasks


# Settings of the split MNIST experiment's defaults (sims/split_mnist): MLP 100-100 from a ChunkedHMLP
# (chunks of 4000, trunk 100-100, task and chunk embeddings of 32), Adam lr 1e-3, batch 128, beta 0.01.
W7_SETTINGS = dict(batch_size=128, lr=1e-3, beta=0.01, chunk_size=4000, emb_size=32)


def _w7_hypnettorch(imp, size, device):
    """hypercl-style training loop on hypnettorch's public API: per task, Adam on the hypernetwork with the
    output regularizer towards the targets of all previous tasks; after each task, test accuracy on all tasks
    seen so far (one hypernetwork forward per task, as hypercl does)."""
    MLP, ChunkedHMLP = imp('mnets.mlp').MLP, imp('hnets.chunked_mlp_hnet').ChunkedHMLP
    hreg = imp('utils.hnet_regularizer')
    cfg = W7_SETTINGS

    def step():
        torch.manual_seed(0)
        tasks = _split_mnist(device, 60000)
        mnet = MLP(n_in=784, n_out=2, hidden_layers=[100, 100], no_weights=True, verbose=False).to(device)
        hnet = ChunkedHMLP(mnet.param_shapes, chunk_size=cfg['chunk_size'], chunk_emb_size=cfg['emb_size'],
                           cond_in_size=cfg['emb_size'], layers=[100, 100], num_cond_embs=len(tasks),
                           verbose=False).to(device)
        gen = torch.Generator(device=device).manual_seed(0)
        for t, (x, y, _, _) in enumerate(tasks):
            targets = hreg.get_current_targets(t, hnet) if t > 0 else None
            opt = torch.optim.Adam(hnet.parameters(), lr=cfg['lr'])
            for _ in range(size):
                idx = torch.randint(0, len(x), (cfg['batch_size'],), generator=gen, device=device)
                opt.zero_grad()
                loss = F.cross_entropy(mnet.forward(x[idx], weights=hnet.forward(cond_id=t)), y[idx])
                if t > 0:
                    loss = loss + cfg['beta'] * hreg.calc_fix_target_reg(hnet, t, targets=targets)
                loss.backward()
                opt.step()
            with torch.no_grad():
                accs = [(mnet.forward(xt, weights=hnet.forward(cond_id=j)).argmax(1) == yt).float().mean()
                        for j, (_, _, xt, yt) in enumerate(tasks[:t + 1])]
        step.accuracy = float(torch.stack(accs).mean())
    return step


def _w7_project(size, device):
    """The split MNIST experiment itself (sims/split_mnist/train.py) with the same settings: it also writes
    its logs, figure, results and checkpoints, and evaluates CL3 as well, so it does strictly more work."""
    import tempfile

    from sims.split_mnist.train import main as split_mnist_main
    cfg = W7_SETTINGS

    def step():
        with tempfile.TemporaryDirectory() as out_dir:
            results = split_mnist_main([
                '--n_iter', str(size), '--batch_size', str(cfg['batch_size']), '--lr', str(cfg['lr']),
                '--beta', str(cfg['beta']), '--chmlp_chunk_size', str(cfg['chunk_size']),
                '--chunk_emb_size', str(cfg['emb_size']), '--cond_emb_size', str(cfg['emb_size']),
                '--mlp_arch', '100,100', '--hmlp_arch', '100,100', '--out_dir', out_dir, '--overwrite'] +
                (['--use_cuda'] if device.startswith('cuda') else []))
        step.accuracy = float(results['final_mean_acc']) / 100  # the sim reports percent
    return step


@workload('W7', 500, 'run', 'split MNIST end to end, 5 tasks: hnetkit\'s sim vs a hypercl-style loop on '
                             'hypnettorch, same networks/batch/iterations (size: iterations per task)',
          end_to_end=True)
def build_w7(imp, size, device):
    if imp('mnets.mlp').__name__.startswith('hypnettorch.'):
        return _w7_hypnettorch(imp, size, device), 1
    return _w7_project(size, device), 1


def run(impl, name, size=None, device='cpu', reps=3, count=False):
    """Build and time one workload; return its result dict (best of ``reps`` after a warm-up)."""
    prefix = 'hypnettorch.' if impl == 'hypnettorch' else ''
    imp = lambda module: importlib.import_module(prefix + module)  # noqa: E731
    spec = WORKLOADS[name]
    size = spec['size'] if size is None else size
    torch.manual_seed(0)
    step, units = spec['build'](imp, size, device)
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    if spec['end_to_end']:
        reps, count = 1, False
    else:
        step()  # warm-up
        sync()
    best = float('inf')
    for _ in range(reps):
        start = time.perf_counter()
        step()
        sync()
        best = min(best, time.perf_counter() - start)
    result = {'impl': impl, 'workload': name, 'size': size, 'seconds_per_unit': best / units,
              'unit': spec['unit']}
    if hasattr(step, 'accuracy'):
        result['accuracy'] = step.accuracy
    if count:
        flops, nbytes = count_flops_and_bytes(step)
        result['flops_per_unit'] = flops / units
        result['bytes_per_unit'] = nbytes / units
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--impl', choices=['project', 'hypnettorch'], required=True)
    parser.add_argument('--workload', choices=sorted(WORKLOADS), required=True)
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--count', action='store_true', help='also count FLOPs and bytes (one extra run)')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(json.dumps(run(args.impl, args.workload, args.size, args.device, args.reps, args.count)),
          flush=True)


if __name__ == '__main__':
    main()
