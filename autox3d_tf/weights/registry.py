"""The weights registry: which pretrained weights exist, where they come from, and the local cache.

The packaged ``manifest.json`` (a copy lives in the repository's top-level ``weights/`` folder with
a README on provenance) lists, for each zoo model and dataset, the source checkpoint URL, file
name, sha256 (null where it could not be computed), key layout, number of classes, input spec and
provenance. A model with an empty entry has no pretrained weights.

``weights="kinetics400"`` resolves through :func:`get_weights_file`:

1. the source checkpoint is fetched with ``keras.utils.get_file`` from the official URL, or from
   ``$AUTOX3D_WEIGHTS_MIRROR/<file_name>`` when that variable is set (a base URL such as
   ``https://mirror.example/x3d`` or ``file:///srv/weights``, or a plain local folder);
2. its sha256 is checked when the manifest knows it (a mismatch is an error and leaves nothing in
   the cache); downloads go to a temporary name and are renamed into place only once verified;
3. it is converted once into ``$AUTOX3D_HOME/weights/<keras_file>`` (default ``AUTOX3D_HOME`` is
   ``~/.keras/autox3d``), again through a temporary file and an atomic rename.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import pathlib
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from autox3d_tf.arch.catalog import canonical_name

__all__ = [
    "WeightsEntry",
    "NoPretrainedWeightsError",
    "WeightsHashError",
    "MANIFEST_PATH",
    "load_manifest",
    "list_weights",
    "available_weights",
    "known_datasets",
    "get_weights_entry",
    "register_weights",
    "cache_dir",
    "source_url",
    "sha256_file",
    "fetch_checkpoint",
    "get_weights_file",
]

logger = logging.getLogger("autox3d_tf.weights")

MANIFEST_PATH = pathlib.Path(__file__).with_name("manifest.json")
HOME_ENV = "AUTOX3D_HOME"
MIRROR_ENV = "AUTOX3D_WEIGHTS_MIRROR"


class NoPretrainedWeightsError(ValueError):
    """The requested model has no weights for the requested dataset."""


class WeightsHashError(ValueError):
    """A downloaded file's sha256 differs from the manifest's."""


@dataclass(frozen=True)
class WeightsEntry:
    """One pretrained checkpoint of one model.

    Attributes:
        model: zoo model name, e.g. "X3D_S".
        dataset: dataset name, e.g. "kinetics400" (the ``weights=`` value).
        url: official URL of the source checkpoint.
        file_name: source file name (also its name under a mirror).
        sha256: hex digest of the source file, or None when unknown.
        layout: key layout of the source ("pytorchvideo" or "pyslowfast").
        keras_file: file name of the converted ``.weights.h5`` in the cache.
        num_classes: classes of the pretrained classifier.
        class_names: packaged resource with the class names (one per line), or None.
        input: input spec (frames, sampling rate, crops, normalisation).
        metrics: published accuracy, with its protocol.
        provenance: how the file was made and converted.
        license: license note.
        alternates: other sources of the same weights (informational).
    """

    model: str
    dataset: str
    url: str
    file_name: str
    sha256: str | None
    layout: str
    keras_file: str
    num_classes: int
    class_names: str | None = None
    input: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    provenance: str = ""
    license: str = ""
    alternates: tuple = ()

    def to_dict(self) -> dict[str, Any]:
        """The entry as a JSON-compatible dict."""
        out = dict(self.__dict__)
        out["alternates"] = [dict(a) for a in self.alternates]
        return out


_MANIFEST: dict | None = None
_EXTRA: dict[str, dict[str, WeightsEntry]] = {}


def load_manifest() -> dict:
    """The packaged manifest (parsed once; a deep copy is returned)."""
    global _MANIFEST
    if _MANIFEST is None:
        try:
            with open(MANIFEST_PATH, encoding="utf-8") as fh:
                _MANIFEST = json.load(fh)
        except FileNotFoundError:
            raise RuntimeError(
                f"The weights manifest {MANIFEST_PATH} is missing from the installed package "
                "(package data not installed?)."
            ) from None
    return copy.deepcopy(_MANIFEST)


def _entry_from_json(model: str, dataset: str, data: dict) -> WeightsEntry:
    return WeightsEntry(
        model=model,
        dataset=dataset,
        url=data["url"],
        file_name=data["file_name"],
        sha256=(data.get("sha256") or None),
        layout=data.get("layout", "pytorchvideo"),
        keras_file=data["keras_file"],
        num_classes=int(data["num_classes"]),
        class_names=data.get("class_names"),
        input=dict(data.get("input", {})),
        metrics=dict(data.get("metrics", {})),
        provenance=data.get("provenance", ""),
        license=data.get("license", ""),
        alternates=tuple(data.get("alternates", ())),
    )


def _table() -> dict[str, dict[str, WeightsEntry]]:
    table: dict[str, dict[str, WeightsEntry]] = {}
    for model, datasets in load_manifest()["models"].items():
        table[model] = {ds: _entry_from_json(model, ds, data) for ds, data in (datasets or {}).items()}
    for model, datasets in _EXTRA.items():
        table.setdefault(model, {}).update(datasets)
    return table


def _canonical(model: str) -> str:
    try:
        return canonical_name(model)
    except ValueError:
        table = _table()
        lowered = {k.lower().replace("-", "_"): k for k in table}
        return lowered.get(str(model).lower().replace("-", "_"), model)


def register_weights(entry: WeightsEntry) -> None:
    """Adds (or replaces) an entry at run time, e.g. for a private mirror or fine-tuned weights."""
    if not isinstance(entry, WeightsEntry):
        raise TypeError(f"`entry` must be a WeightsEntry, got {type(entry).__name__}.")
    _EXTRA.setdefault(entry.model, {})[entry.dataset] = entry


def unregister_weights(model: str, dataset: str) -> None:
    """Removes an entry added with :func:`register_weights` (no-op if absent)."""
    _EXTRA.get(model, {}).pop(dataset, None)


def list_weights(model: str | None = None) -> list[WeightsEntry]:
    """All registered weights, or those of one model."""
    table = _table()
    if model is not None:
        return list(table.get(_canonical(model), {}).values())
    return [e for datasets in table.values() for e in datasets.values()]


def available_weights(model: str) -> list[str]:
    """Dataset names with pretrained weights for ``model`` (empty if none)."""
    return [e.dataset for e in list_weights(model)]


def known_datasets() -> list[str]:
    """Every dataset name that some model has weights for."""
    return sorted({e.dataset for e in list_weights()})


def _what_exists() -> str:
    by_model = {}
    for e in list_weights():
        by_model.setdefault(e.model, []).append(e.dataset)
    if not by_model:
        return "no model has pretrained weights"
    return "; ".join(f"{m}: {', '.join(ds)}" for m, ds in by_model.items())


def get_weights_entry(model: str, dataset: str) -> WeightsEntry:
    """The entry for (model, dataset).

    Raises:
        NoPretrainedWeightsError: the model has no such weights; the message lists what exists.
    """
    name = _canonical(model)
    entries = _table().get(name, {})
    if dataset in entries:
        return entries[dataset]
    own = ", ".join(repr(d) for d in entries) or "none"
    raise NoPretrainedWeightsError(
        f"{name} has no pretrained weights for {dataset!r} (its pretrained weights: {own}). "
        f"Pretrained weights exist for: {_what_exists()}. Use weights=None to train from scratch, or pass a "
        "path to a .weights.h5 file or a PyTorch checkpoint."
    )


def cache_dir() -> pathlib.Path:
    """The cache root: ``$AUTOX3D_HOME`` or ``~/.keras/autox3d``."""
    root = os.environ.get(HOME_ENV) or os.path.join(os.path.expanduser("~"), ".keras", "autox3d")
    return pathlib.Path(root)


def source_url(entry: WeightsEntry) -> str:
    """The URL the source checkpoint is fetched from (the mirror replaces the official base)."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return entry.url
    scheme = urllib.parse.urlparse(mirror).scheme
    if len(scheme) <= 1:  # a plain path (or a Windows drive letter)
        base = pathlib.Path(mirror).expanduser().resolve().as_uri()
    else:
        base = mirror
    return base.rstrip("/") + "/" + urllib.parse.quote(entry.file_name)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def fetch_checkpoint(entry: WeightsEntry) -> pathlib.Path:
    """Downloads (or reuses) the source checkpoint in ``cache_dir()/checkpoints``, verified.

    Raises:
        WeightsHashError: the sha256 differs from the manifest's; no file is left in the cache.
        RuntimeError: the download failed (the message names the URL and the mirror variable).
    """
    import keras

    folder = cache_dir() / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / entry.file_name
    if final.exists():
        if entry.sha256 is None or sha256_file(final) == entry.sha256.lower():
            return final
        logger.warning("Cached %s does not match its sha256; downloading it again.", final)
        _remove(str(final))

    url = source_url(entry)
    fd, tmp = tempfile.mkstemp(prefix=f".{entry.file_name}.", suffix=".part", dir=folder)
    os.close(fd)
    _remove(tmp)
    try:
        try:
            # Downloads to the temporary name (Keras may fall back to another writable folder).
            tmp = keras.utils.get_file(
                fname=os.path.basename(tmp), origin=url, cache_dir=str(folder.parent), cache_subdir=folder.name
            )
        except Exception as err:
            raise RuntimeError(
                f"Could not download the {entry.model} {entry.dataset} checkpoint from {url} ({err}). "
                f"Set {MIRROR_ENV} to a base URL or local folder that holds {entry.file_name} to use a mirror "
                "or an offline copy."
            ) from err
        if not os.path.exists(tmp):
            raise RuntimeError(f"Downloading {url} produced no file.")
        digest = sha256_file(tmp)
        if entry.sha256 is not None and digest != entry.sha256.lower():
            raise WeightsHashError(
                f"sha256 mismatch for {entry.file_name} from {url}: expected {entry.sha256}, got {digest}. "
                "The file was discarded; nothing was cached."
            )
        if entry.sha256 is None:
            logger.warning(
                "No sha256 is registered for %s; downloaded file from %s has sha256 %s (not verified).",
                entry.file_name,
                url,
                digest,
            )
        os.replace(tmp, final)
    finally:
        _remove(tmp)
    return final


def get_weights_file(model: str, dataset: str) -> pathlib.Path:
    """Path of the converted Keras ``.weights.h5`` for (model, dataset), fetching and converting once."""
    from autox3d_tf.weights.convert import convert_checkpoint

    entry = get_weights_entry(model, dataset)
    folder = cache_dir() / "weights"
    target = folder / entry.keras_file
    if target.exists():
        return target
    checkpoint = fetch_checkpoint(entry)
    logger.info("Converting %s (%s layout) to %s", checkpoint, entry.layout, target)
    info = convert_checkpoint(checkpoint, target, entry.model)
    if info["classes"] != entry.num_classes:
        _remove(str(target))
        raise ValueError(
            f"{checkpoint} has {info['classes']} classes but the registry says {entry.num_classes}; "
            "the converted file was discarded."
        )
    return target
