"""What loading a file would run: the scan of one file's bytes (``docs/security.md`` § Scanning).

Maintained scanners do the reading: picklescan (the classification the Hub shows: every global
a pickle imports is *innocuous*, *suspicious* or *dangerous*) for pickles, PyTorch zip and legacy
archives, numpy arrays (object arrays carry a pickle) and zip files; modelscan for Keras files
whose layers carry code (a ``Lambda`` layer runs its function when the model is built). The
safetensors and GGUF headers go through the hub's own parsers, which refuse an inconsistent
header (offsets that overlap or leave gaps, shapes that do not fit the bytes, data past the end).

This module runs in a sandboxed child process (``metadata/scan_child.py``, started by
``services/scans.py``): the bytes it parses come from anyone, so a scan that crashes, hangs or
eats memory costs that child, never the server. The stream it is given reads ranges on demand,
so a PyTorch checkpoint costs its pickle and zip directory, not its tensor data.
"""

from __future__ import annotations

import io
import logging
import posixpath
import zipfile
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import IO, Any

#: Bump when the hub's own rules (what is scanned, how a result is graded) change: every file
#: scanned under other rules is scanned again by ``modelyard rescan``.
RULES_VERSION = 1

PICKLE_EXTENSIONS = frozenset({".pkl", ".pickle", ".joblib", ".dill", ".dat", ".data", ".bin", ".pt", ".pth", ".ckpt"})
TORCH_EXTENSIONS = frozenset({".bin", ".pt", ".pth", ".ckpt"})
NUMPY_EXTENSIONS = frozenset({".npy", ".npz"})
KERAS_H5_EXTENSIONS = frozenset({".h5", ".hdf5"})
#: Extensions that decide how a file is read; any other name is scanned by its first bytes only.
KNOWN_EXTENSIONS = (
    PICKLE_EXTENSIONS | NUMPY_EXTENSIONS | KERAS_H5_EXTENSIONS | {".keras", ".safetensors", ".gguf", ".zip"}
)
HEAD_BYTES = 16
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
#: Zip archives inside zip archives are opened this deep.
MAX_ZIP_DEPTH = 3

STATUS_ORDER = {"safe": 0, "caution": 1, "unsafe": 2}


def rules() -> str:
    """The scanners and rules a result was obtained with (stored beside it)."""
    return f"modelyard-{RULES_VERSION}+picklescan-{version('picklescan')}+modelscan-{version('modelscan')}"


def extension(path: str) -> str:
    """The file's extension if it decides how the file is read, else ''."""
    ext = posixpath.splitext(path)[1].lower()
    return ext if ext in KNOWN_EXTENSIONS else ""


def kind(path: str, head: bytes) -> str | None:
    """Which scan a file needs, from its name and its first bytes; None: loading it runs nothing.

    The bytes win over the name where they are unambiguous (a pickle named ``.safetensors`` is
    scanned as the pickle it is); a pickle of protocol 0 or 1 has no magic, so only its name
    (a pickle or PyTorch extension) gets it scanned.
    """
    ext = extension(path)
    if head.startswith(ZIP_MAGICS):
        return "keras" if ext == ".keras" else "zip"
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if head.startswith(HDF5_MAGIC):
        return "keras_h5"
    if head.startswith(b"GGUF"):
        return "gguf"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if ext == ".safetensors":
        return "safetensors"
    if ext == ".gguf":
        return "gguf"
    if ext in NUMPY_EXTENSIONS:
        return "numpy"
    if ext in PICKLE_EXTENSIONS:
        return "pickle"
    if ext in KERAS_H5_EXTENSIONS:
        return "keras_h5"
    if ext == ".keras":
        return "keras"
    return None


@dataclass
class Report:
    """One file's scan, in the terms the Hub's clients read (``securityFileStatus``)."""

    status: str = "safe"  # safe | caution | unsafe
    imports: list[dict[str, str]] = field(default_factory=list)  # {module, name, safety}
    messages: list[str] = field(default_factory=list)
    code_layers: list[str] = field(default_factory=list)

    def grade(self, status: str, message: str | None = None) -> None:
        if STATUS_ORDER[status] > STATUS_ORDER[self.status]:
            self.status = status
        if message and message not in self.messages:
            self.messages.append(message)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "imports": self.imports, "messages": self.messages,
                "codeLayers": self.code_layers}


def scan(stream: IO[bytes], size: int, scan_kind: str, path: str) -> Report:
    """Scan one file (``stream`` seekable, ``size`` bytes) as ``scan_kind`` (see ``kind``)."""
    # The scanners log what they find at WARNING; the report carries it, the child's log need not.
    logging.getLogger("picklescan").setLevel(logging.CRITICAL)
    logging.getLogger("modelscan").setLevel(logging.CRITICAL)
    report = Report()
    ext = extension(path)
    if scan_kind in ("pickle", "numpy"):
        _picklescan(stream, path, ext or (".npy" if scan_kind == "numpy" else ".pkl"), report)
    elif scan_kind == "zip":
        _zip(stream, path, ext, report, depth=0)
    elif scan_kind in ("keras", "keras_h5"):
        _keras(stream, path, scan_kind, report)
    elif scan_kind == "safetensors":
        _header(stream, size, "safetensors", report)
    elif scan_kind == "gguf":
        _header(stream, size, "gguf", report)
    else:
        raise ValueError(f"unknown scan kind {scan_kind!r}")
    return report


def _picklescan(stream: IO[bytes], path: str, ext: str, report: Report) -> None:
    from picklescan.scanner import SafetyLevel, scan_bytes

    result = scan_bytes(stream, path, ext)
    seen = {(i["module"], i["name"]) for i in report.imports}
    for g in sorted(result.globals, key=lambda g: (g.module, g.name)):
        if (g.module, g.name) in seen:
            continue
        seen.add((g.module, g.name))
        report.imports.append({"module": g.module, "name": g.name, "safety": g.safety.value})
        if g.safety is SafetyLevel.Dangerous:
            report.grade("unsafe", "imports that run code when the file is loaded")
        elif g.safety is SafetyLevel.Suspicious:
            report.grade("caution", "imports that are not known to be safe")
    if result.scan_err:
        report.grade("caution", "the pickle stream is malformed past the imports listed")


def _zip(stream: IO[bytes], path: str, ext: str, report: Report, depth: int) -> None:
    """A zip archive: picklescan reads its pickles and arrays; zips inside it are opened too."""
    _picklescan(stream, path, ext if ext in TORCH_EXTENSIONS else ".zip", report)
    stream.seek(0)
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile as exc:
        report.grade("caution", f"not a readable zip archive: {exc}")
        return
    with archive:
        for info in archive.infolist():
            if info.is_dir() or info.file_size < 4:
                continue
            with archive.open(info) as member:
                head = member.read(4)
            if not head.startswith(ZIP_MAGICS):
                continue
            if depth + 1 >= MAX_ZIP_DEPTH:
                report.grade("caution", f"zip archives nested more than {MAX_ZIP_DEPTH} deep were not opened")
                continue
            with archive.open(info) as member:
                nested = member if member.seekable() else io.BytesIO(member.read())
                _zip(nested, f"{path}:{info.filename}", extension(info.filename), report, depth + 1)


def _keras(stream: IO[bytes], path: str, scan_kind: str, report: Report) -> None:
    from modelscan.model import Model
    from modelscan.scanners.h5.scan import H5LambdaDetectScan
    from modelscan.scanners.keras.scan import KerasLambdaDetectScan
    from modelscan.settings import DEFAULT_SETTINGS, SupportedModelFormats

    model = Model(path, stream)
    if scan_kind == "keras_h5":
        model.set_context("formats", [SupportedModelFormats.KERAS_H5])
        scanner: Any = H5LambdaDetectScan(DEFAULT_SETTINGS)
    else:
        model.set_context("formats", [SupportedModelFormats.KERAS])

        class KerasConfigScan(KerasLambdaDetectScan):  # type: ignore[misc]
            """modelscan asks for TensorFlow before reading a ``.keras`` file, though it reads
            only the archive's ``config.json`` (TensorFlow would only name the safe raw ops)."""

            def handle_binary_dependencies(self, settings: dict[str, Any] | None = None) -> str | None:
                return None

        scanner = KerasConfigScan(DEFAULT_SETTINGS)
    try:
        results = scanner.scan(model)
    except OSError as exc:  # h5py: not a readable HDF5 file
        report.grade("caution", f"not a readable Keras file: {exc}")
        return
    if results is None:
        return
    for issue in results.issues:
        details = issue.details
        operator = str(getattr(details, "operator", "Lambda"))
        report.code_layers.append(operator)
        report.grade("unsafe", f"a Keras {operator} layer: its code runs when the model is loaded")
    for error in results.errors:
        report.grade("caution", f"the Keras model config could not be read: {error}")


def _header(stream: IO[bytes], size: int, what: str, report: Report) -> None:
    from modelyard.metadata import gguf, safetensors
    from modelyard.metadata.reader import MetadataError

    def read(offset: int, length: int) -> bytes:
        stream.seek(offset)
        return stream.read(length)

    try:
        if what == "safetensors":
            safetensors.parse_header(read, size)
        else:
            gguf.parse_header(read, size)
    except MetadataError as exc:
        report.grade("caution", f"inconsistent {what} header: {exc.message}")
    except (RecursionError, ValueError) as exc:
        report.grade("caution", f"unreadable {what} header: {exc}")
