"""TensorFlow imported without its C++ start-up chatter (oneDNN, the CUDA probe's ``cuInit``
error on a machine without a GPU), for the command line and its worker processes.

TF_CPP_MIN_LOG_LEVEL does not silence the lines absl prints before it is initialised, so stderr is
captured at the file-descriptor level during the import and the first device query. What
TensorFlow wrote is replayed if the import fails, so real errors are never hidden;
``AUTOX3D_VERBOSE_TF=1`` keeps everything.
"""

from __future__ import annotations

import os
import sys
import tempfile

__all__ = ["import_tensorflow_quietly"]


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow (once) with its start-up lines kept off stderr."""
    if "tensorflow" in sys.modules or os.environ.get("AUTOX3D_VERBOSE_TF"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow

            # The first device query initialises CUDA: on a machine without a GPU its cuInit error
            # line would come with the first TensorFlow op.
            tensorflow.config.list_physical_devices()
        except Exception:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
