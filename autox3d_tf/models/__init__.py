"""Model builders."""

from autox3d_tf.models.builder import build_model, validate_input_shape

__all__ = ["build_model", "validate_input_shape"]
