"""File plumbing, one home each: hashing, atomic writes, output sets committed all or nothing,
and YAML / JSON / JSON Lines reading with errors that name the file, the place and the fix.

    >>> write_text_atomic("reports/x.md", "# hi\\n")          # temp file beside it, then rename
    >>> with OutputSet(inputs=[src]) as out:                  # several outputs: all or nothing
    ...     out.add("data/a.json", text_a); out.add("reports/a.md", text_b)
"""

from __future__ import annotations

import codecs
import difflib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from molting.errors import ConfigError, DatasetError, OutputError

_CHUNK = 1 << 20


# ---------------------------------------------------------------- hashing


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_json(obj: Any) -> str:
    """Hash of a JSON-serialisable object, independent of key order."""
    return sha256_text(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str))


# ---------------------------------------------------------------- writing


def same_path(a: str | Path, b: str | Path) -> bool:
    """True when `a` and `b` name the same file (also through symlinks or `..`), existing or not."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def temp_beside(path: Path) -> tuple[int, Path]:
    """(fd, path) of a new temporary file in `path`'s folder (created if missing), to be renamed
    over `path` once complete; one clear OutputError where the folder cannot be written."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as err:
        raise OutputError(
            f"{parent}: cannot write here ({err.strerror}); choose another output path."
        ) from None
    return fd, Path(tmp)


def check_writable_file(path: str | Path) -> None:
    """Refuse a path that is a directory, or whose parent is a file, before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory, expected a file path; choose a file name.")
    _check_parents(path, "output path")


def check_writable_dir(path: str | Path, what: str = "directory") -> None:
    """Refuse a directory path that is a file, lies under a file, or cannot be written, before any
    work."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file; choose a {what} path.")
    _check_parents(path, f"{what} path")


def _check_parents(path: Path, what: str) -> None:
    """The nearest existing parent of `path` must be a writable directory."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(
                    f"{path}: {parent} is a file, not a directory; choose another {what}."
                )
            if not os.access(parent, os.W_OK):
                raise OutputError(f"{parent}: not writable; choose another {what}.")
            break


def missing_dirs(path: str | Path) -> list[Path]:
    """`path` and those of its parents that do not exist yet, deepest first: what making `path`
    would create, and so what `remove_empty_dirs` may take away again after a failure."""
    path = Path(path)
    return [p for p in (path, *path.parents) if not p.exists()]


def remove_empty_dirs(dirs: Iterable[Path]) -> None:
    """Remove each directory (deepest first) that exists and is empty; never anything with files in
    it."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            pass


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    check_writable_file(path)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8, LF) to a temp file beside `path`, then rename it into place."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def json_text(obj: Any, indent: int | None = 2) -> str:
    return (
        json.dumps(obj, ensure_ascii=False, indent=indent, sort_keys=False, default=_json_default)
        + "\n"
    )


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    return write_text_atomic(path, json_text(obj, indent))


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class OutputSet:
    """Several output files written all or nothing.

    Every output must differ from every input and from every other output; files are staged as
    temp files beside their targets and renamed into place only by `commit()` (called on a clean
    exit from the `with` block). An error before that leaves every target as it was.
    """

    def __init__(self, inputs: Iterable[str | Path] = ()):
        self.inputs = [Path(p) for p in inputs]
        self.staged: list[tuple[Path, Path]] = []  # (temp, target)
        self.new_dirs: dict[
            Path, None
        ] = {}  # folders missing when an output was claimed: removed again on abort

    def claim(self, path: str | Path, what: str = "output") -> Path:
        """Check `path` can be written by this set (before any work): not an input, not taken."""
        path = Path(path)
        for src in self.inputs:
            if same_path(path, src):
                raise OutputError(
                    f"{path}: the {what} would overwrite the input {src}; choose another path."
                )
        for _, target in self.staged:
            if same_path(path, target):
                raise OutputError(
                    f"{path}: two outputs of this run would go to the same file; give each its own "
                    "path."
                )
        check_writable_file(path)
        self.new_dirs |= dict.fromkeys(missing_dirs(path.parent))
        return path

    def claim_all(self, paths: dict[str, str | Path]) -> None:
        """Check several outputs at once, before any work: also against each other."""
        seen: dict[Path, str] = {}
        for what, p in paths.items():
            self.claim(p, what)
            for other, other_what in seen.items():
                if same_path(p, other):
                    raise OutputError(
                        f"{p}: the {what} and the {other_what} would be the same file; "
                        "give each its own path."
                    )
            seen[Path(p)] = what

    def add(self, path: str | Path, content: str | bytes, what: str = "output") -> Path:
        target = self.claim(path, what)
        fd, tmp = temp_beside(target)
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.chmod(tmp, 0o644)
        self.staged.append((tmp, target))
        return target

    def add_file(self, path: str | Path, staged_file: Path, what: str = "output") -> Path:
        """Adopt a file already written beside `path` (e.g. by a streaming writer)."""
        target = self.claim(path, what)
        self.staged.append((Path(staged_file), target))
        return target

    def commit(self) -> list[Path]:
        for tmp, target in self.staged:
            os.replace(tmp, target)
        done = [t for _, t in self.staged]
        self.staged = []
        return done

    def abort(self) -> None:
        for tmp, _ in self.staged:
            tmp.unlink(missing_ok=True)
        self.staged = []
        remove_empty_dirs(sorted(self.new_dirs, key=lambda p: len(p.parts), reverse=True))

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type, *_: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


# ---------------------------------------------------------------- reading


def read_bytes(path: str | Path, what: str = "file") -> bytes:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: {what} not found. Check the path.")
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a {what}.")
    return path.read_bytes()


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def sniff_encoding(head: bytes) -> str:
    """The encoding a byte-order mark announces ('utf-8' without one): UTF-8, -16 and -32 are
    read."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    return "utf-8"


def decode_text(data: bytes, path: str | Path, error: type[Exception] = ConfigError) -> str:
    """Text of a file: UTF-8, or UTF-16/32 announced by a byte-order mark. Anything else is refused
    with the byte offset of the first undecodable byte."""
    encoding = sniff_encoding(data[:4])
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise _as(
            error,
            f"{path}: bad encoding at byte {err.start}: not valid "
            f"{encoding.upper().replace('-SIG', '')} ({err.reason}). Re-save the file as UTF-8.",
        ) from None


def _as(error: type[Exception], message: str) -> Exception:
    return DatasetError([message]) if error is DatasetError else error(message)


def is_text(s: str) -> bool:
    """False for a string holding a lone surrogate: JSON's "\\ud800" escape decodes to one, and no
    UTF-8 file (nor a hash of the text) can hold it."""
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def lone_surrogate(value: Any, at: str = "") -> str | None:
    """Where a string in `value` holds a lone surrogate, as ", 'meta', 'source': …" for the
    message."""
    if type(value) is str:
        if is_text(value):
            return None
        err = next(i for i, ch in enumerate(value) if "\ud800" <= ch <= "\udfff")
        return (
            f"{at}: lone surrogate {value[err]!r} at character {err}, not valid Unicode (a broken "
            "\\u escape); fix or remove it."
        )
    items = (
        value.items() if type(value) is dict else enumerate(value) if type(value) is list else ()
    )
    for key, v in items:
        found = (type(key) is str and lone_surrogate(key, at)) or lone_surrogate(
            v, f"{at}, {key!r}"
        )
        if found:
            return found
    return None


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object_pairs_hook: a key given twice in one object is an error, never silently
    collapsed."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


class DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


# only such an escape (JSON's \uD800, YAML's also \U0000D800) can decode to a lone surrogate
_SURROGATE_ESCAPE = re.compile(r"\\(?:u|U0000)[dD][89a-fA-F]")


def loads_strict(text: str, where: str, error: type[Exception] = ConfigError) -> Any:
    """json.loads with duplicate keys refused and the error's line/column in the message."""
    try:
        data = json.loads(text, object_pairs_hook=reject_duplicate_keys)
    except json.JSONDecodeError as err:
        raise _as(
            error, f"{where}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}."
        ) from None
    except DuplicateKey as err:
        raise _as(
            error, f"{where}: key {err.key!r} appears twice in one object; keep one."
        ) from None
    bad = lone_surrogate(data) if _SURROGATE_ESCAPE.search(text) else None
    if bad:
        raise _as(error, f"{where}{bad}")
    return data


def read_json(
    path: str | Path, what: str = "JSON file", error: type[Exception] = ConfigError
) -> Any:
    path = Path(path)
    return loads_strict(decode_text(read_bytes(path, what), path, error), str(path), error)


def read_jsonl(
    path: str | Path, what: str = "JSON Lines file", error: type[Exception] = ConfigError
) -> list[dict]:
    """Objects of a JSON Lines file; a line that is not a JSON object names its line number."""
    path = Path(path)
    rows = []
    for n, line in enumerate(
        decode_text(read_bytes(path, what), path, error).splitlines(), start=1
    ):
        if not line.strip():
            continue
        row = loads_strict(line, f"{path}: line {n}", error)
        if not isinstance(row, dict):
            raise _as(error, f"{path}: line {n}: expected a JSON object, got {type(row).__name__}.")
        rows.append(row)
    return rows


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, except that a key given twice in one mapping is an error (PyYAML
    keeps the last value silently, as json.loads does)."""


class DuplicateYAMLKey(yaml.YAMLError):
    def __init__(self, key: Any, first: int, again: int):
        super().__init__(f"key {key!r} appears twice (lines {first} and {again}); keep one.")


def _strict_mapping(
    loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if (
            key_node.tag == "tag:yaml.org,2002:merge"
        ):  # `<<: *base` then an explicit key: YAML's override
            continue
        key, line = loader.construct_object(key_node, deep=True), key_node.start_mark.line + 1
        try:
            if key in seen:
                raise DuplicateYAMLKey(key, seen[key], line)
            seen[key] = line
        except TypeError:  # an unhashable key: construct_mapping names it
            continue
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _strict_mapping)


def read_yaml_mapping(path: str | Path, what: str = "YAML file") -> dict[str, Any]:
    """A YAML file that must hold a mapping (yaml.safe_load, duplicate keys refused; an empty file
    is {}). The one YAML reader: encodings as `decode_text` reads them."""
    path = Path(path)
    text = decode_text(read_bytes(path, what), path)
    try:
        data = yaml.load(
            text, Loader=_StrictLoader
        )  # a SafeLoader subclass: safe_load's constructors
    except DuplicateYAMLKey as err:
        raise ConfigError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(err).split())}") from None
    bad = lone_surrogate(data) if _SURROGATE_ESCAPE.search(text) else None
    if bad:
        raise ConfigError(f"{path}{bad}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of keys to values, got {type(data).__name__}."
        )
    return dict(data)


def check_keys(raw: dict[str, Any], valid: Iterable[str], where: str) -> None:
    """Unknown keys are an error naming the key and the closest valid one."""
    valid = list(valid)
    for key in raw:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
            hint = f" Did you mean '{close[0]}'?" if close else f" Valid keys: {', '.join(valid)}."
            raise ConfigError(f"{where}: unknown key '{key}'.{hint}")
