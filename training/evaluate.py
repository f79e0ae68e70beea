"""`autox3d evaluate` as a script: `python training/evaluate.py --help` lists the flags.

The workflow lives in the package (`autox3d_tf/workflows/evaluate.py`); this file only runs it.
"""

import sys

from autox3d_tf.workflows.evaluate import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
