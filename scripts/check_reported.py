"""`make check-reported PAPERS=DIR`: every number in leaderboard/reported.csv occurs in its paper's
text near the table it is filed under (a transcription check).

The papers' texts are not part of the repository, so this runs where a copy of them is at hand
(`DIR` holds the four plain-text files named in `PAPER_FILES`) rather than in the test suite, where
a clean clone could only skip it. A number counts as found when it occurs within `REACH`
characters of a mention of its table ("Table 3", "Table IV"); K/M/G suffixes are dropped, and the
dense rows' implied 1x is not looked for. Exit 0 when every number is found, 1 listing those that
are not, 2 (one line) when the folder or a paper's file is missing.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from prunebench.leaderboard.reported import reported_as_printed

PAPER_FILES = {
    "LTP": "learned-threshold-pruning.txt",
    "DT": "dynamic-thresholding.txt",
    "PSP": "parameterized-structured-pruning.txt",
    "OT": "optimal-thresholding.txt",
}
NUMERIC = ("top1", "top5", "top1_error", "top5_error", "top1_drop", "top5_drop", "compression_rate", "macs_reduction", "params", "macs", "flops")
REACH = 2500  # characters either side of a table mention: the table's body and its caption


def raw_rows() -> list[dict[str, str]]:
    """reported.csv's rows as written, every cell a string."""
    return reported_as_printed().to_dict("records")


def near_table(text: str, table: str, reach: int = REACH) -> str:
    """The paper's text around every mention of `table` ('Table IV', 'Table 3'), where its body is."""
    number = table.split()[-1]
    spans = [(m.start() - reach, m.end() + reach) for m in re.finditer(rf"table\s*:?\s*{number}\b", text, re.IGNORECASE)]
    return "\n".join(text[max(0, a) : b] for a, b in spans)


def numbers(row: dict[str, str]) -> list[tuple[str, str]]:
    """(column, value as printed) of the row's numbers to look for: suffix dropped, no blank, no 1x."""
    values = ((column, re.sub(r"(Gi|[KMG])$", "", row[column])) for column in NUMERIC)
    return [(column, value) for column, value in values if value not in ("", "1")]


def missing_numbers(rows: list[dict[str, str]], texts: dict[str, str]) -> list[tuple[str, str, str, str, str]]:
    """(source, table, label, column, value) of every number not found near its table."""
    missing = []
    for row in rows:
        near = near_table(texts[row["source"]], row["table"])
        missing += [(row["source"], row["table"], row["label"], column, value) for column, value in numbers(row) if value not in near]
    return missing


def read_papers(folder: Path) -> dict[str, str]:
    """The papers' texts by source; a missing folder or file raises FileNotFoundError naming it."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder (expected the papers' texts: {', '.join(PAPER_FILES.values())})")
    texts = {}
    for source, name in PAPER_FILES.items():
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: {source}'s text not found")
        texts[source] = path.read_text(errors="replace")
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("papers", type=Path, help="folder with the papers' plain-text files")
    args = parser.parse_args(argv)
    try:
        texts = read_papers(args.papers)
    except FileNotFoundError as exc:
        print(f"check-reported: {exc}", file=sys.stderr)
        return 2
    rows = raw_rows()
    missing = missing_numbers(rows, texts)
    for source, table, label, column, value in missing:
        print(f"not found near {source} {table}: {label} {column} = {value}")
    checked = sum(len(numbers(row)) for row in rows)
    print(f"{checked - len(missing)} of {checked} numbers of {len(rows)} rows found near their tables")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
