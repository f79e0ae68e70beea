"""Auto-X3D architecture search: the space, the supernet, the distribution, the trainer and its callbacks."""

from autox3d_tf.search.callbacks import DistributionHistory, SearchCheckpoint
from autox3d_tf.search.distribution import ArchDistribution
from autox3d_tf.search.space import SearchSpace, autox3d_v1
from autox3d_tf.search.supernet import GhostBatchNorm, SuperNet
from autox3d_tf.search.trainer import ArchitectureSearch, search_dataset, search_input

__all__ = [
    "ArchDistribution",
    "ArchitectureSearch",
    "DistributionHistory",
    "GhostBatchNorm",
    "SearchCheckpoint",
    "SearchSpace",
    "SuperNet",
    "autox3d_v1",
    "search_dataset",
    "search_input",
]
