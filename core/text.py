"""Text that reaches a terminal from files anyone can write (result records, grids, paths).

A terminal acts on control characters instead of showing them: ESC starts sequences that
recolour, clear the screen, set the window title or the clipboard (OSC 52) or hide a link
(OSC 8); a newline or carriage return makes one warning look like two, or overwrite itself.
Such characters are shown escaped, the way Python writes them (`\\x1b`, `\\n`).
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls (newline and tab included), DEL, C1 controls, zero-width and bidirectional
# formatting marks, Unicode line and paragraph separators, the byte order mark, lone
# surrogates (no encoding can write them: printing one would crash), and the other characters
# that show as nothing: the soft hyphen, the combining grapheme joiner, the Arabic letter mark,
# Hangul and Khmer fillers, the Mongolian separators, interlinear annotation and tag characters.
_BEYOND_C0 = (
    "\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff"
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\uffa0\ufff9-\ufffb\U000e0000-\U000e007f"
)
UNPRINTABLE = re.compile(f"[\x00-\x1f{_BEYOND_C0}]")
# In a JSON text that parsed, no string holds a raw C0 control (strict JSON refuses them; tab,
# newline and carriage return only separate tokens): a string can hold an unprintable character
# only through an escape (a backslash) or as one of the others.
_JSON_UNPRINTABLE = re.compile(f"[\\\\\x00-\x08\x0b\x0c\x0e-\x1f{_BEYOND_C0}]")
# Values that hold no string: passed through without a call (most of a record is numbers).
_NO_TEXT = frozenset({int, float, bool, type(None)})


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape", "backslashreplace").decode("ascii")


def printable(text: str) -> str:
    """`text` on one line with every control character shown escaped (ESC -> \\x1b)."""
    return UNPRINTABLE.sub(_escaped, text)


def printable_strings(value: Any) -> Any:
    """`value` with every string in it (keys too) made printable, recursively."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_strings(key): item if type(item) in _NO_TEXT else printable_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [item if type(item) in _NO_TEXT else printable_strings(item) for item in value]
    return value


def printable_json(value: Any, text: str) -> Any:
    """printable_strings of `value`, the JSON parsed from `text`: when the text holds no escape
    and no unprintable character, as almost every record, no string can need a change and the
    value is returned as it is, without a walk."""
    return value if _JSON_UNPRINTABLE.search(text) is None else printable_strings(value)
