"""the whole flow on the built-in synthetic dataset: search, train, evaluate, export, serve.

    autox3d demo [--out demo_out] [--quick]

Writes the synthetic motion dataset, runs a short probabilistic architecture search under a
MACs target, trains the derived network (and, as a control, the same network on clips whose
frames are shuffled in time), evaluates both, exports the trained one as a SavedModel and
answers a prediction through it. Everything lands in OUT/ (report/summary.json and plots);
run it again after an interruption and it resumes.
"""

from __future__ import annotations

import argparse
import dataclasses


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from autox3d_tf.workflows.demo import DemoConfig

    defaults = DemoConfig()
    parser.add_argument("--out", default=defaults.out_dir, help=f"output folder (default: {defaults.out_dir})")
    parser.add_argument("--quick", action="store_true", help="a tiny run for smoke tests (minutes, low accuracy)")
    parser.add_argument("--train-epochs", type=int, default=defaults.train_epochs)
    parser.add_argument("--search-epochs", type=int, default=defaults.search_epochs)
    parser.add_argument("--seed", type=int, default=defaults.seed)


def run(args: argparse.Namespace) -> int:
    from autox3d_tf.workflows.demo import DemoConfig, run_demo

    config = DemoConfig(out_dir=args.out, train_epochs=args.train_epochs, search_epochs=args.search_epochs, seed=args.seed)
    if args.quick:
        config = dataclasses.replace(
            config, clips_per_class=8, search_space="tiny", search_epochs=1, search_warmup_epochs=0.5, train_epochs=1,
            eval_clips=1,
        )
    run_demo(config)
    return 0
