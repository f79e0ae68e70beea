"""`autox3d train` as a script: `python training/train.py --help` lists the flags.

The workflow lives in the package (`autox3d_tf/workflows/train.py`); this file only runs it.
"""

import sys

from autox3d_tf.workflows.train import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
