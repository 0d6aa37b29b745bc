"""Argparse ``type=`` validators shared by the command-line helpers.

Argparse turns a ``ValueError``/``argparse.ArgumentTypeError`` raised inside a ``type=`` callable into the
one-line usage error ``prog: error: argument --lr: ...`` and exit status 2, so a bad value on the command line
never ends in a traceback. Every validator here returns the value in the form the simulations expect (numbers
as numbers, architecture strings unchanged as strings, so ``config.json`` keeps what the user typed).
"""
import argparse

__all__ = ['positive_int', 'nonneg_int', 'positive_float', 'nonneg_float', 'int_or_minus_one',
           'positive_int_or_minus_one', 'dropout_rate', 'int_list_str', 'nonempty_int_list_str',
           'int_list_or_groups_str', 'parse_int_list']


def _number(text, kind):
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError('expected %s, got %r' % (
            'an integer' if kind is int else 'a number', text)) from None


def positive_int(text):
    """An integer ``> 0`` (batch sizes, iteration counts, layer widths)."""
    value = _number(text, int)
    if value <= 0:
        raise argparse.ArgumentTypeError('expected an integer > 0, got %d' % value)
    return value


def nonneg_int(text):
    """An integer ``>= 0`` (sizes that may be switched off by 0)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError('expected an integer >= 0, got %d' % value)
    return value


def int_or_minus_one(text):
    """An integer ``>= -1``; ``-1`` conventionally means "not set"."""
    value = _number(text, int)
    if value < -1:
        raise argparse.ArgumentTypeError('expected an integer >= 0 or -1 (off), got %d' % value)
    return value


def positive_int_or_minus_one(text):
    """An integer ``> 0`` or ``-1`` ("not set"), e.g. ``--epochs``."""
    value = _number(text, int)
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError('expected an integer > 0 or -1 (off), got %d' % value)
    return value


def positive_float(text):
    """A finite float ``> 0`` (learning rates, standard deviations)."""
    value = _number(text, float)
    if not value > 0 or value == float('inf'):
        raise argparse.ArgumentTypeError('expected a finite number > 0, got %s' % text)
    return value


def nonneg_float(text):
    """A finite float ``>= 0`` (regularization strengths, weight decay, momentum)."""
    value = _number(text, float)
    if not value >= 0 or value == float('inf'):
        raise argparse.ArgumentTypeError('expected a finite number >= 0, got %s' % text)
    return value


def dropout_rate(text):
    """A dropout probability in ``[0, 1)``, or ``-1`` to switch dropout off."""
    value = _number(text, float)
    if value != -1 and not 0 <= value < 1:
        raise argparse.ArgumentTypeError('expected a probability in [0, 1) or -1 (off), got %s' % text)
    return value


def parse_int_list(text):
    """``'100, 100'`` -> ``[100, 100]``; ``''`` -> ``[]``. Raises ``ValueError`` naming the bad item."""
    if not isinstance(text, str):
        raise TypeError('text: expected a str, got %s' % type(text).__name__)
    items = [item.strip() for item in text.split(',')]
    if items == ['']:
        return []
    values = []
    for item in items:
        try:
            value = int(item)
        except ValueError:
            raise ValueError('expected comma-separated positive integers, got %r (bad item %r)'
                             % (text, item)) from None
        if value <= 0:
            raise ValueError('expected comma-separated positive integers, got %r (bad item %r)'
                             % (text, item))
        values.append(value)
    return values


def int_list_str(text):
    """A comma-separated list of positive integers, possibly empty (``''`` = no hidden layer).

    The string itself is returned (validated), matching the reference's string-typed architecture options.
    """
    try:
        parse_int_list(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def nonempty_int_list_str(text):
    """Like :func:`int_list_str` but at least one integer is required (shapes, channel sizes)."""
    if not int_list_str(text).strip():
        raise argparse.ArgumentTypeError('expected at least one positive integer, got an empty string')
    return text


def int_list_or_groups_str(text):
    """Comma-separated positive integers, optionally several such groups separated by ``';'``.

    Used for ``--hmlp_arch``, whose semicolon form gives one architecture per internal hypernetwork of a
    structured hypernetwork.
    """
    for group in text.split(';'):
        int_list_str(group)
    return text
