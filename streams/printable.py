"""Producer-controlled text made safe to print on a terminal: the one place that does it.

Every id, rule id and reason that ``simulate`` (text), ``tail``, ``audit query`` (table)
and ``whoami`` print came from somewhere a producer writes: an event, a decisions record,
an audit entry. Printed as it is, a newline in a request id forges a whole row, an ESC
sequence rewrites the operator's line, and a bidi override reverses what they read. So each
such value goes through :func:`printable`: what a terminal would act on or hide is shown
as an escape instead, and a shortened value keeps both of its ends.

JSON outputs need none of this: JSON escapes control characters itself.
"""

from __future__ import annotations

__all__ = ["ELLIPSIS", "printable"]

ELLIPSIS = "…"
"""What stands for the middle a shortened value leaves out."""

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
"""The escapes shown by name. A backslash is doubled, so that a literal ``\\n`` in an id
never passes for an escaped newline."""


def _escaped(char: str) -> str:
    """One character as shown: itself, or its escape.

    :meth:`str.isprintable` is the rule (what ``repr`` escapes): false for control
    characters (C0, DEL, C1), format characters (zero-width and bidi controls such as
    U+200B to U+200F, U+202A to U+202E, U+2060 to U+2064, U+2066 to U+2069, U+FEFF), line
    and paragraph separators, spaces other than the ASCII one, surrogates, private-use and
    unassigned code points. A lone surrogate would also make ``print`` raise, not just
    mislead.
    """
    named = _NAMED.get(char)
    if named is not None:
        return named
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(value: object, width: int | None = None) -> str:
    """``value`` as text a terminal shows as it is: every character it would act on or
    hide (see :func:`_escaped`) escaped as ``\\n``, ``\\x1b``, ``\\u200b`` and the like.

    With ``width``, a longer result is shortened to exactly ``width`` characters by
    leaving out its middle (``spiffe://acme.e…ci/sa/deployer-7a7600``): ids differ at
    either end (scheme and domain at the start, a workload's instance at the end), so
    both are kept. An escape is never cut in half.
    """
    text = str(value)
    if text.isprintable() and "\\" not in text:  # the usual case: nothing to escape
        if width is None or len(text) <= width:
            return text
        shown = list(text)
    else:
        shown = [_escaped(char) for char in text]
        if width is None or sum(map(len, shown)) <= width:
            return "".join(shown)
    return _shortened(shown, width)


def _shortened(shown: list[str], width: int) -> str:
    """The first and last escaped characters that fit ``width`` with the ellipsis between
    them; the end gets the odd one, as it tells instances of one workload apart."""
    room = max(width - len(ELLIPSIS), 0)
    head, used = _fitting(shown, room // 2)
    tail, _ = _fitting(shown[len(head):][::-1], room - used)
    return "".join(head) + ELLIPSIS + "".join(reversed(tail))


def _fitting(pieces: list[str], room: int) -> tuple[list[str], int]:
    """The leading pieces whose lengths add up to at most ``room``, and that sum."""
    taken: list[str] = []
    used = 0
    for piece in pieces:
        if used + len(piece) > room:
            break
        taken.append(piece)
        used += len(piece)
    return taken, used
