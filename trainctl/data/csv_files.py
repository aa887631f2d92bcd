"""The ``csv`` source: a table of numbers with a header row, one sample a row.

``label`` names the target column (or columns); every other column is a feature,
unless ``features`` lists the ones to use. A label column of words (``setosa``,
``versicolor``) becomes class ids in sorted order, printed once; the test file
must use the same words. Every cell is read as a number: an empty cell, a word in a
feature column, or a row with another number of fields is a DataError naming the
file, line and column. ``test`` names a second file with the same columns (the
source then has a test split).

Example (YAML)::

    data:
      source: {type: csv, label: species, test: iris_test.csv}
      path: iris_train.csv                 # relative to the config file
      validation: {split: 0.2}
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from trainctl.data.base import RawData, SourceContext, source
from trainctl.data.files import read_bytes, sha256_bytes
from trainctl.data.types import Split
from trainctl.errors import ConfigError, DataError, did_you_mean

Columns = Union[str, list]


@source("csv")
def csv_source(ctx: SourceContext, *, label: Optional[Columns] = None,
               features: Optional[list] = None, test: Optional[str] = None,
               delimiter: str = ",") -> RawData:
    """Load ``data.path`` (and ``test``) as described in the module docstring."""
    if ctx.path is None:
        raise ConfigError("the csv source needs data.path (the .csv file, relative to the "
                          "config file)", key=ctx.key, where=ctx.locate(ctx.key))
    labels = _names(label, f"{ctx.key}.label", ctx)
    wanted = _names(features, f"{ctx.key}.features", ctx) if features is not None else None
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        at = f"{ctx.key}.delimiter"
        raise ConfigError(f"expected one character; received {delimiter!r}", key=at,
                          where=ctx.locate(at), hint="e.g. delimiter: ';' or delimiter: '\\t'")
    train = Table.read(ctx.path, delimiter, ctx.where(ctx.path_key))
    classes = train.classes(labels, ctx)
    files = {str(ctx.path): train.sha}
    split = train.split(labels, wanted, classes, ctx)
    test_split = None
    if test is not None:
        path = Path(test).expanduser()
        path = path if path.is_absolute() else ctx.config_dir / path
        table = Table.read(path.resolve(), delimiter, ctx.where(f"{ctx.key}.test"))
        test_split = table.split(labels, wanted or train.features(labels), classes, ctx)
        files[str(path.resolve())] = table.sha
    return RawData(train=split, test=test_split, files=files)


def _names(value: Any, key: str, ctx: SourceContext) -> list[str]:
    """A column name or a list of them, as a list."""
    names = [value] if isinstance(value, str) else value if value is not None else []
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"expected a column name or a list of column names; received "
                          f"{value!r}", key=key, where=ctx.locate(key))
    return names


class Table:
    """One CSV file: its header and rows of text cells, with the file's sha256."""

    def __init__(self, path: Path, header: list[str], rows: list[list[str]],
                 lines: list[int], *, sha: str, at: str, delimiter: str):
        self.path, self.header, self.rows, self.lines = path, header, rows, lines
        self.sha, self.at, self.delimiter = sha, at, delimiter
        # lines: each row's line number in the file; at: "config:line:col: key: path"

    @classmethod
    def read(cls, path: Path, delimiter: str, where: str) -> "Table":
        """Parse ``path``; an empty file, a header alone or ragged rows are DataErrors."""
        data = read_bytes(path, where)
        at = f"{where}: {path}"
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DataError(f"{at}: not a UTF-8 text file ({exc.reason} at byte "
                            f"{exc.start})") from None
        lines = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter)]
        numbered = [(i + 1, row) for i, row in enumerate(lines) if any(c.strip() for c in row)]
        if not numbered:
            raise DataError(f"{at}: the file is empty; expected a header row and data rows")
        (_, header), body = numbered[0], numbered[1:]
        header = [h.strip() for h in header]
        if not body:
            raise DataError(f"{at}: only a header row ({', '.join(header)}); no data rows")
        for line, row in body:
            if len(row) != len(header):
                hint = _delimiter_hint(header, delimiter)
                raise DataError(f"{at}: line {line} has {len(row)} field(s); the header has "
                                f"{len(header)}" + (f"\n  hint: {hint}" if hint else ""))
        return cls(path, header, [row for _, row in body], [line for line, _ in body],
                   sha=sha256_bytes(data), at=at, delimiter=delimiter)

    def column(self, name: str, ctx: SourceContext, key: str) -> int:
        """The index of column ``name``; an unknown one is a ConfigError listing them."""
        if name in self.header:
            return self.header.index(name)
        raise ConfigError(f"{self.path}: no column {name!r}{did_you_mean(name, self.header)}; "
                          f"the columns are: {', '.join(self.header)}", key=key,
                          where=ctx.locate(key),
                          hint=_delimiter_hint(self.header, self.delimiter) or None)

    def features(self, labels: list[str]) -> list[str]:
        """Every column that is not a label."""
        return [h for h in self.header if h not in labels]

    def classes(self, labels: list[str], ctx: SourceContext) -> dict[str, dict[str, int]]:
        """For each label column of words: its words in sorted order as class ids."""
        out = {}
        for name in labels:
            cells = [row[self.column(name, ctx, f"{ctx.key}.label")].strip() for row in self.rows]
            if not all(_is_number(c) for c in cells if c):
                words = sorted({c for c in cells if c})
                out[name] = {w: i for i, w in enumerate(words)}
                print(f"note: {self.path.name}: label {name!r} holds words: "
                      + ", ".join(f"{w}={i}" for w, i in out[name].items()), flush=True)
        return out

    def split(self, labels: list[str], features: Optional[list[str]],
              classes: dict[str, dict[str, int]], ctx: SourceContext) -> Split:
        """The table as a Split: features float32, labels as ids or numbers."""
        features = features or self.features(labels)
        if not features:
            raise DataError(f"{self.at}: no feature column left beside the label(s) "
                            f"{', '.join(labels)}")
        x = np.empty((len(self.rows), len(features)), dtype=np.float32)
        for j, name in enumerate(features):
            x[:, j] = self._numbers(self.column(name, ctx, f"{ctx.key}.features"), name)
        if not labels:
            return Split(x, None)
        ys = []
        for name in labels:
            index = self.column(name, ctx, f"{ctx.key}.label")
            ys.append(self._ids(index, name, classes[name]) if name in classes
                      else self._numbers(index, name))
        y = ys[0] if len(ys) == 1 else np.stack(ys, axis=1).astype(np.float32)
        if len(ys) == 1 and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)  # whole numbers in one column: class ids, as Keras expects
        return Split(x, y)

    def _numbers(self, index: int, name: str) -> np.ndarray:
        values = np.empty(len(self.rows), dtype=np.float64)
        for i, row in enumerate(self.rows):
            cell = row[index].strip()
            try:
                values[i] = float(cell)
            except ValueError:
                what = "an empty cell" if not cell else f"{cell[:30]!r}, not a number"
                raise DataError(f"{self.at}: line {self.lines[i]}, column {name!r}: {what}\n"
                                "  hint: fill or drop that row, or leave the column out with "
                                "the source's features: [...]") from None
        return values

    def _ids(self, index: int, name: str, ids: dict[str, int]) -> np.ndarray:
        out = np.empty(len(self.rows), dtype=np.int64)
        for i, row in enumerate(self.rows):
            cell = row[index].strip()
            if cell not in ids:
                raise DataError(f"{self.at}: line {self.lines[i]}, column {name!r}: "
                                f"{cell!r} is not one of the training file's labels "
                                f"({', '.join(ids)})")
            out[i] = ids[cell]
        return out


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _delimiter_hint(header: list[str], delimiter: str) -> str:
    """A hint when the rows look split by another character than ``delimiter``."""
    if len(header) == 1:
        for other in (";", "\t", "|", ","):
            if other != delimiter and other in header[0]:
                return (f"the header is one field holding {other!r}: set the source's "
                        f"delimiter: {other!r}")
    return ""
