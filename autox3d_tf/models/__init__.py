"""Model builders: `build_model` (ArchSpec -> keras.Model), `fuse_for_inference`, `feature_extractor`."""

from autox3d_tf.models.builder import build_model, validate_input_shape
from autox3d_tf.models.features import feature_extractor
from autox3d_tf.models.fuse import fold_weights, fuse_for_inference

__all__ = ["build_model", "feature_extractor", "fold_weights", "fuse_for_inference", "validate_input_shape"]
