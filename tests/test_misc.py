"""Tests for utils.misc: parsers (including malformed input), activations, defaults, plotting helpers."""
import pytest
import torch

from utils.misc import (
    ACTIVATION_NAMES,
    configure_matplotlib_params,
    get_colorbrewer2_colors,
    get_default_args,
    list_to_str,
    str_to_act,
    str_to_floats,
    str_to_ints,
)


def test_str_to_ints():
    assert str_to_ints('100,100') == [100, 100]
    assert str_to_ints(' 3, -4 ,5') == [3, -4, 5]
    assert str_to_ints('') == [] and str_to_ints('  ') == []
    assert str_to_ints(7) == [7]
    with pytest.raises(ValueError, match=r"str_arg: expected comma-separated ints, got '1,x' \(item 'x'\)"):
        str_to_ints('1,x')
    with pytest.raises(ValueError, match="item ''"):
        str_to_ints('1,,2')
    with pytest.raises(ValueError, match="item '1.5'"):
        str_to_ints('1.5')
    with pytest.raises(TypeError, match='str_arg: expected a string'):
        str_to_ints([1, 2])
    with pytest.raises(TypeError, match='str_arg'):
        str_to_ints(True)


def test_str_to_floats():
    assert str_to_floats('0.1,1e-3, 2') == [0.1, 1e-3, 2.0]
    assert str_to_floats('') == []
    assert str_to_floats(0.5) == [0.5] and str_to_floats(2) == [2.0]
    with pytest.raises(ValueError, match="str_arg: expected comma-separated floats, got '0.1;0.2'"):
        str_to_floats('0.1;0.2')
    with pytest.raises(TypeError, match='str_arg'):
        str_to_floats(None)


def test_list_to_str():
    assert list_to_str([1, 2.5, 'a']) == '1 2.5 a'
    assert list_to_str([1, 2], delim=',') == '1,2'
    assert list_to_str([]) == ''
    assert str_to_ints(list_to_str([4, 5, 6], delim=',')) == [4, 5, 6]


def test_str_to_act():
    assert str_to_act('linear') is None
    expected = {'relu': torch.nn.ReLU, 'sigmoid': torch.nn.Sigmoid, 'elu': torch.nn.ELU, 'tanh': torch.nn.Tanh}
    for name, cls in expected.items():
        assert type(str_to_act(name)) is cls
    assert str_to_act('relu') is not str_to_act('relu')  # fresh instances
    for name in ACTIVATION_NAMES:
        act = str_to_act(name)
        assert act is None or isinstance(act(torch.zeros(2)), torch.Tensor)
    torch.testing.assert_close(str_to_act('tanh')(torch.tensor([0.5])), torch.tanh(torch.tensor([0.5])))
    with pytest.raises(ValueError, match=r"act_str: expected one of \['linear', 'sigmoid', 'relu'.*got 'RELU'"):
        str_to_act('RELU')


def test_get_default_args():
    def func(a, b=1, *args, c=None, d='x', **kwargs):
        return a

    assert get_default_args(func) == {'b': 1, 'c': None, 'd': 'x'}
    assert get_default_args(lambda: 0) == {}


def test_colorbrewer_and_matplotlib_params():
    colors = get_colorbrewer2_colors('Dark2')
    assert len(colors) == 8 and all(c.startswith('#') and len(c) == 7 for c in colors)
    colors.append('#000000')
    assert len(get_colorbrewer2_colors('Dark2')) == 8  # callers get a copy
    assert len(get_colorbrewer2_colors('Pastel')) == 7
    with pytest.raises(ValueError, match="family: expected one of .*got 'Set9'"):
        get_colorbrewer2_colors('Set9')

    import matplotlib  # a declared dependency; imported here as only this test needs it

    saved = matplotlib.rcParams.copy()
    try:
        configure_matplotlib_params(fig_size=(3., 2.), font_size=11)
        assert list(matplotlib.rcParams['figure.figsize']) == [3., 2.]
        assert matplotlib.rcParams['font.size'] == 11 and not matplotlib.rcParams['axes.spines.top']
    finally:
        matplotlib.rcParams.update(saved)
