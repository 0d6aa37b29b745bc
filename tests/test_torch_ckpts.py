"""Tests of utils.torch_ckpts: round trip, rotation, permanence, atomicity."""
import os

import pytest
import torch

from utils import torch_ckpts
from utils.torch_ckpts import get_best_ckpt_path, load_checkpoint, make_ckpt_list, save_checkpoint


def _net(seed):
    torch.manual_seed(seed)
    return torch.nn.Linear(3, 2)


def _ckpt_files(folder):
    return sorted(f for f in os.listdir(folder) if f.startswith('net'))


def test_round_trip(tmp_path):
    net = _net(0)
    path = save_checkpoint({'state_dict': net.state_dict(), 'train_iter': 7}, str(tmp_path / 'net'), 0.9,
                           train_iter=7)
    assert path == str(tmp_path / 'net_7')
    other = _net(1)
    ckpt, score = load_checkpoint(path, other, ret_performance_score=True)
    assert score == 0.9 and ckpt['train_iter'] == 7 and torch_ckpts._INTERNAL_KEY not in ckpt
    for a, b in zip(net.parameters(), other.parameters()):
        assert torch.equal(a, b)


def test_keep_n_best_rotation(tmp_path):
    prefix = str(tmp_path / 'net')
    scores = [0.5, 0.9, 0.1, 0.7, 0.3]
    for it, score in enumerate(scores):
        save_checkpoint({'state_dict': _net(it).state_dict()}, prefix, score, train_iter=it,
                        max_ckpts_to_keep=3)
    # Kept: the newest (it 4, 0.3) plus the two best among the older ones (0.9, 0.7).
    assert _ckpt_files(tmp_path) == ['net_1', 'net_3', 'net_4']
    assert get_best_ckpt_path(prefix) == str(tmp_path / 'net_1')
    make_ckpt_list(prefix)
    lines = (tmp_path / 'score_list_net.txt').read_text().splitlines()
    assert lines == ['net_1, 0.900000', 'net_3, 0.700000', 'net_4, 0.300000']
    assert get_best_ckpt_path(prefix) == str(tmp_path / 'net_1')


def test_default_keeps_only_latest_and_ignores_other_prefixes(tmp_path):
    prefix = str(tmp_path / 'net')
    save_checkpoint({'state_dict': _net(0).state_dict()}, str(tmp_path / 'net_hnet'), 1.0, train_iter=1)
    for it in range(3):
        save_checkpoint({'state_dict': _net(it).state_dict()}, prefix, 1.0 - it, train_iter=it)
    assert _ckpt_files(tmp_path) == ['net_2', 'net_hnet_1']


def test_permanent_checkpoint_every_window(tmp_path):
    prefix = str(tmp_path / 'net')
    hour = 3600.0
    plan = [(0.0, 0.2), (0.5 * hour, 0.8), (1.0 * hour, 0.4), (1.5 * hour, 0.1)]
    for it, (ts, score) in enumerate(plan):
        save_checkpoint({'state_dict': _net(it).state_dict()}, prefix, score, train_iter=it,
                        max_ckpts_to_keep=1, keep_cktp_every=1, timestamp=1e6 + ts)
    # At hour 1 the best checkpoint of window [0, 1) (net_1, 0.8) becomes permanent.
    assert _ckpt_files(tmp_path) == ['net_1', 'net_3']
    assert torch.load(tmp_path / 'net_1', weights_only=False)[torch_ckpts._INTERNAL_KEY]['permanent']


def test_failure_during_save_loses_nothing(tmp_path, monkeypatch):
    prefix = str(tmp_path / 'net')
    good = _net(0)
    save_checkpoint({'state_dict': good.state_dict()}, prefix, 0.5, train_iter=1)
    real_save = torch.save

    def crash_mid_write(obj, f):
        real_save(obj, f)
        f.seek(f.tell() // 2)
        f.truncate()
        raise KeyboardInterrupt('killed while writing')

    monkeypatch.setattr(torch, 'save', crash_mid_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'state_dict': _net(1).state_dict()}, prefix, 0.9, train_iter=2)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'state_dict': _net(1).state_dict()}, prefix, 0.9, train_iter=1)
    monkeypatch.setattr(torch, 'save', real_save)
    # No partial or temporary file, the old checkpoint is intact and still the best.
    assert sorted(os.listdir(tmp_path)) == ['.net_meta', 'net_1']
    restored = _net(5)
    load_checkpoint(str(tmp_path / 'net_1'), restored)
    assert torch.equal(restored.weight, good.weight)
    assert get_best_ckpt_path(prefix) == str(tmp_path / 'net_1')


def test_checkpoint_unknown_to_meta_is_found(tmp_path):
    prefix = str(tmp_path / 'net')
    save_checkpoint({'state_dict': _net(0).state_dict()}, prefix, 0.3, train_iter=1, max_ckpts_to_keep=5)
    save_checkpoint({'state_dict': _net(0).state_dict()}, prefix, 0.8, train_iter=2, max_ckpts_to_keep=5)
    # A crash between writing net_2 and updating the meta file is simulated by
    # dropping the meta file: the scores are read from the checkpoints.
    os.remove(tmp_path / '.net_meta')
    assert get_best_ckpt_path(prefix) == str(tmp_path / 'net_2')


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="ckpt_dict: expected a dict with key 'state_dict'"):
        save_checkpoint({'weights': 1}, str(tmp_path / 'net'), 0.1)
    with pytest.raises(ValueError, match='max_ckpts_to_keep'):
        save_checkpoint({'state_dict': {}}, str(tmp_path / 'net'), 0.1, max_ckpts_to_keep=0)
    with pytest.raises(ValueError, match='reserved'):
        save_checkpoint({'state_dict': {}, torch_ckpts._INTERNAL_KEY: 1}, str(tmp_path / 'net'), 0.1)
    with pytest.raises(OSError, match='ckpt_path'):
        load_checkpoint(str(tmp_path / 'missing'), _net(0))
    torch.save({'state_dict': _net(0).state_dict()}, tmp_path / 'plain')
    with pytest.raises(ValueError, match='no score'):
        load_checkpoint(str(tmp_path / 'plain'), _net(0), ret_performance_score=True)
    assert get_best_ckpt_path(str(tmp_path / 'nothing')) is None
