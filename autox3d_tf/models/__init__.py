"""Model builders: `build_model` (ArchSpec -> keras.Model), `fuse_for_inference`, `feature_extractor`,
`segment_consensus` (any network on K temporal segments, TSN-style)."""

from autox3d_tf.models.builder import build_model, validate_input_shape
from autox3d_tf.models.consensus import SegmentConsensusModel, consensus_parts, segment_consensus
from autox3d_tf.models.features import feature_extractor
from autox3d_tf.models.fuse import fold_weights, fuse_for_inference

__all__ = ["SegmentConsensusModel", "build_model", "consensus_parts", "feature_extractor", "fold_weights",
           "fuse_for_inference", "segment_consensus", "validate_input_shape"]
