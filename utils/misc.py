"""Small helpers: parsing comma-separated command-line values, activation names, function defaults, plotting
defaults.

The parsers turn option strings such as ``--hidden_layers 100,100`` into Python lists and report malformed
input with the offending item, so that a typo on the command line fails with a readable message.
"""
import inspect

import torch

__all__ = ['str_to_ints', 'str_to_floats', 'list_to_str', 'str_to_act', 'get_default_args',
           'configure_matplotlib_params', 'get_colorbrewer2_colors', 'ACTIVATION_NAMES']

#: Activation names understood by :func:`str_to_act` and the module each one builds (``None``: identity).
_ACTIVATIONS = {
    'linear': None,
    'sigmoid': torch.nn.Sigmoid,
    'relu': torch.nn.ReLU,
    'elu': torch.nn.ELU,
    'tanh': torch.nn.Tanh,
    'leaky_relu': torch.nn.LeakyReLU,
    'softplus': torch.nn.Softplus,
    'gelu': torch.nn.GELU,
    'selu': torch.nn.SELU,
}
ACTIVATION_NAMES = tuple(_ACTIVATIONS)


def _str_to_numbers(str_arg, convert, kind, name):
    """Split ``str_arg`` at commas and convert each non-empty item; an empty string gives ``[]``."""
    if not isinstance(str_arg, str):
        raise TypeError(f'{name}: expected a string of comma-separated {kind}s, got {type(str_arg).__name__} '
                        f'{str_arg!r}')
    if str_arg.strip() == '':
        return []
    values = []
    for item in str_arg.split(','):
        try:
            values.append(convert(item.strip()))
        except ValueError:
            raise ValueError(f'{name}: expected comma-separated {kind}s, got {str_arg!r} '
                             f'(item {item.strip()!r})') from None
    return values


def str_to_ints(str_arg):
    """Parse ``'1,2,3'`` into ``[1, 2, 3]``.

    Args:
        str_arg (str or int): Comma-separated integers (spaces allowed; ``''`` gives ``[]``), or a single int,
            which is returned as a one-element list.

    Returns:
        (list): The integers.
    """
    if isinstance(str_arg, int) and not isinstance(str_arg, bool):
        return [str_arg]
    return _str_to_numbers(str_arg, int, 'int', 'str_arg')


def str_to_floats(str_arg):
    """Parse ``'0.1,1e-3'`` into ``[0.1, 0.001]``.

    Args:
        str_arg (str or float): Comma-separated numbers (``''`` gives ``[]``), or a single float/int, returned
            as a one-element list of float.

    Returns:
        (list): The floats.
    """
    if isinstance(str_arg, (int, float)) and not isinstance(str_arg, bool):
        return [float(str_arg)]
    return _str_to_numbers(str_arg, float, 'float', 'str_arg')


def list_to_str(list_arg, delim=' '):
    """Join the string forms of the items of ``list_arg`` with ``delim`` (``[1, 2] -> '1 2'``)."""
    return delim.join(str(item) for item in list_arg)


def str_to_act(act_str):
    """Build the activation module named ``act_str`` (e.g. ``'relu'`` -> ``torch.nn.ReLU()``).

    Args:
        act_str (str): One of :data:`ACTIVATION_NAMES`; ``'linear'`` means no activation.

    Returns:
        torch.nn.Module or None: A new module instance, or ``None`` for ``'linear'``.
    """
    if act_str not in _ACTIVATIONS:
        raise ValueError(f'act_str: expected one of {list(ACTIVATION_NAMES)}, got {act_str!r}')
    module = _ACTIVATIONS[act_str]
    return None if module is None else module()


def get_default_args(func):
    """The default values of ``func``'s parameters that have one, as ``{name: default}``."""
    return {name: param.default for name, param in inspect.signature(func).parameters.items()
            if param.default is not inspect.Parameter.empty}


def configure_matplotlib_params(fig_size=(6.4, 4.8), two_axes=True, font_size=8, usetex=False):
    """Set compact, paper-style matplotlib defaults (small sans-serif fonts, optional LaTeX).

    Args:
        fig_size (tuple): Figure size (width, height) in inches.
        two_axes (bool): Show only the left and bottom spines.
        font_size (int): Size of all texts.
        usetex (bool): Render text with LaTeX (needs a LaTeX installation).
    """
    # Imported here: matplotlib is slow to import and only plotting code needs it.
    import matplotlib

    params = {
        'axes.labelsize': font_size,
        'axes.titlesize': font_size,
        'font.size': font_size,
        'legend.fontsize': font_size,
        'xtick.labelsize': font_size,
        'ytick.labelsize': font_size,
        'font.family': 'sans-serif',
        'text.usetex': usetex,
        'axes.spines.right': not two_axes,
        'axes.spines.top': not two_axes,
        'figure.figsize': list(fig_size),
        'legend.handlelength': 0.5,
    }
    if usetex:
        params['text.latex.preamble'] = r'\usepackage[scaled]{helvet}\usepackage{sfmath}'
    matplotlib.rcParams.update(params)


_COLORBREWER2 = {
    'Set2': ['#e41a1c', '#377eb8', '#4daf4a', '#984ea3', '#ff7f00', '#ffff33', '#a65628', '#b3de69'],
    'Set3': ['#8dd3c7', '#ffffb3', '#bebada', '#fb8072', '#80b1d3', '#fdb462', '#b3de69', '#fccde5'],
    'Dark2': ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#666666'],
    'Pastel': ['#fbb4ae', '#b3cde3', '#ccebc5', '#decbe4', '#fed9a6', '#ffffcc', '#e5d8bd'],
}


def get_colorbrewer2_colors(family='Set2'):
    """A list of hex colours of a colorbrewer2.org palette (``'Set2'``, ``'Set3'``, ``'Dark2'``, ``'Pastel'``).

    The same palettes (and names) as hypnettorch, so plots keep their colours when ported.
    """
    if family not in _COLORBREWER2:
        raise ValueError(f'family: expected one of {list(_COLORBREWER2)}, got {family!r}')
    return list(_COLORBREWER2[family])
