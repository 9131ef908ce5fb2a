"""Evaluate a trained detector / segmentor / classifier checkpoint on the config's test set.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
                         [--cfg-options k=v ...] [--launcher none|pytorch|slurm]
    python -m mmresfamily.evaluate ...              (the same)

A checkpoint that does not fit the model is refused with the keys that differ (mmengine alone
would only warn and evaluate a half-loaded model).
"""
import argparse

from .utils.launch import add_runner_args, check_checkpoint_matches, exit_on_user_error, make_runner


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', help='dump raw predictions to this pickle file')
    add_runner_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    """Evaluate; returns the metrics."""
    args = parse_args(argv)

    def configure(cfg):
        cfg.load_from = args.checkpoint

    with exit_on_user_error():  # a bad config / flag / checkpoint: its message, no traceback
        runner = make_runner(args, configure)
        check_checkpoint_matches(runner.model, args.checkpoint)
    if args.out:
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    metrics = runner.test()
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return metrics


if __name__ == '__main__':
    main()
