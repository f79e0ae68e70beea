#!/usr/bin/env bash
# Recipe of AutoX3D-M: the training-free entropy search (E3D STEntr score + evolution), no data, no training.
# Budget: the exact MACs of X3D-M on its train clip; result within [95%, 100%] of it.
# Block types restricted to 3x3x3, 1x3x3 and 2+1d: with 3x5x5 / 5x3x3 allowed the score picks them
# everywhere and the models are not faster than X3D on CPU (see zoo/README.md).
# Run from the repository root. Deterministic: the same command writes the same JSON.
set -euo pipefail
python training/search_entropy.py --variant=M --block_types=3x3x3,1x3x3,2+1d \
    --population=256 --generations=200 --mutations=2 --seed=0 --min_fraction=0.95 \
    --output=autox3d_tf/resources/autox3d/autox3d_m.json
