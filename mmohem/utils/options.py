"""Validation of user options, with errors naming the option and its range."""
import difflib
import inspect
from typing import Any, Callable, Collection, Mapping, Optional, Tuple

#: Parameters of a constructor that are not user options.
_NOT_OPTIONS = ('self', 'context')


def check_range(owner: str,
                name: str,
                value: Any,
                low: Optional[float] = None,
                high: Optional[float] = None,
                low_open: bool = False,
                integer: bool = False,
                allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` lies in the documented range.

    Args:
        owner (str): The class or function that takes the option.
        name (str): The option's name.
        value: The value given.
        low (float, optional): Lower bound; ``None`` for none.
        high (float, optional): Upper bound (inclusive); ``None`` for none.
        low_open (bool): Whether ``low`` itself is excluded.
        integer (bool): Whether only integers are allowed.
        allow_none (bool): Whether ``None`` is allowed.
    """
    if value is None and allow_none:
        return
    kind = 'an integer' if integer else 'a number'
    allowed = _describe_range(kind, low, high, low_open, allow_none)
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if (not is_number or (integer and not float(value).is_integer()) or
        (low is not None and (value < low or (low_open and value == low)))
            or (high is not None and value > high) or value != value):
        raise ValueError(f'{owner}: `{name}` must be {allowed}, '
                         f'got {value!r}.')


def check_choice(owner: str, name: str, value: Any,
                 choices: Collection[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        listed = ', '.join(repr(c) for c in choices)
        raise ValueError(f'{owner}: `{name}` must be one of {listed}, '
                         f'got {value!r}.')


def reject_unknown_options(owner: str, unknown: Mapping[str, Any],
                           known: Collection[str]) -> None:
    """Raise ``TypeError`` naming each unknown option and the known ones."""
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, list(known), n=1)
        hints.append(f'`{key}`' +
                     (f' (did you mean `{close[0]}`?)' if close else ''))
    raise TypeError(f'{owner}: unknown option(s) {", ".join(hints)}; '
                    f'allowed options are {", ".join(sorted(known))}.')


def signature_options(func: Callable) -> Tuple[str, ...]:
    """The options a constructor takes from the user, read from its
    signature: every named parameter but ``self`` and ``context`` (the
    module mmdet / mmseg pass a sampler, not an option), ``*args`` and
    ``**kwargs`` excluded.

    Args:
        func (callable): E.g. ``SomeClass.__init__``.

    Returns:
        tuple[str]: The parameter names, in order.
    """
    return tuple(
        p.name for p in inspect.signature(func).parameters.values()
        if p.name not in _NOT_OPTIONS and p.kind not in (p.VAR_POSITIONAL,
                                                         p.VAR_KEYWORD))


def _describe_range(kind: str, low: Optional[float], high: Optional[float],
                    low_open: bool, allow_none: bool) -> str:
    if low is not None and high is not None:
        text = f'{kind} in {"(" if low_open else "["}{low}, {high}]'
    elif low is not None:
        text = f'{kind} {">" if low_open else ">="} {low}'
    elif high is not None:
        text = f'{kind} <= {high}'
    else:
        text = kind
    return text + (' or None' if allow_none else '')
