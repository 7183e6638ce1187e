"""Read back what an offline W&B run wrote to disk, without any W&B server.

An offline run keeps its history in `run-<id>.wandb`: a LevelDB-style log of protobuf
records (7-byte file header, 32 KiB blocks, each record chunk = crc32, length, type).
Media (images, tables) are plain files under `files/media/`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
FILE_HEADER = 7  # b":W&B" + magic + version
CHUNK_HEADER = 7  # crc32 (4) + length (2) + type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def raw_records(path: Path) -> Iterator[bytes]:
    """The serialized protobuf records of a .wandb file, chunks reassembled."""
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    position, pending = FILE_HEADER, b""
    while position + CHUNK_HEADER <= len(data):
        room = BLOCK - position % BLOCK
        if room < CHUNK_HEADER:  # the writer pads a block's tail with zeros
            position += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position : position + CHUNK_HEADER])
        if kind == 0:
            position += room
            continue
        chunk = data[position + CHUNK_HEADER : position + CHUNK_HEADER + length]
        position += CHUNK_HEADER + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk


def history(run_dir: Path) -> list[dict]:
    """Every `log()` row of the run, values decoded from JSON.

    W&B stores a logged media object (an image, a table) as one item per field, each with a
    `nested_key` such as ["val/confusion_matrix", "filenames"]; they are put back together here,
    so row["val/confusion_matrix"] is the object's dict again.
    """
    [run_file] = run_dir.glob("run-*.wandb")
    rows = []
    for raw in raw_records(run_file):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") != "history":
            continue
        row: dict = {}
        for item in record.history.item:
            value = json.loads(item.value_json)
            if item.key:
                row[item.key] = value
                continue
            *parents, leaf = item.nested_key
            target = row
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = value
        rows.append(row)
    return rows


def media_file(run_dir: Path, reference: dict) -> Path:
    """The file a history value points to: a table's "path" or an image list's first "filenames"."""
    relative = reference["path"] if "path" in reference else reference["filenames"][0]
    return run_dir / "files" / relative
