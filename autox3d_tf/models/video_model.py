"""`VideoModel`: a functional `keras.Model` that knows the architecture it was built from.

`build_model` returns one. Its ``arch_spec`` (the `ArchSpec`) and ``build_options`` (the builder's
keyword arguments: top, classes, pooling, activation, preprocessing, folding) are part of its Keras
config, so ``model.get_config()`` / ``VideoModel.from_config`` and a saved ``.keras`` file keep
them; BatchNorm folding, export and ``autox3d info`` read them from the model, whatever its name.
"""

from __future__ import annotations

from typing import Any

import keras

from autox3d_tf.arch.spec import ArchSpec


@keras.saving.register_keras_serializable(package="autox3d_tf")
class VideoModel(keras.Model):
    """A functional model with its ``arch_spec`` and ``build_options``.

    Built like any functional model, ``VideoModel(inputs, outputs, name=..., arch_spec=spec,
    build_options={...})``; everything else is ``keras.Model``'s.
    """

    def __init__(self, *args, arch_spec: ArchSpec | dict | None = None, build_options: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(arch_spec, dict):
            arch_spec = ArchSpec.from_dict(arch_spec)
        self.arch_spec: ArchSpec | None = arch_spec
        self.build_options: dict[str, Any] = dict(build_options or {})

    def rebuild_kwargs(self) -> dict[str, Any]:
        """``build_model`` keyword arguments that build this model's graph again (without the
        folding flag, and without the classifier's arguments when it has no top)."""
        if not self.build_options:
            raise ValueError(f"Model {self.name!r} carries no build options: it was not built by build_model.")
        options = {k: v for k, v in self.build_options.items() if k != "fold_batch_norm"}
        if not options["include_top"]:
            options.pop("classes", None)
            options.pop("classifier_activation", None)
        return options

    def get_config(self) -> dict:
        config = super().get_config()
        if self.arch_spec is not None:
            config["arch_spec"] = self.arch_spec.to_dict()
        config["build_options"] = dict(self.build_options)
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> "VideoModel":
        config = dict(config)
        arch_spec = config.pop("arch_spec", None)
        build_options = config.pop("build_options", None)
        model = super().from_config(config, custom_objects=custom_objects)
        model.arch_spec = ArchSpec.from_dict(arch_spec) if arch_spec is not None else None
        model.build_options = dict(build_options or {})
        return model


def model_spec(model: keras.Model, spec: ArchSpec | None = None) -> ArchSpec:
    """The `ArchSpec` of ``model``: ``spec`` if given, else the one the model carries.

    Raises:
        ValueError: neither is there (a model that `build_model` did not build).
    """
    if spec is not None:
        return spec
    carried = getattr(model, "arch_spec", None)
    if carried is None:
        raise ValueError(
            f"Model {model.name!r} carries no ArchSpec (it was not built by autox3d_tf.models.build_model); "
            "pass `spec=` explicitly."
        )
    return carried
