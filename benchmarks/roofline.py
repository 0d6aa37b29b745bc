"""Roofline bookkeeping: the machine's ceilings and a workload's FLOPs and memory traffic.

A workload's position on the roofline needs two counts and two ceilings:

* FLOPs, counted by :class:`torch.utils.flop_counter.FlopCounterMode` (matmuls, convolutions and their
  backward passes; element-wise ops count as zero FLOPs there, which is why the byte count matters);
* bytes moved, counted by :class:`ByteCounterMode`: for every dispatched ATen op, the sizes of its tensor
  inputs plus its tensor outputs. That is the traffic an implementation with no cache reuse *between* ops
  would need, an upper-bound model that is still exact about how many ops and temporaries a path creates;
* the matmul ceiling (GFLOP/s of a large square ``torch.mm``) and the memory-bandwidth ceiling (GB/s of a
  large tensor copy), measured here by :func:`measure_ceilings`.

The attainable rate at arithmetic intensity ``I = flops / bytes`` is ``min(peak_flops, I * bandwidth)``;
the table reports how far a workload's achieved rate is from that bound.
"""
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode


class ByteCounterMode(TorchDispatchMode):
    """Counts the bytes every ATen op reads (tensor inputs) and writes (tensor outputs)."""

    def __init__(self):
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        flat_in, _ = tree_flatten((args, kwargs or {}))
        flat_out, _ = tree_flatten(out)
        for t in flat_in + flat_out:
            if isinstance(t, torch.Tensor):
                self.bytes += t.numel() * t.element_size()
        return out


def count_flops_and_bytes(fn):
    """Run ``fn()`` once and return ``(flops, bytes)`` it dispatched."""
    with FlopCounterMode(display=False) as flop_mode:
        with ByteCounterMode() as byte_mode:
            fn()
    return flop_mode.get_total_flops(), byte_mode.bytes


def _best_time(fn, reps):
    fn()
    best = float('inf')
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure_ceilings(device='cpu', matmul_size=2048, copy_mb=256, reps=5):
    """Measured peak matmul rate (GFLOP/s) and copy bandwidth (GB/s) of ``device``.

    The bandwidth is that of ``dst.copy_(src)``, which reads and writes ``copy_mb`` MiB each.
    """
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    a = torch.randn(matmul_size, matmul_size, device=device)
    b = torch.randn(matmul_size, matmul_size, device=device)

    def mm():
        torch.mm(a, b)
        sync()

    mm_time = _best_time(mm, reps)
    n = copy_mb * 2 ** 20 // 4
    src = torch.randn(n, device=device)
    dst = torch.empty_like(src)

    def copy():
        dst.copy_(src)
        sync()

    copy_time = _best_time(copy, reps)
    return {
        'peak_gflops': 2 * matmul_size ** 3 / mm_time / 1e9,
        'bandwidth_gbs': 2 * n * 4 / copy_time / 1e9,
    }


def roofline_point(flops, nbytes, seconds, ceilings):
    """Achieved rates of one workload and the fraction of its roofline bound it reaches."""
    gflops = flops / seconds / 1e9
    gbs = nbytes / seconds / 1e9
    intensity = flops / nbytes if nbytes else float('inf')
    bound = min(ceilings['peak_gflops'], intensity * ceilings['bandwidth_gbs'])
    # A workload with no matmul FLOPs is judged by its memory traffic alone.
    frac = gflops / bound if flops else gbs / ceilings['bandwidth_gbs']
    return {'gflops': gflops, 'gbs': gbs, 'intensity': intensity, 'bound_gflops': bound,
            'fraction_of_bound': frac}
