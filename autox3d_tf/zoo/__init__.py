"""The model zoo (X3D, AutoX3D, E3D): named factories with keras.applications arguments, and the registry.

    from autox3d_tf.zoo import X3D_S, get_model, get_model_config, list_models
    model = X3D_S(weights="kinetics400", classes=10)   # fine-tuning: all but the classifier
    get_model_config("X3D_S").frames, list_models("x3d*", pretrained=True)
"""

from autox3d_tf.zoo.registry import (
    ModelConfig,
    ZooModelConfig,
    canonical_name,
    get_config,
    get_model,
    get_model_config,
    get_spec,
    list_models,
)
from autox3d_tf.zoo.x3d import X3D_L, X3D_M, X3D_S, X3D_XL, X3D_XS
from autox3d_tf.zoo.autox3d import AutoX3D_L, AutoX3D_M, AutoX3D_S, AutoX3D_XS, autox3d_spec
from autox3d_tf.zoo.e3d import E3D_L, E3D_M, E3D_S

__all__ = [
    "X3D_XS",
    "X3D_S",
    "X3D_M",
    "X3D_L",
    "X3D_XL",
    "AutoX3D_XS",
    "AutoX3D_S",
    "AutoX3D_M",
    "AutoX3D_L",
    "autox3d_spec",
    "E3D_S",
    "E3D_M",
    "E3D_L",
    "ModelConfig",
    "ZooModelConfig",
    "canonical_name",
    "get_config",
    "get_model",
    "get_model_config",
    "get_spec",
    "list_models",
]
