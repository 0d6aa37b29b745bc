"""Cross-check against the neutral referee ``shared/bench/peer_bench.py`` (``python -m benchmarks --referee``).

The referee runs W1-W6 through either implementation's public API in one process per run and prints one JSON
line per workload, in the same units as :mod:`benchmarks.workloads` (per step, per 1000 samples, per call, per
100 states, per 20 states). Here it runs ``rounds`` times for each implementation, alternating, and its medians
and ratio go beside ours, so anyone can see that this harness measures what the referee measures.
"""
import json
import os
import statistics
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# The referee's workload names, by the prefix this harness uses.
REFEREE_WORKLOADS = ('W1', 'W2', 'W3', 'W4', 'W5', 'W6')


def run_referee_once(script, impl, python, workloads, timeout=1800):
    """One referee process; returns ``{workload: seconds per unit}`` and ``{workload: error}``."""
    cmd = [python, script, '--impl', impl, '--only', ','.join(workloads)]
    env = dict(os.environ, PYTHONPATH=REPO)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {}, {w: f'referee timed out after {timeout} s' for w in workloads}
    times, errors = {}, {}
    for line in proc.stdout.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        name = entry.get('workload', '')[:2]
        if 'error' in entry:
            errors[name] = entry['error']
        elif name in workloads:
            times[name] = entry['seconds']
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ['failed']
        errors.update({w: tail[0] for w in workloads if w not in times})
    return times, errors


def referee_rows(script, pythons, workloads, rounds):
    """Alternating referee rounds for every implementation in ``pythons`` (``{impl: interpreter}``).

    Returns ``{workload: {'project': median, 'hypnettorch': median, 'ratio': ..., 'errors': {...}}}``.
    """
    if not os.path.isfile(script):
        raise FileNotFoundError(f'--referee: no referee script at {script}')
    workloads = [w for w in workloads if w in REFEREE_WORKLOADS]
    impls = list(pythons)
    samples = {w: {impl: [] for impl in impls} for w in workloads}
    errors = {w: {} for w in workloads}
    for r in range(rounds):
        for impl in (impls if r % 2 == 0 else impls[::-1]):
            times, errs = run_referee_once(script, impl, pythons[impl], workloads)
            for w, seconds in times.items():
                samples[w][impl].append(seconds)
            for w, err in errs.items():
                errors[w][impl] = err
    rows = {}
    for w in workloads:
        row = {impl: statistics.median(v) for impl, v in samples[w].items() if v}
        if 'project' in row and 'hypnettorch' in row:
            row['ratio'] = row['hypnettorch'] / row['project']
        row['errors'] = errors[w]
        rows[w] = row
    return rows


def print_referee(rows, own_rows):
    """Our medians and ratio beside the referee's, workload by workload."""
    own = {r['workload']: r for r in own_rows if not r.get('sweep')}
    print('\nreferee (shared/bench/peer_bench.py) beside this harness, medians per unit:')
    header = (f"{'workload':<10}{'hnetkit ours':>14}{'referee':>12}{'hypnettorch ours':>18}{'referee':>12}"
              f"{'ratio ours':>12}{'referee':>10}")
    print(header)
    print('-' * len(header))

    def ms(value):
        return f'{value * 1e3:.2f} ms' if value is not None else '-'

    for name, ref in rows.items():
        mine = own.get(name, {})
        ours_p = mine.get('project', {}).get('median')
        ours_h = mine.get('hypnettorch', {}).get('median')
        ratio = f"{mine['ratio']:.2f}x" if 'ratio' in mine else '-'
        ref_ratio = f"{ref['ratio']:.2f}x" if 'ratio' in ref else '-'
        print(f'{name:<10}{ms(ours_p):>14}{ms(ref.get("project")):>12}{ms(ours_h):>18}'
              f'{ms(ref.get("hypnettorch")):>12}{ratio:>12}{ref_ratio:>10}')
        for impl, err in ref['errors'].items():
            print(f'    referee {impl} failed: {err}')
