"""Control characters in user-supplied text: find them at load, neutralise them at output.

A name, id or message from a data file, a plugin or ``results.json`` can carry terminal escape
sequences (``ESC ] 0 ; title BEL`` sets the window title, ``ESC [ 2 J`` clears the screen),
carriage returns that overwrite what was printed, or bidirectional overrides that make text
read differently from what it is. Loaders reject such characters in names and ids
(:func:`first_control`); everything printed to a terminal or written to Markdown or JUnit goes
through :func:`printable`, which shows each such character as a visible escape (``\\x1b``,
``\\u202e``) instead of passing it on.
"""
from __future__ import annotations

import re
from typing import Any

__all__ = ["CONTROL_RE", "printable", "first_control", "describe_char"]

#: C0 controls except tab and newline, DEL, C1 controls, bidirectional embeddings / overrides /
#: isolates and the line / paragraph separators (they break a line where none was written).
CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# tab and newline are harmless on a terminal but never belong in a name or an id
_NAME_CONTROL_RE = re.compile("[\t\n]|" + CONTROL_RE.pattern)


def _escape(m: re.Match[str]) -> str:
    c = m.group(0)
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def printable(text: Any, *, newlines: bool = True) -> str:
    """``text`` as a string with every control character shown as a visible escape.

    Parameters
    ----------
    text : Any
        Converted with ``str`` (``None`` gives ``""``).
    newlines : bool, default True
        Keep tabs and newlines (multi-line messages); False escapes them too.
    """
    s = "" if text is None else (text if isinstance(text, str) else str(text))
    pattern = CONTROL_RE if newlines else _NAME_CONTROL_RE
    return pattern.sub(_escape, s) if pattern.search(s) else s


def first_control(text: str) -> int | None:
    """Index of the first character a name or id must not hold (tab and newline included), or None."""
    m = _NAME_CONTROL_RE.search(text)
    return None if m is None else m.start()


def describe_char(c: str) -> str:
    """``'\\x1b' (U+001B)``: how a message names one offending character."""
    return f"{printable(c, newlines=False)!s} (U+{ord(c):04X})"
