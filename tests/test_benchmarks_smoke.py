"""The one test that touches benchmarks/: a single workload, one round, hnetkit alone.

It keeps the benchmark harness from rotting without timing anything (speed is measured by
``python -m benchmarks``, never asserted in the test suite).
"""
import json
import os
import subprocess
import sys

from benchmarks.roofline import count_flops_and_bytes, roofline_point
from benchmarks.run import summarize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_one_workload_one_round_project_only():
    out = subprocess.run([sys.executable, 'benchmarks/workloads.py', '--impl', 'project', '--workload', 'W1',
                          '--size', '2', '--reps', '1', '--count'],
                         cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res['impl'] == 'project' and res['workload'] == 'W1'
    assert res['seconds_per_unit'] > 0
    # HMLP 32-100-100-89610 and MLP 784-100-100-10 on 128 samples: fwd + bwd (weight gradients alone) is at
    # least twice the forward FLOPs.
    fwd = 2 * (32 * 100 + 100 * 100 + 100 * 89610) + 2 * 128 * (784 * 100 + 100 * 100 + 100 * 10)
    assert res['flops_per_unit'] >= 2 * fwd
    row = summarize('W1', {'project': [res['seconds_per_unit']]}, {}, res,
                    {'peak_gflops': 100.0, 'bandwidth_gbs': 10.0})
    assert 0 < row['roofline']['fraction_of_bound']


def test_counters_on_a_known_matmul():
    import torch
    a, b = torch.randn(64, 32), torch.randn(32, 16)
    flops, nbytes = count_flops_and_bytes(lambda: a @ b)
    assert flops == 2 * 64 * 32 * 16
    assert nbytes == 4 * (64 * 32 + 32 * 16 + 64 * 16)
    point = roofline_point(flops, nbytes, 1e-3, {'peak_gflops': 1.0, 'bandwidth_gbs': 1.0})
    assert abs(point['gflops'] - flops / 1e-3 / 1e9) < 1e-9
