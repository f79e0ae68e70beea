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
   ``~/.keras/autox3d``), again through a temporary file and an atomic rename; the download enters
   the cache only after that conversion succeeded (right class count, every tensor finite), so a bad
   file never stays there;
4. with no sha256 in the manifest, the first good download's is recorded in
   ``$AUTOX3D_HOME/known_hashes.json`` and a later download that differs is refused (set
   ``AUTOX3D_ACCEPT_CHANGED_WEIGHTS=1`` to accept it).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import pathlib
import sys
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
    "known_hashes",
]

logger = logging.getLogger("autox3d_tf.weights")

MANIFEST_PATH = pathlib.Path(__file__).with_name("manifest.json")
HOME_ENV = "AUTOX3D_HOME"
MIRROR_ENV = "AUTOX3D_WEIGHTS_MIRROR"
ACCEPT_CHANGED_ENV = "AUTOX3D_ACCEPT_CHANGED_WEIGHTS"
KNOWN_HASHES_FILE = "known_hashes.json"


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


def _known_hashes_path() -> pathlib.Path:
    return cache_dir() / KNOWN_HASHES_FILE


def known_hashes() -> dict[str, str]:
    """``{file_name: sha256}`` of the first good download of each checkpoint (read and converted),
    recorded beside the cache in ``known_hashes.json``; a later download must match it."""
    try:
        with open(_known_hashes_path(), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return {str(k): str(v).lower() for k, v in data.items()} if isinstance(data, dict) else {}


def _record_hash(file_name: str, digest: str) -> None:
    hashes = known_hashes()
    if hashes.get(file_name) == digest:
        return
    hashes[file_name] = digest
    path = _known_hashes_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".known_hashes.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(hashes, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _expected_hash(entry: WeightsEntry) -> tuple[str | None, str]:
    """``(sha256, where it comes from)``: the manifest's, else the recorded first good download's."""
    if entry.sha256:
        return entry.sha256.lower(), "the manifest"
    recorded = known_hashes().get(entry.file_name)
    return recorded, f"the first good download recorded in {_known_hashes_path()}"


def _accept_changed(accept_changed: bool | None) -> bool:
    if accept_changed is not None:
        return bool(accept_changed)
    return os.environ.get(ACCEPT_CHANGED_ENV, "").strip().lower() in ("1", "true", "yes")


def _download(entry: WeightsEntry, folder: pathlib.Path, accept_changed: bool | None = None) -> tuple[str, str]:
    """Downloads the source checkpoint to a temporary name in ``folder``; returns ``(path, sha256)``.

    The caller moves it into place (or removes it). Raises WeightsHashError when it differs from
    the manifest's or the recorded sha256 (unless ``accept_changed`` for a recorded one)."""
    import keras

    url = source_url(entry)
    _remove_stale_parts(folder)
    fd, tmp = tempfile.mkstemp(prefix=f".{entry.file_name}.{os.getpid()}.", suffix=".part", dir=folder)
    os.close(fd)
    _remove(tmp)
    try:
        try:
            # Keras' progress bar is not a result: it goes to stderr, so `--json` output stays JSON.
            with contextlib.redirect_stdout(sys.stderr):
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
        expected, where = _expected_hash(entry)
        if expected is not None and digest != expected:
            if entry.sha256 is None and _accept_changed(accept_changed):
                logger.warning("%s from %s differs from %s; accepted (%s).", entry.file_name, url, where,
                               ACCEPT_CHANGED_ENV)
            else:
                hint = ("" if entry.sha256 else
                        f" If the source changed on purpose, set {ACCEPT_CHANGED_ENV}=1 (or remove "
                        f"{entry.file_name!r} from {_known_hashes_path()}) to accept the new file.")
                raise WeightsHashError(
                    f"sha256 mismatch for {entry.file_name} from {url}: expected {expected} ({where}), got "
                    f"{digest}. The file was discarded; nothing was cached.{hint}"
                )
        if expected is None:
            logger.warning(
                "No sha256 is registered for %s; downloaded file from %s has sha256 %s (not verified).",
                entry.file_name,
                url,
                digest,
            )
        return tmp, digest
    except BaseException:
        _remove(tmp)
        raise


def _remove_stale_parts(folder: pathlib.Path) -> None:
    """Removes the ``.part`` downloads of processes that no longer run."""
    for part in folder.glob(".*.part"):
        pid = part.name.rsplit(".", 3)[-3] if part.name.count(".") >= 3 else ""
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
                continue
            except ProcessLookupError:
                pass
            except OSError:
                continue
            _remove(str(part))


def _cached_checkpoint(entry: WeightsEntry, final: pathlib.Path) -> bool:
    """True when ``final`` exists and matches the expected sha256 (a mismatch removes it)."""
    if not final.exists():
        return False
    expected, _ = _expected_hash(entry)
    if expected is None or sha256_file(final) == expected:
        return True
    logger.warning("Cached %s does not match its sha256; downloading it again.", final)
    _remove(str(final))
    return False


def fetch_checkpoint(entry: WeightsEntry, accept_changed: bool | None = None) -> pathlib.Path:
    """Downloads (or reuses) the source checkpoint in ``cache_dir()/checkpoints``, verified.

    Raises:
        WeightsHashError: the sha256 differs from the manifest's (or the recorded first good
            download's); no file is left in the cache.
        RuntimeError: the download failed (the message names the URL and the mirror variable).
    """
    folder = cache_dir() / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / entry.file_name
    if _cached_checkpoint(entry, final):
        return final
    tmp, _ = _download(entry, folder, accept_changed)
    try:
        os.replace(tmp, final)
    finally:
        _remove(tmp)
    return final


def get_weights_file(model: str, dataset: str, accept_changed: bool | None = None) -> pathlib.Path:
    """Path of the converted Keras ``.weights.h5`` for (model, dataset), fetching and converting once.

    A downloaded checkpoint enters the cache only once it was read and converted (the right class
    count, every tensor finite); its sha256 is then recorded (:func:`known_hashes`) and a later
    download that differs is refused unless ``accept_changed`` (or ``$AUTOX3D_ACCEPT_CHANGED_WEIGHTS=1``).
    A bad file leaves nothing behind, so fixing the mirror fixes the next call.
    """
    from autox3d_tf.weights.convert import convert_checkpoint

    entry = get_weights_entry(model, dataset)
    folder = cache_dir() / "weights"
    target = folder / entry.keras_file
    if target.exists():
        return target
    checkpoints = cache_dir() / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    final = checkpoints / entry.file_name
    if _cached_checkpoint(entry, final):
        logger.info("Converting %s (%s layout) to %s", final, entry.layout, target)
        try:
            convert_checkpoint(final, target, entry.model, expected_classes=entry.num_classes)
        except (ValueError, OSError) as err:
            raise ValueError(f"The cached checkpoint {final} cannot be converted ({err}). Delete it to fetch it "
                             "again.") from err
        _record_hash(entry.file_name, sha256_file(final))
        return target
    tmp, digest = _download(entry, checkpoints, accept_changed)
    try:
        logger.info("Converting %s (%s layout) to %s", entry.file_name, entry.layout, target)
        try:
            convert_checkpoint(tmp, target, entry.model, expected_classes=entry.num_classes)
        except (ValueError, OSError) as err:
            raise ValueError(f"The {entry.model} {entry.dataset} checkpoint from {source_url(entry)} is not usable "
                             f"({err}). Nothing was cached: fix the source (or {MIRROR_ENV}) and retry.") from err
        os.replace(tmp, final)
        _record_hash(entry.file_name, digest)
    finally:
        _remove(tmp)
    return target
