"""CSV files a person edits in a spreadsheet: formula-safe cells, any UTF-8, one column per name.

The labelling queue holds sentences users typed, and annotators open it in a spreadsheet. A cell
that starts with = + - @ (or a tab or carriage return) is read there as a formula: "CSV injection"
(https://owasp.org/www-community/attacks/CSV_Injection). OWASP's rule is to write such a cell
with a single quote in front, which a spreadsheet shows as text and does not evaluate:

    =HYPERLINK("http://x.example","click")   is written as   '=HYPERLINK("http://x.example","click")

Reading takes that quote off again. A sentence that really starts with a quote followed by one of
those characters, or by another quote, gets a quote in front too, so every text reads back as it
was written (escape_cell and unescape_cell are inverses). A cell a spreadsheet saved back without
the quote (it keeps the quote as formatting, not as text) reads back as the sentence itself.

Reading, a spreadsheet's habits are handled or named on one line: a UTF-8 byte order mark
(Excel's "CSV UTF-8") is dropped; a file saved in another encoding (Windows-1252) is refused
with the line and byte to look at; a header that names a column twice is refused, since one of
the two columns would be silently ignored.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from errors import CourseError

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def unescape_cell(text: str) -> str:
    """The text a cell written by `escape_cell` holds: one leading quote taken off where it was added."""
    if text.startswith(QUOTE) and text[1:].startswith((*FORMULA_STARTS, QUOTE)):
        return text[1:]
    return text


def escape_cell(text: str) -> str:
    """`text` as a cell no spreadsheet evaluates; `unescape_cell` gives `text` back exactly."""
    if text.startswith(FORMULA_STARTS) or unescape_cell(text) != text:
        return QUOTE + text
    return text


def read_csv_text(path: Path) -> str:
    """The text of a CSV file, UTF-8 with or without a byte order mark.

    OSError when it cannot be read (the caller knows the hint); CourseError naming the line and byte
    of the first byte that is not UTF-8.
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise CourseError(
            f"{path}: line {line} (byte {error.start}, 0x{data[error.start]:02x}) is not UTF-8: the file was saved "
            'in another encoding (a spreadsheet may save Windows-1252): save it as "CSV UTF-8" and run again'
        ) from error
    return text.removeprefix("\ufeff")  # the BOM Excel writes in front of "CSV UTF-8"


def csv_rows(path: Path, text: str) -> csv.DictReader:
    """A DictReader over `text` (read from `path`); CourseError when the header names a column twice."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    repeated = [name for i, name in enumerate(columns) if name in columns[:i]]
    if repeated:
        where = "; ".join(
            f"{name} in columns {' and '.join(str(i + 1) for i, c in enumerate(columns) if c == name)}"
            for name in dict.fromkeys(repeated)
        )
        raise CourseError(
            f"{path}: the header names a column twice ({where}): one of them would be ignored; "
            "keep one column of each name and run again"
        )
    return reader
