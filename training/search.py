"""`autox3d search` as a script: `python training/search.py --help` lists the flags.

The workflow lives in the package (`autox3d_tf/workflows/search.py`); this file only runs it.
"""

import sys

from autox3d_tf.workflows.search import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
