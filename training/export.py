"""`autox3d export` as a script: `python training/export.py --help` lists the flags.

The workflow lives in the package (`autox3d_tf/workflows/export.py`); this file only runs it.
"""

import sys

from autox3d_tf.workflows.export import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
