"""hnetkit against hypnettorch 0.0.4 on the same workloads: ``python -m benchmarks`` (or ``benchmarks/run.py``).

Every measurement is a fresh process (``benchmarks/workloads.py``) so that neither implementation inherits the
other's allocator or thread-pool state. Rounds alternate the implementations (A B A B ...) after a warm-up
round, so slow drifts of a shared machine hit both alike; the table reports medians over the rounds, the
min-max spread, and the ratio hypnettorch / hnetkit (above 1: hnetkit is faster).

The reference runs in a virtual environment created once under ``benchmarks/.venv`` (ignored by git). It sees
this environment's packages (``--system-site-packages``), so both sides use the very same torch build, and adds
``hypnettorch==0.0.4`` on top without dependencies.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV = os.path.join(HERE, '.venv')
WORKLOADS_SCRIPT = os.path.join(HERE, 'workloads.py')
DEFAULT_REFEREE = os.path.join(os.path.dirname(REPO), 'shared', 'bench', 'peer_bench.py')
DEFAULT_WORKLOADS = ['W1', 'W2', 'W3', 'W4', 'W5', 'W6', 'W7']
# The scaling sweeps: workload -> sizes (samples, previous tasks, chains).
SWEEPS = {'W3': [100, 1000, 10000], 'W4': [1, 9, 49], 'W5': [1, 4, 16, 64]}


def venv_python():
    return os.path.join(VENV, 'bin', 'python')


def ensure_reference_env():
    """Create the hypnettorch venv on first use and return its interpreter."""
    python = venv_python()
    probe = [python, '-c', 'import hypnettorch.mnets.mlp']
    if os.path.exists(python) and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f'creating the reference environment in {VENV} (once) ...', flush=True)
    subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages', VENV], check=True)
    subprocess.run([python, '-m', 'pip', 'install', '-q', '--no-deps', 'hypnettorch==0.0.4'], check=True)
    # hypnettorch's own imports beyond torch/numpy; already present in most project environments.
    subprocess.run([python, '-m', 'pip', 'install', '-q', 'tensorboardX', 'matplotlib', 'scipy'], check=True)
    subprocess.run(probe, check=True)
    return python


def measure(impl, workload, size, device, reps, count=False, timeout=900):
    """One fresh-process measurement; returns the workload's JSON result or an ``error`` entry."""
    python = venv_python() if impl == 'hypnettorch' else sys.executable
    cmd = [python, WORKLOADS_SCRIPT, '--impl', impl, '--workload', workload, '--device', device,
           '--reps', str(reps)]
    if size is not None:
        cmd += ['--size', str(size)]
    if count:
        cmd.append('--count')
    env = dict(os.environ, PYTHONPATH=REPO)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {'impl': impl, 'workload': workload, 'size': size, 'error': f'timed out after {timeout} s'}
    if proc.returncode != 0:
        return {'impl': impl, 'workload': workload, 'size': size,
                'error': proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'failed'}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(workload, size, impls, rounds, device, reps):
    """Alternating rounds of every implementation; returns per-implementation sample lists and errors."""
    samples = {impl: [] for impl in impls}
    errors = {}
    extra = {}
    for r in range(rounds):
        order = impls if r % 2 == 0 else impls[::-1]
        for impl in order:
            if impl in errors:
                continue
            res = measure(impl, workload, size, device, reps, count=(r == 0 and impl == 'project'))
            if 'error' in res:
                errors[impl] = res['error']
                continue
            samples[impl].append(res['seconds_per_unit'])
            for key in ('flops_per_unit', 'bytes_per_unit', 'unit', 'size'):
                if key in res:
                    extra[key] = res[key]
            if 'accuracy' in res:
                extra[f'accuracy_{impl}'] = res['accuracy']
    return samples, errors, extra


def summarize(workload, samples, errors, extra, ceilings):
    from benchmarks.roofline import roofline_point

    row = {'workload': workload, 'size': extra.get('size'), 'unit': extra.get('unit'), 'errors': errors}
    for impl, values in samples.items():
        if values:
            row[impl] = {'median': statistics.median(values), 'min': min(values), 'max': max(values),
                         'samples': values}
    if 'project' in row and 'hypnettorch' in row:
        row['ratio'] = row['hypnettorch']['median'] / row['project']['median']
    if 'project' in row and 'flops_per_unit' in extra and ceilings:
        row['roofline'] = roofline_point(extra['flops_per_unit'], extra['bytes_per_unit'],
                                         row['project']['median'], ceilings)
    row.update({k: v for k, v in extra.items() if k.startswith('accuracy_')})
    return row


def _fmt_time(stats):
    if not stats:
        return '-'
    return f"{stats['median'] * 1e3:9.2f} ms [{stats['min'] * 1e3:.2f}-{stats['max'] * 1e3:.2f}]"


def print_table(rows, ceilings):
    if ceilings:
        print(f"\nceilings: matmul {ceilings['peak_gflops']:.1f} GFLOP/s, copy {ceilings['bandwidth_gbs']:.1f} GB/s")
    header = (f"{'workload':<10}{'size':>7}  {'hnetkit median [min-max]':<30}{'hypnettorch median [min-max]':<32}"
              f"{'ratio':>7}  {'GFLOP/s':>8}{'GB/s':>7}{'of bound':>9}")
    print(header)
    print('-' * len(header))
    for row in rows:
        roof = row.get('roofline')
        ratio = f"{row['ratio']:6.2f}x" if 'ratio' in row else '      -'
        roof_cols = (f"{roof['gflops']:8.2f}{roof['gbs']:7.2f}{roof['fraction_of_bound'] * 100:8.1f}%" if roof
                     else f"{'-':>8}{'-':>7}{'-':>9}")
        print(f"{row['workload']:<10}{str(row['size']):>7}  {_fmt_time(row.get('project')):<30}"
              f"{_fmt_time(row.get('hypnettorch')):<32}{ratio}  {roof_cols}")
        for impl, err in row['errors'].items():
            print(f'    {impl} failed: {err}')
        accs = {k[len('accuracy_'):]: v for k, v in row.items() if k.startswith('accuracy_')}
        if accs:
            print('    final accuracy: ' + ', '.join(f'{impl} {acc * 100:.2f} %' for impl, acc in accs.items()))
    print('times are per unit: W1/W2 per train step, W3 per 1000 samples, W4 per call, '
          'W5 per 100 states, W6 per 20 states, W7 per run')


def plot_sweeps(rows, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = sorted({row['workload'] for row in rows if row.get('sweep')})
    if not names:
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    labels = {'W3': 'samples', 'W4': 'previous tasks', 'W5': 'chains'}
    for ax, name in zip(axes[0], names):
        pts = sorted((r for r in rows if r.get('sweep') and r['workload'] == name), key=lambda r: r['size'])
        for impl, style in (('project', 'o-'), ('hypnettorch', 's--')):
            xs = [r['size'] for r in pts if impl in r]
            # Total cost of the workload at that size (unit time x units).
            ys = [r[impl]['median'] * _units(name, r['size']) for r in pts if impl in r]
            if xs:
                ax.loglog(xs, ys, style, label='hnetkit' if impl == 'project' else 'hypnettorch 0.0.4')
        ax.set_xlabel(labels.get(name, 'size'))
        ax.set_ylabel('seconds')
        ax.set_title(name)
        ax.grid(True, which='both', alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _units(name, size):
    return {'W3': size / 1000, 'W4': 1, 'W5': size * 25 / 100}.get(name, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description='hnetkit vs hypnettorch 0.0.4, same workloads, alternating.')
    parser.add_argument('--only', default='', help='comma-separated workloads, e.g. W1,W3 (default: all)')
    parser.add_argument('--rounds', type=int, default=3, help='alternating rounds after the warm-up')
    parser.add_argument('--reps', type=int, default=2, help='timed repetitions inside each process')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--no-sweep', action='store_true', help='skip the scaling sweeps')
    parser.add_argument('--project-only', action='store_true', help='measure hnetkit alone (no venv)')
    parser.add_argument('--out', default=os.path.join(HERE, 'results'), help='folder for JSON and PNG')
    parser.add_argument('--referee', nargs='?', const=DEFAULT_REFEREE, default=None, metavar='PEER_BENCH',
                        help='also run the neutral referee shared/bench/peer_bench.py (or the given path) for '
                             'both implementations, alternating, and print its medians beside ours')
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f'--rounds: expected a positive integer, got {args.rounds}')
    selected = [w.strip() for w in args.only.split(',') if w.strip()] or DEFAULT_WORKLOADS
    unknown = sorted(set(selected) - set(DEFAULT_WORKLOADS))
    if unknown:
        parser.error(f'--only: unknown workloads {unknown}; expected some of {DEFAULT_WORKLOADS}')
    if args.referee is not None and not os.path.isfile(args.referee):
        parser.error(f'--referee: expected the path of peer_bench.py, got {args.referee!r} (no such file)')
    if args.referee is not None and args.project_only:
        parser.error('--referee: compares both implementations; it cannot be combined with --project-only')

    impls = ['project'] if args.project_only else ['project', 'hypnettorch']
    if not args.project_only:
        ensure_reference_env()
    sys.path.insert(0, REPO)
    from benchmarks.referee import print_referee, referee_rows
    from benchmarks.roofline import measure_ceilings

    ceilings = measure_ceilings(args.device)
    started = time.time()
    rows = []
    os.makedirs(args.out, exist_ok=True)
    stamp = time.strftime('%Y%m%d-%H%M%S')
    json_path = os.path.join(args.out, f'bench-{stamp}.json')

    def save():
        """Write what is measured so far (atomically), so an interrupted run keeps its finished rows."""
        with open(json_path + '.tmp', 'w') as f:
            json.dump({'ceilings': ceilings, 'device': args.device, 'rounds': args.rounds, 'rows': rows,
                       'seconds': time.time() - started}, f, indent=1)
        os.replace(json_path + '.tmp', json_path)

    for name in selected:
        samples, errors, extra = compare(name, None, impls, args.rounds, args.device, args.reps)
        rows.append(summarize(name, samples, errors, extra, ceilings))
        save()
        print(f'{name} done ({time.time() - started:.0f} s)', flush=True)
    if not args.no_sweep:
        for name, sizes in SWEEPS.items():
            if name not in selected:
                continue
            for size in sizes:
                samples, errors, extra = compare(name, size, impls, 1, args.device, 1)
                row = summarize(name, samples, errors, extra, ceilings)
                row['sweep'] = True
                rows.append(row)
                save()
            print(f'{name} sweep done ({time.time() - started:.0f} s)', flush=True)

    referee = None
    if args.referee is not None:
        referee = referee_rows(args.referee, {'project': sys.executable, 'hypnettorch': venv_python()},
                               selected, args.rounds)
        for row in rows:
            if not row.get('sweep') and row['workload'] in referee:
                row['referee'] = referee[row['workload']]
        print(f'referee done ({time.time() - started:.0f} s)', flush=True)

    print_table([r for r in rows if not r.get('sweep')], ceilings)
    sweep_rows = [r for r in rows if r.get('sweep')]
    if sweep_rows:
        print('\nscaling sweeps (one round each):')
        print_table(sweep_rows, None)
    if referee:
        print_referee(referee, rows)
    save()
    png = plot_sweeps(rows, os.path.join(args.out, f'sweeps-{stamp}.png'))
    print(f'\nresults: {json_path}' + (f'\nsweep plot: {png}' if png else ''))
    print(f'total {time.time() - started:.0f} s')
    return rows


if __name__ == '__main__':
    main()
