"""Auto-X3D architecture search: the space, the supernet, the distribution, the trainer and its callbacks.

TensorFlow-only: the supernet (`SuperNet`, `extract_subnet`), the distribution, the trainer and
its callbacks are written with ``tf`` ops and ``tf.distribute`` and run on the TensorFlow backend
only. The space (`SearchSpace`), the entropy score and the evolution are plain Python / NumPy.
"""

from autox3d_tf.search.callbacks import DistributionHistory, SearchCheckpoint
from autox3d_tf.search.distribution import ArchDistribution
from autox3d_tf.search.space import SearchSpace, autox3d_v1
from autox3d_tf.search.subnet import extract_subnet
from autox3d_tf.search.supernet import SuperNet
from autox3d_tf.search.trainer import ArchitectureSearch, search_dataset, search_input

__all__ = [
    "ArchDistribution",
    "ArchitectureSearch",
    "DistributionHistory",
    "SearchCheckpoint",
    "SearchSpace",
    "SuperNet",
    "autox3d_v1",
    "extract_subnet",
    "search_dataset",
    "search_input",
]
