"""Checkpoints that survive crashes, with keep-the-best-N rotation.

``save_checkpoint(ckpt, 'ckpts/net', score, train_iter=it)`` writes
``ckpts/net_<it>`` and keeps at most ``max_ckpts_to_keep`` such files, dropping
the lowest scores (the new one is always kept). With ``keep_cktp_every = h``
the best checkpoint of every ``h``-hour window is kept permanently.

Crash safety: every file (checkpoints and the bookkeeping file
``.<name>_meta``) is written to a temporary file in the same folder and moved
into place with ``os.replace``, which is atomic on POSIX and Windows. Old
checkpoints are deleted only *after* the new one is in place, so a run killed
at any moment leaves the previous complete checkpoint (and at worst one extra
file) behind, never a truncated one.

The score, timestamp and permanence of each checkpoint are stored inside it
(key ``_INTERNAL_KEY``) and mirrored in the meta file, so rotation does not
have to load every checkpoint.
"""
import json
import os
import re
import tempfile
import time

import torch

_INTERNAL_KEY = '_ckpt_internal'


def _atomic_write(path, write_fn, binary=True):
    """Write ``path`` through ``write_fn(file)`` via a temp file + ``os.replace``."""
    folder, name = os.path.split(path)
    fd, tmp_path = tempfile.mkstemp(dir=folder or '.', prefix='.tmp_' + name + '.')
    try:
        with os.fdopen(fd, 'wb' if binary else 'w') as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def _split_path(file_path):
    if not isinstance(file_path, (str, os.PathLike)):
        raise TypeError(f'file_path: expected a path, got {type(file_path).__name__}')
    folder, name = os.path.split(os.fspath(file_path))
    if not name:
        raise ValueError(f'file_path: expected a file name prefix, got the folder {file_path!r}')
    return folder or '.', name


def _meta_path(folder, name):
    return os.path.join(folder, ('.' if not name.startswith('.') else '') + name + '_meta')


def _is_ckpt_name(candidate, name):
    """Checkpoint files of ``name`` are ``name`` and ``name_<iteration>``."""
    return candidate == name or re.fullmatch(re.escape(name) + r'_\d+', candidate) is not None


def _load(path, device=None):
    # Checkpoints hold arbitrary picklable content written by save_checkpoint;
    # only load files you wrote yourself.
    return torch.load(path, map_location=device if device is not None else 'cpu', weights_only=False)


def _read_meta(folder, name):
    path = _meta_path(folder, name)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _list_ckpts(folder, name, meta):
    """``{file name: {'score', 'ts', 'permanent'}}`` of the existing
    checkpoints; files unknown to the meta file are inspected directly."""
    known = meta['ckpts'] if meta is not None else {}
    records = {}
    for fn in os.listdir(folder):
        path = os.path.join(folder, fn)
        if not _is_ckpt_name(fn, name) or not os.path.isfile(path):
            continue
        if fn in known:
            records[fn] = known[fn]
            continue
        ckpt = _load(path)
        if isinstance(ckpt, dict) and _INTERNAL_KEY in ckpt:
            records[fn] = dict(ckpt[_INTERNAL_KEY])
    return records


def save_checkpoint(ckpt_dict, file_path, performance_score, train_iter=None, max_ckpts_to_keep=1,
                    keep_cktp_every=None, timestamp=None):
    """Save ``ckpt_dict`` atomically and rotate old checkpoints.

    Args:
        ckpt_dict (dict): Must contain ``'state_dict'``; anything picklable
            besides (iteration, optimizer state, ...). Not modified.
        file_path (str): Path prefix, e.g. ``'ckpts/net'``; keep it fixed
            during a run.
        performance_score (float): Higher is better; decides which
            checkpoints are kept.
        train_iter (int, optional): Appended as ``_<train_iter>`` to the file
            name; without it the file ``file_path`` is overwritten.
        max_ckpts_to_keep (int): Non-permanent checkpoints kept (>= 1), the
            new one included.
        keep_cktp_every (float, optional): Hours; the best checkpoint of every
            such window since the first save is kept permanently.
        timestamp (float, optional): Time of this checkpoint (seconds since
            the epoch), e.g. to synchronise several networks.

    Returns:
        (str): The path written.
    """
    if not isinstance(ckpt_dict, dict) or 'state_dict' not in ckpt_dict:
        raise ValueError("ckpt_dict: expected a dict with key 'state_dict', got "
                         f"{sorted(ckpt_dict) if isinstance(ckpt_dict, dict) else type(ckpt_dict).__name__}")
    if _INTERNAL_KEY in ckpt_dict:
        raise ValueError(f'ckpt_dict: the key {_INTERNAL_KEY!r} is reserved')
    if not isinstance(max_ckpts_to_keep, int) or max_ckpts_to_keep < 1:
        raise ValueError(f'max_ckpts_to_keep: expected an int >= 1, got {max_ckpts_to_keep!r}')
    if keep_cktp_every is not None and not keep_cktp_every > 0:
        raise ValueError(f'keep_cktp_every: expected None or a positive number of hours, '
                         f'got {keep_cktp_every!r}')
    folder, name = _split_path(file_path)
    os.makedirs(folder, exist_ok=True)
    ts = time.time() if timestamp is None else float(timestamp)
    meta = _read_meta(folder, name) or {'init_ts': ts, 'ckpts': {}}
    records = _list_ckpts(folder, name, meta)
    new_fn = name if train_iter is None else f'{name}_{int(train_iter)}'
    records.pop(new_fn, None)
    new_record = {'score': float(performance_score), 'ts': ts, 'permanent': False}

    if keep_cktp_every is not None:
        hours = (ts - meta['init_ts']) / 3600.0
        if hours >= keep_cktp_every:
            window_start = (hours // keep_cktp_every - 1) * keep_cktp_every
            has_perm = any(r['permanent'] and (r['ts'] - meta['init_ts']) / 3600.0 >= window_start
                           for r in records.values())
            if not has_perm:
                window = [(fn, r) for fn, r in records.items() if not r['permanent']
                          and (r['ts'] - meta['init_ts']) / 3600.0 >= window_start]
                best = max(window, key=lambda item: item[1]['score'], default=None)
                if best is not None and best[1]['score'] > new_record['score']:
                    best_path = os.path.join(folder, best[0])
                    old = _load(best_path)
                    old[_INTERNAL_KEY]['permanent'] = True
                    _atomic_write(best_path, lambda f, obj=old: torch.save(obj, f))
                    best[1]['permanent'] = True
                else:
                    new_record['permanent'] = True

    to_save = dict(ckpt_dict)
    to_save[_INTERNAL_KEY] = dict(new_record)
    new_path = os.path.join(folder, new_fn)
    _atomic_write(new_path, lambda f: torch.save(to_save, f))

    rotating = sorted((r['score'], r['ts'], fn) for fn, r in records.items() if not r['permanent'])
    num_delete = max(0, len(rotating) - (max_ckpts_to_keep - 1))
    doomed = [fn for _, _, fn in rotating[:num_delete]]
    records[new_fn] = new_record
    kept = {fn: r for fn, r in records.items() if fn not in doomed}
    meta = {'init_ts': meta['init_ts'], 'ckpts': kept}
    _atomic_write(_meta_path(folder, name), lambda f: json.dump(meta, f), binary=False)
    for fn in doomed:
        os.remove(os.path.join(folder, fn))
    return new_path


def load_checkpoint(ckpt_path, net, device=None, ret_performance_score=False):
    """Load a checkpoint and apply its ``'state_dict'`` to ``net``.

    Args:
        ckpt_path (str): File written by :func:`save_checkpoint`.
        net (torch.nn.Module): Receives ``load_state_dict``.
        device (torch.device, optional): Where tensors are mapped (CPU if
            ``None``).
        ret_performance_score (bool): Also return the saved score.

    Returns:
        The checkpoint dict (bookkeeping removed), and the score if requested.
    """
    if not os.path.isfile(ckpt_path):
        raise OSError(f'ckpt_path: no checkpoint file at {ckpt_path!r}')
    ckpt = _load(ckpt_path, device)
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        raise ValueError(f"ckpt_path: {ckpt_path!r} is not a checkpoint dict with a 'state_dict'")
    net.load_state_dict(ckpt['state_dict'])
    internal = ckpt.pop(_INTERNAL_KEY, None)
    if ret_performance_score:
        if internal is None:
            raise ValueError(f'ckpt_path: {ckpt_path!r} was not written by save_checkpoint and has no score')
        return ckpt, internal['score']
    return ckpt


def make_ckpt_list(file_path):
    """Write ``score_list_<name>.txt`` next to the checkpoints: one line
    ``<file>, <score>`` per checkpoint, best first."""
    folder, name = _split_path(file_path)
    if not os.path.isdir(folder):
        raise OSError(f'file_path: folder {folder!r} does not exist')
    records = _list_ckpts(folder, name, _read_meta(folder, name))
    ranking = sorted(records.items(), key=lambda item: item[1]['score'], reverse=True)
    lines = ''.join(f'{fn}, {r["score"]:f}\n' for fn, r in ranking)
    _atomic_write(os.path.join(folder, f'score_list_{name}.txt'), lambda f: f.write(lines), binary=False)


def get_best_ckpt_path(file_path):
    """Path of the checkpoint with the highest score (``None`` if none),
    taken from the score list of :func:`make_ckpt_list` if it exists."""
    folder, name = _split_path(file_path)
    if not os.path.isdir(folder):
        raise OSError(f'file_path: folder {folder!r} does not exist')
    list_path = os.path.join(folder, f'score_list_{name}.txt')
    if os.path.isfile(list_path):
        with open(list_path) as f:
            first = f.readline()
        if first:
            return os.path.join(folder, first.split(',', 1)[0])
    records = _list_ckpts(folder, name, _read_meta(folder, name))
    if not records:
        return None
    best = max(records.items(), key=lambda item: item[1]['score'])[0]
    return os.path.join(folder, best)
