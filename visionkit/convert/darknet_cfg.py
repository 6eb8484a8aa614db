"""Reading darknet files: the ``.cfg`` text (sections with line numbers) and the ``.weights`` binary.

Facts used (darknet C sources, public domain; pjreddie/darknet and AlexeyAB/darknet agree on all of them):

- ``src/parser.c`` ``read_cfg``: ``[section]`` headers and ``key=value`` lines, ``#``/``;`` comments; the first
  section is ``[net]`` (or ``[network]``); layers are numbered from 0 after it.
- ``src/parser.c`` ``load_weights_upto``: a header of three int32 (major, minor, revision), then the images seen
  as ``size_t`` (8 bytes) when ``major*10 + minor >= 2`` and both are below 1000, else as int32; then, per
  layer that has weights, float32 arrays in order, read with ``fread``. Darknet reads only what its layers need
  and never looks at the rest of the file: trailing bytes are ignored (and counted here, see
  :attr:`WeightsReader.trailing_bytes`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visionkit.core.errors import ModelError, WeightsError

#: Keys that only steer training (learning rate, freezing, GPU streams): read by darknet, ignored for inference.
TRAINING_KEYS = frozenset({"learning_rate", "stopbackward", "train_only_bn", "dont_update", "burnin_update",
                           "onlyforward", "clip", "stream", "wait_stream"})


@dataclass
class Section:
    """One ``[kind]`` block of a cfg: its options, and the line of its header and of each key."""

    kind: str
    options: dict = field(default_factory=dict)
    line: int = 0
    key_lines: dict = field(default_factory=dict)
    used: set = field(default_factory=set)

    def where(self, key: str | None = None) -> str:
        return f"cfg line {self.key_lines.get(key, self.line)}: [{self.kind}]"

    def has(self, key: str) -> bool:
        return key in self.options

    def text(self, key: str, default: str | None = None) -> str:
        self.used.add(key)
        if key not in self.options:
            if default is None:
                raise ModelError(f"{self.where()} needs {key}=")
            return default
        return self.options[key]

    def number(self, key: str, default: float | None = None) -> float:
        value = self.text(key, None if default is None else str(default))
        try:
            return float(value)
        except ValueError:
            raise ModelError(f"{self.where(key)} {key}={value!r} is not a number") from None

    def integer(self, key: str, default: int | None = None) -> int:
        return int(self.number(key, default))  # darknet reads integers with atoi(): "1.0" -> 1

    def integers(self, key: str) -> list[int]:
        return [int(float(v)) for v in self._items(key)]

    def numbers(self, key: str) -> list[float]:
        return [float(v) for v in self._items(key)]

    def _items(self, key: str) -> list[str]:
        items = [v.strip() for v in self.text(key).split(",") if v.strip()]
        try:
            [float(v) for v in items]
        except ValueError:
            raise ModelError(f"{self.where(key)} {key}= must be a comma-separated list of numbers, "
                             f"found {self.options[key]!r}") from None
        return items

    def require(self, key: str, neutral, why: str = "") -> None:
        """Refuse a key that darknet understands but this converter does not, unless it has its neutral value."""
        self.used.add(key)
        if key in self.options and self.number(key) != float(neutral):
            raise ModelError(f"{self.where(key)} {key}={self.options[key]} is not supported"
                             f"{' (' + why + ')' if why else ''}; only {key}={neutral} is")

    def check_all_used(self, ignored: frozenset = frozenset()) -> None:
        """One clear error for the first key the converter did not read: it may change what the layer computes."""
        for key in self.options:
            if key not in self.used and key not in ignored and key not in TRAINING_KEYS:
                raise ModelError(f"{self.where(key)} key {key}= is not supported by visionkit's darknet converter "
                                 f"(it may change what the layer computes); remove it if it only steers training")


def parse_cfg(text: str) -> list[Section]:
    """``[section]`` headers and ``key=value`` lines -> sections with line numbers (``#`` and ``;`` start comments)."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ModelError(f"cfg line {number}: malformed section header {raw.strip()!r}")
            sections.append(Section(line[1:-1].strip().lower(), line=number))
        elif "=" in line and sections:
            key, value = (part.strip() for part in line.split("=", 1))
            sections[-1].options[key] = value
            sections[-1].key_lines[key] = number
        else:
            raise ModelError(f"cfg line {number}: expected [section] or key=value, found {raw.strip()!r}")
    if not sections or sections[0].kind not in ("net", "network"):
        raise ModelError("a darknet cfg starts with a [net] section (input width, height, channels)")
    return sections


def read_cfg(path: str | os.PathLike) -> list[Section]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ModelError(f"{path}: cannot read the darknet cfg ({error.__class__.__name__})") from None
    try:
        return parse_cfg(text)
    except ModelError as error:
        raise ModelError(f"{path}: {error}") from None


#: How files that are not darknet weights start: a web page saved in place of a download, a git-lfs pointer.
_NOT_WEIGHTS = ((b"<", "an HTML/XML page"), (b"{", "a JSON document"),
                (b"version https://git-lfs", "a git-lfs pointer"))


@dataclass
class WeightsReader:
    """The float32 values of a ``.weights`` file, handed out in order as the layers ask for them.

    ``values=None`` reads nothing and only counts what the cfg needs (to build an architecture without weights).
    """

    values: np.ndarray | None
    header: tuple = (0, 0, 0, 0)
    header_bytes: int = 0
    file_bytes: int = 0
    path: str = ""
    position: int = 0

    def take(self, count: int, what: str) -> np.ndarray | None:
        start = self.position
        self.position += count
        if self.values is None:
            return None
        if self.position > len(self.values):
            have = self.file_bytes - self.header_bytes
            raise WeightsError(f"{self.path}: the weights end before {what}: the cfg needs at least "
                               f"{4 * self.position} bytes after the header, the file has {have} (a truncated "
                               f"download, or weights for another cfg)")
        return self.values[start:self.position]

    @property
    def trailing_bytes(self) -> int:
        """Bytes after the last value the cfg needs (darknet ignores them)."""
        return max(0, self.file_bytes - self.header_bytes - 4 * self.position) if self.values is not None else 0


def read_weights(path: str | os.PathLike) -> WeightsReader:
    """A reader over a darknet ``.weights`` file (header parsed as in ``load_weights_upto``)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise WeightsError(f"{path}: cannot read the weights file ({error.__class__.__name__})") from None
    start = data[:64].lstrip()
    for prefix, what in _NOT_WEIGHTS:
        if start.startswith(prefix):
            raise WeightsError(f"{path}: is {what}, not a darknet weights file (a failed download saved in its "
                               f"place?); download the .weights file again")
    if len(data) < 16:
        raise WeightsError(f"{path}: {len(data)} bytes is too short for a darknet weights file (the header alone "
                           f"is 16 or 20 bytes)")
    major, minor, revision = (int(v) for v in np.frombuffer(data[:12], dtype="<i4"))
    if not (0 <= major < 1000 and 0 <= minor < 1000 and revision >= 0):
        raise WeightsError(f"{path}: the header says format {major}.{minor}.{revision}, which no darknet weights "
                           f"file has; this is not a darknet .weights file")
    wide = major * 10 + minor >= 2
    header_bytes = 20 if wide else 16
    if len(data) < header_bytes:
        raise WeightsError(f"{path}: {len(data)} bytes is shorter than the {header_bytes}-byte header")
    seen = int(np.frombuffer(data[12:header_bytes], dtype="<i8" if wide else "<i4")[0])
    count = (len(data) - header_bytes) // 4
    values = np.frombuffer(data, dtype="<f4", count=count, offset=header_bytes)
    return WeightsReader(values, (major, minor, revision, seen), header_bytes, len(data), str(path))
