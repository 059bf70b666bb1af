"""Text that reaches a terminal from files anyone can write (result records, grids, paths).

A terminal acts on control characters instead of showing them: ESC starts sequences that
recolour, clear the screen, set the window title or the clipboard (OSC 52) or hide a link
(OSC 8); a newline or carriage return makes one warning look like two, or overwrite itself.
Such characters are shown escaped, the way Python writes them (`\\x1b`, `\\n`).
"""

from __future__ import annotations

import re

# C0 controls (newline and tab included), DEL, C1 controls, zero-width and bidirectional
# formatting marks, Unicode line and paragraph separators, the byte order mark, and lone
# surrogates (no encoding can write them: printing one would crash).
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape", "backslashreplace").decode("ascii")


def printable(text: str) -> str:
    """`text` on one line with every control character shown escaped (ESC -> \\x1b)."""
    return UNPRINTABLE.sub(_escaped, text)
