#!/usr/bin/env bash
# Recipe of the differentiable cell search at the setting of Peng, Hong, Zhao, "Video Action
# Recognition via Neural Architecture Searching" (ICIP 2019, arXiv 1907.04632): DARTS-style cells of
# pseudo-3D operators, searched from scratch on UCF101 with temporal segments, 4 segments x 2 frames
# at 112 x 112. This is the seed setting of issue 14, not a reproduction: no run of it has been made
# here (a UCF101 search is GPU-days; see "cost" below), so there is no searched genotype to publish.
#
# Known from the paper (its abstract): a differentiable search (DARTS' continuous relaxation, the
# architecture weights trained by gradient on held-out data, alternating with the network weights);
# pseudo-3D operators ((2+1)D: 1 x k x k spatial then k_t x 1 x 1 temporal) to keep the cost low;
# TSN-style temporal segments, 4 segments x 2 frames at 112 x 112; trained from scratch on UCF101;
# the networks found have about 1% of the parameters of hand-designed 3D CNNs.
# NOT published there (so chosen here, and any of them may differ from the paper): the exact
# operation set, nodes per cell, number of cells and initial channels, search epochs, batch,
# learning rates, weight decay, frame rate of a snippet, the train / held-out split, whether a cost
# term was used, first or second order.
#
# What this recipe uses, and why:
# - --space cells: 4 intermediate nodes per cell, 16 channels, 5 cells (reductions at cells 1 and 3),
#   stem 3 x 16 channels; every edge mixes all 10 operations of autox3d_tf.arch.cells.CELL_OPS
#   (P3D-A, P3D-B, P3D-C, P3D-A dilated 2 in time, separable 1x3x3 and 3x3x3, per-frame max / average
#   3x3 pooling, identity, zero). 4 nodes and 16 channels are DARTS' CIFAR search; 5 cells instead of
#   DARTS' 8 because a 2-frame snippet at 112 x 112 holds 25x the positions of a CIFAR image, and
#   the supernet keeps every operation's activations for the backward pass.
# - --segments 4 --frames 2 --crop 112: the paper's input. The MACs (and --macs_target, if given)
#   are per 2-frame snippet; a clip costs 4x. --rate 4: a snippet spans 0.16 s at UCF101's 25 fps
#   (the paper does not say; TSN samples 1 frame per segment, so any short span is in its spirit).
# - --epochs 50, SGD momentum 0.9 with a cosine learning rate from 0.025 x batch / 64 (the default,
#   DARTS' 0.025 at batch 64) and weight decay 3e-4 (DARTS'); the architecture logits by Adam at
#   3e-4, betas (0.5, 0.999) (DARTS': --arch_learning_rate must be given, the flag's default 0.025 is
#   the probabilistic search's); no warm-up (DARTS has none).
# - --held_out_fraction 0.5: DARTS holds out half of the training videos for the architecture step
#   (by video, --split_seed). Search on UCF101 split 1's training list only: the test list is never
#   seen by the search.
# - --batch_size 8: what the supernet fits at this clip. `python benchmarks/bench_search.py` (the
#   default is this setting) measures the step time and the activation memory per clip of the
#   first- and second-order steps and says which batch fits in which memory.
# - First order (DARTS' xi = 0); --second_order is the finite-difference Hessian variant, about
#   2-3x the step time (same benchmark). No --macs_target: the paper reports accuracy and a small
#   parameter count, not a MACs budget; add --macs_target GMACS (per snippet) to search under one.
#
# Data: UCF101 (https://www.crcv.ucf.edu/data/UCF101.php) unpacked as UCF-101/<class>/<video>.avi and
# the official splits in ucfTrainTestlist/. The search reads a PySlowFast list ("path label", 0-based
# class index, paths absolute or relative to the list's folder), made from trainlist01.txt (1-based
# labels) by the awk line below.
# Outputs in $OUT: arch.json (the derived CellNetSpec; build it with
# autox3d_tf.models.cell_builder.build_cell_model and train it with --segments 4), genotype.json,
# search.json, history.json, arch_weights.png, cells.png, metrics.csv, ckpt/ (a killed run resumes).
# Run from the repository root.
set -euo pipefail
UCF101=${UCF101:-data/ucf101}
OUT=${OUT:-runs/darts_cells_icip2019}
mkdir -p "$OUT"
awk -v root="$(cd "$UCF101" && pwd)/UCF-101" '{print root "/" $1, $2 - 1}' "$UCF101/ucfTrainTestlist/trainlist01.txt" \
    > "$OUT/trainlist01.txt"
autox3d search --method differentiable --space cells \
    --data "$OUT/trainlist01.txt" --held_out_fraction 0.5 --split_seed 0 \
    --segments 4 --frames 2 --rate 4 --crop 112 \
    --epochs 50 --batch_size 8 --arch_learning_rate 3e-4 --warmup_epochs 0 \
    --seed 0 --out_dir "$OUT"
