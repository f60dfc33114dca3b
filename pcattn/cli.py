"""Command line: ``pcattn train | eval | bench | models | data`` (also ``python -m pcattn``)."""

from __future__ import annotations

import argparse
import json
import sys

from pcattn import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pcattn", description=__doc__)
    p.add_argument("--version", action="version", version=f"pcattn {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from a YAML config")
    t.add_argument("--config", required=True, help="YAML file (see configs/)")
    t.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE",
                   help="override config values, e.g. train.epochs=2 model.k=8")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="evaluate a checkpoint on a split of its dataset")
    e.add_argument("checkpoint")
    e.add_argument("--split", default="test")
    e.add_argument("--device", default="auto")

    b = sub.add_parser("bench", help="time and peak memory of ops or blocks")
    b.add_argument("what", choices=["ops", "blocks", "large"],
                   help="ops: kNN/FPS vs open3d; blocks: attention blocks vs PyG at "
                        "8 x 1024 points; large: global/linear attention on one big cloud")
    b.add_argument("--quick", action="store_true", help="small sizes only")

    sub.add_parser("models", help="list registered models")
    _data_parser(sub)
    return p


def _data_parser(sub) -> None:
    d = sub.add_parser("data", help="inspect a dataset root or build its cache")
    dsub = d.add_subparsers(dest="data_command", required=True)
    i = dsub.add_parser("info", help="what is under ROOT: layout, splits, classes, counts")
    i.add_argument("root")
    i.add_argument("--json", action="store_true", help="print JSON")
    pr = dsub.add_parser("prepare", help="build the cache of ROOT's train and test splits")
    pr.add_argument("root")
    pr.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="data config fields, e.g. num_points=1024 name=modelnet10 "
                         "(use the values your run config uses so that it finds the cache)")
    pr.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (FileNotFoundError, PermissionError, ValueError) as err:
        print(f"pcattn {args.command}: error: {err}", file=sys.stderr)
        return 2


def _run(args) -> int:
    if args.command == "train":
        from pcattn.engine import load_config, train

        run = load_config(args.config, args.set)
        metrics = train(run, progress=not args.no_progress)
        print(f"test overall accuracy {metrics['overall_accuracy']:.4f}, mean class accuracy "
              f"{metrics['mean_class_accuracy']:.4f}; run folder: {metrics['run_dir']}")
    elif args.command == "eval":
        from pcattn.engine import evaluate_checkpoint

        print(json.dumps(evaluate_checkpoint(args.checkpoint, split=args.split,
                                             device=args.device), indent=2))
    elif args.command == "bench":
        from pcattn import bench

        bench.run_suite(args.what, quick=args.quick)
    elif args.command == "models":
        from pcattn.models.registry import list_models, model_info

        rows = [model_info(name) for name in list_models()]
        print(f"{'name':<24} {'task':<18} {'params':>8}  paper")
        for r in rows:
            print(f"{r['name']:<24} {r['task']:<18} {r['parameters'] / 1e6:>7.2f}M  {r['paper']}")
    elif args.command == "data":
        return _run_data(args)
    return 0


def _run_data(args) -> int:
    import yaml

    from pcattn.data.info import describe, format_description, prepare

    if args.data_command == "info":
        found = describe(args.root)
        print(json.dumps(found, indent=2) if args.json else format_description(found))
        return 0
    options = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value (e.g. num_points=1024), got {item!r}")
        options[key.removeprefix("data.")] = yaml.safe_load(value)
    from pcattn.data.info import guess_name
    from pcattn.engine.config import config_from_dict

    options.setdefault("name", guess_name(args.root, options.get("layout", "auto")))
    cfg = config_from_dict({"data": {**options, "root": args.root}}).data
    counts = prepare(cfg, progress=not args.no_progress)
    print("cached: " + ", ".join(f"{s} {n} clouds" for s, n in counts.items()))
    return 0
