"""autox3d_tf: X3D and Auto-X3D efficient video recognition models for Keras 3 / TensorFlow."""

__version__ = "0.1.0"
