"""`prunebench run` and `prunebench methods`: one config in this process, and the method list."""

from __future__ import annotations

import argparse
import sys

import yaml

from prunebench.core.storage import RESULT_FILE, probe_remote


RUN_DESCRIPTION = """\
Train one run config in this process (on a GPU when there is one): its phases, the per-epoch
trail of the hard-pruned model, one test evaluation and the latency measurement. The run
directory STORAGE/EXPERIMENT/RUN_ID gets result.json, model.pt, config.yaml and train.log
(what the run printed); the run id is the config's hash, so the same config is the same run."""
RUN_EXAMPLES = """\
examples:
  prunebench run configs/smoke/global.yaml
  prunebench run configs/smoke/ltp.yaml --storage-path s3://BUCKET/prunebench --set seed=1 --set threads=2"""


def cmd_run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: every `prunebench` command builds these parsers, and the
    # lifecycle loads torch, the methods and the data pipelines.
    from prunebench.harness.lifecycle import execute_run
    from prunebench.harness.validation import load_run_config

    overrides = list(args.set or [])
    if args.storage_path:
        overrides.append(f"output_dir={args.storage_path}")
    config = load_run_config(args.config, overrides)
    if args.dry_run:
        print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).rstrip())
        print(f"run id: {config.run_id()} -> {config.run_files().uri}")
        return 0
    probe_remote(config.output_dir, config.experiment)  # opening a remote storage may wait on the network
    result_file = config.run_files().file_uri(RESULT_FILE)
    if not args.force and config.run_files().is_finished():
        print(f"{config.run_id()}: already finished -> {result_file} (--force trains it again)")
        return 0
    record = execute_run(config, resume=not (args.restart or args.force))
    if not record.finished:
        print(f"run failed: {record.error} (recorded in {result_file})", file=sys.stderr)
        return 1
    print(
        f"{record.run_id}: top-1 {record.top1:.4f} top-5 {record.top5:.4f} "
        f"density {record.density:.4f} ({record.compression_rate or float('inf'):.2f}x) "
        f"MACs {record.macs / 1e6:.2f}M of {record.macs_dense / 1e6:.2f}M -> {result_file}"
    )
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from prunebench import methods

    for name in methods.available():
        cls = methods.get(name)
        print(f"{name:<16} {cls.granularity:<12} {cls.summary}")
        if args.hparams:
            for field, info in cls.Hparams.model_fields.items():
                print(f"    {field} = {info.default!r}: {info.description or ''}")
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run one config in this process", description=RUN_DESCRIPTION,
                                epilog=RUN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    run.add_argument("config", help="run config YAML")
    run.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config value (YAML)")
    run.add_argument("--storage-path", "--out", dest="storage_path", metavar="PATH",
                     help="where runs are stored: a directory or s3://BUCKET/PREFIX, as a grid's storage_path "
                     "(the config's output_dir; default runs); --out is its older name")  # fmt: skip
    again = run.add_mutually_exclusive_group()  # by default: a finished run is reported, an unfinished one continues
    again.add_argument("--restart", action="store_true", help="start an unfinished run over, not from its last checkpoint")
    again.add_argument("--force", action="store_true", help="train a finished run again (its result is replaced)")
    run.add_argument("--dry-run", action="store_true", help="validate, print the resolved config and the run id, write nothing")
    run.set_defaults(func=cmd_run)

    listing = subparsers.add_parser("methods", help="list the registered pruning methods")
    listing.add_argument("--hparams", action="store_true", help="also list each method's hyper-parameters and defaults")
    listing.set_defaults(func=cmd_methods)
