"""Write the seed corpus of every fuzz target (``tests/fuzz/corpus/<target>/``): valid inputs the
fuzzer mutates from. Run once when a format changes: ``python -m tests.fuzz.make_corpus``."""

from __future__ import annotations

import base64
import io
import json
import pickle
import struct
import tempfile
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"


def seeds() -> dict[str, list[bytes]]:
    import gguf
    import numpy as np
    import torch

    from modelyard.xet.xorb import serialize_xorb
    from tests.support.xet import payload

    header = json.dumps({"__metadata__": {"format": "pt"},
                         "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                         "b": {"dtype": "BF16", "shape": [2], "data_offsets": [16, 20]}}).encode()
    safetensors = struct.pack("<Q", len(header)) + header + bytes(20)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "m.gguf")
        writer = gguf.GGUFWriter(path, "llama")
        writer.add_context_length(128)
        writer.add_token_list(["a", "b"])
        writer.add_tensor("w", np.zeros((2, 2), dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        gguf_bytes = Path(path).read_bytes()
    card = (b"---\nlicense: apache-2.0\ntags:\n- a\nmodel-index:\n- name: m\n  results:\n  - task:\n      type: "
            b"text-classification\n    dataset:\n      name: d\n      type: d\n    metrics:\n    - type: acc\n"
            b"      value: 0.9\n---\n# Title\n")
    xorb, _index = serialize_xorb([b"hello world " * 20, b"second chunk"])
    commit = b"\n".join(json.dumps(line).encode() for line in [
        {"key": "header", "value": {"summary": "s", "description": "d", "parentCommit": "a" * 40}},
        {"key": "file", "value": {"path": "a.txt", "encoding": "base64", "content": base64.b64encode(b"x").decode()}},
        {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": "0" * 64, "size": 3}},
        {"key": "deletedFile", "value": {"path": "old.txt"}},
        {"key": "deletedFolder", "value": {"path": "dir/"}},
    ])
    state = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, state)
    legacy = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    array = io.BytesIO()
    np.save(array, np.array([1, "a"], dtype=object), allow_pickle=True)
    return {
        "safetensors": [safetensors], "gguf": [gguf_bytes], "card": [card], "xorb": [xorb],
        "shard": [payload(b"shard seed " * 30).shard()], "commit": [commit],
        "scanner": [pickle.dumps({"a": [1, 2]}, protocol=2), pickle.dumps({"a": 1.0}, protocol=4),
                    state.getvalue(), legacy.getvalue(), array.getvalue()],
    }


def main() -> None:
    for target, items in seeds().items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(items):
            (folder / f"seed-{i}").write_bytes(data)


if __name__ == "__main__":
    main()
