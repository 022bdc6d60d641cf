"""A corpus of malicious and benign model files, built here (nothing is downloaded).

Each malicious file is what a real attacker's checkpoint looks like: made by the real writers
(``pickle``, ``torch.save``, ``numpy.save``, Keras ``Model.save``) from an object whose
``__reduce__`` names a dangerous callable, or a Keras model with a ``Lambda`` layer. Nothing in
it is ever loaded by the tests. ``MALICIOUS`` maps a file to the dangerous imports (module, name)
the scan must report; ``BENIGN`` lists the files that must be reported safe.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any


class Reduce:
    """An object that unpickles into ``func(*args)``: the shape of every pickle exploit."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def _torch_bytes(obj: Any, legacy: bool = False) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def _keras(folder: Path, with_lambda: bool) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    inputs = keras.Input((4,))
    x = keras.layers.Lambda(lambda t: t * 2)(inputs) if with_lambda else inputs
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    stem = "lambda" if with_lambda else "dense"
    with warnings.catch_warnings():  # Keras's torch backend trips numpy 2's copy-keyword warning
        warnings.simplefilter("ignore", DeprecationWarning)
        model.save(folder / f"keras/{stem}.keras")
        model.save(folder / f"keras/{stem}.h5")


MALICIOUS: dict[str, set[tuple[str, str]]] = {
    "pickles/os_system.pkl": {("posix", "system")},
    "pickles/eval.pickle": {("__builtin__", "eval")},  # protocol 2 names builtins as Python 2 did
    "pickles/builtins_exec.pkl": {("builtins", "exec")},
    "pickles/exec_protocol0.pkl": {("__builtin__", "exec")},  # no magic bytes: found by its name
    "pickles/subprocess.pkl": {("subprocess", "Popen")},
    "pickles/runpy.joblib": {("runpy", "_run_code")},
    "torch/subprocess_model.bin": {("commands", "check_output")},  # torch.save pickles with protocol 2
    "torch/exec_legacy.pt": {("__builtin__", "exec")},
    "torch/nested.zip": {("posix", "system")},
    "arrays/objects.npy": {("posix", "system")},
    "keras/lambda.keras": set(),
    "keras/lambda.h5": set(),
}
BENIGN = [
    "torch/state_dict.bin",
    "torch/state_dict_legacy.pt",
    "arrays/floats.npy",
    "arrays/objects_plain.npy",
    "keras/dense.keras",
    "keras/dense.h5",
    "notes.txt",
]


def build(folder: Path) -> None:
    """Write the whole corpus under ``folder``."""
    import os as os_module
    import runpy
    import subprocess

    import numpy as np
    import torch

    for sub in ("pickles", "torch", "arrays", "keras"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "pickles/os_system.pkl").write_bytes(pickle.dumps(Reduce(os_module.system, "echo pwned"), protocol=4))
    (folder / "pickles/eval.pickle").write_bytes(pickle.dumps(Reduce(eval, "1+1"), protocol=2))
    (folder / "pickles/builtins_exec.pkl").write_bytes(pickle.dumps(Reduce(exec, "print(1)"), protocol=4))
    (folder / "pickles/subprocess.pkl").write_bytes(pickle.dumps(Reduce(subprocess.Popen, ["id"]), protocol=4))
    (folder / "pickles/exec_protocol0.pkl").write_bytes(pickle.dumps(Reduce(exec, "print(1)"), protocol=0))
    (folder / "pickles/runpy.joblib").write_bytes(
        pickle.dumps(Reduce(runpy._run_code, "print(1)", {}), protocol=3)  # type: ignore[attr-defined]
    )
    weights = {"w": torch.zeros(4, 4), "b": torch.ones(4)}
    (folder / "torch/subprocess_model.bin").write_bytes(
        _torch_bytes({**weights, "x": Reduce(subprocess.check_output, ["id"])})
    )
    (folder / "torch/exec_legacy.pt").write_bytes(_torch_bytes({**weights, "x": Reduce(exec, "print(1)")}, legacy=True))
    inner = _torch_bytes({**weights, "x": Reduce(os_module.system, "id")})
    nested = io.BytesIO()
    with zipfile.ZipFile(nested, "w") as archive:  # a checkpoint shipped inside an archive
        archive.writestr("README.txt", "weights inside")
        archive.writestr("checkpoints/epoch1.pt", inner)
    (folder / "torch/nested.zip").write_bytes(nested.getvalue())
    hostile = np.empty(2, dtype=object)
    hostile[0], hostile[1] = 1, Reduce(os_module.system, "id")
    np.save(folder / "arrays/objects.npy", hostile, allow_pickle=True)
    _keras(folder, with_lambda=True)

    (folder / "torch/state_dict.bin").write_bytes(_torch_bytes(torch.nn.Linear(8, 4).state_dict()))
    (folder / "torch/state_dict_legacy.pt").write_bytes(_torch_bytes(weights, legacy=True))
    np.save(folder / "arrays/floats.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    plain = np.empty(2, dtype=object)
    plain[0], plain[1] = "a", 2
    np.save(folder / "arrays/objects_plain.npy", plain, allow_pickle=True)
    _keras(folder, with_lambda=False)
    (folder / "notes.txt").write_text("benign notes\n")
