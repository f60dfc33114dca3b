"""Command line: ``pcattn train | eval | predict | visualize | bench | models | data``
(also ``python -m pcattn``)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings

from pcattn import __version__


class _Parser(argparse.ArgumentParser):
    """An argument error is one line on stderr and exit status 2 (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pcattn", description=__doc__)
    p.add_argument("--version", action="version", version=f"pcattn {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from a YAML config")
    t.add_argument("--config", help="YAML file (see configs/); optional with --resume")
    t.add_argument("--set", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE",
                   help="override config values, e.g. train.epochs=2 model.k=8 (repeatable)")
    t.add_argument("--resume", metavar="RUN_DIR|CKPT",
                   help="continue a stopped run from its last.pt (bit-exact); with "
                        "--set train.epochs=N, extend a finished one")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="evaluate a checkpoint on a split of its dataset")
    e.add_argument("checkpoint", metavar="RUN_DIR|CKPT", help="a .pt file or a run folder "
                   "(its best.pt)")
    e.add_argument("--split", default="test", choices=("test", "val", "train"),
                   help="test (default); val: the run's validation clouds (data.val_fraction "
                        "or the dataset's own val split)")
    e.add_argument("--device", default="auto", type=_device,
                   help="auto (default), cpu, cuda, cuda:N or mps")
    e.add_argument("--votes", type=_count, default=1,
                   help="average the logits of N copies (the cloud, then N-1 randomly scaled)")
    e.add_argument("--vote-rotation", default="none", choices=["none", "x", "y", "z", "so3"],
                   help="also rotate the voting copies (for models trained with rotations)")

    pr = sub.add_parser("predict", help="predict the class, or the parts, of clouds in files")
    pr.add_argument("checkpoint")
    pr.add_argument("files", nargs="+", metavar="FILE", help="any file read_cloud reads")
    pr.add_argument("--out", help="segmentation: output PLY (one FILE only); default "
                                  "FILE.parts.ply")
    pr.add_argument("--category", help="segmentation: the object category (name or index)")
    pr.add_argument("--device", default="auto", type=_device,
                    help="auto (default), cpu, cuda, cuda:N or mps")
    pr.add_argument("--json", action="store_true", help="print JSON")
    _bounding_options(pr, "4 x the training num_points")

    _visualize_parser(sub)

    b = sub.add_parser("bench", help="time and peak memory of ops or blocks")
    b.add_argument("what", choices=["ops", "blocks", "large", "attention", "train", "concurrent",
                                    "budget", "scale"],
                   help="ops: kNN/FPS vs open3d; blocks: attention blocks vs PyG at "
                        "8 x 1024 points; large: global/linear attention on one big cloud; "
                        "attention: every efficient-attention family against full attention "
                        "(time, memory, error; CSV, table and chart in --out); "
                        "train: training step and data path of whole models, PyG peer; "
                        "concurrent: a training alone, then several at once; budget: train "
                        "configs one after another under one time budget, compare them; scale: "
                        "serialized patch attention against kNN local attention and ptv3_seg "
                        "against point_transformer_seg at 1e4..1e6 points (CSV, table, "
                        "log-log chart in --out)")
    b.add_argument("--quick", action="store_true", help="small sizes only")
    b.add_argument("--sizes", nargs="+", type=_count, metavar="N",
                   help="attention: points per cloud (default: 1000 10000 100000); "
                        "scale: points of the one cloud (default: 10000 100000 1000000)")
    b.add_argument("--max-full", type=_count, default=32768, metavar="N",
                   help="attention: largest N for full attention and the errors")
    b.add_argument("--model", nargs="+", action="extend", metavar="NAME",
                   help="train: models to run, by name or as the model of a run config, "
                        "with overrides after colons as in --configs "
                        "(configs/pct_synthetic.yaml:model.attention=linear) (default: "
                        "every *_cls, point_transformer_seg and the PyG peer "
                        "pyg_point_transformer_cls)")
    b.add_argument("--patch-size", type=_count, default=128,
                   help="scale: keys per query P of the serialized attention")
    b.add_argument("--points", type=_count, default=1024, help="train: points per cloud")
    b.add_argument("--batch", type=_count, default=16, help="train: clouds per step")
    b.add_argument("--steps", type=_count, default=10, help="train: timed steps (median)")
    b.add_argument("--workers", type=_count_or_zero, default=0, help="train: DataLoader workers")
    b.add_argument("--device", default="cpu", type=_device, help="train: cpu, cuda, cuda:N")
    b.add_argument("--json", action="store_true", help="train, concurrent: print JSON")
    b.add_argument("--config", default="configs/point_transformer_synthetic.yaml",
                   help="concurrent: the run config (default: the main job's)")
    b.add_argument("--epochs", type=_count, default=2, help="concurrent: epochs of each run")
    b.add_argument("--runs", type=_count, default=2, help="concurrent: trainings at once")
    b.add_argument("--threads", default="auto", help="concurrent: train.threads of each run")
    _budget_options(b)

    m = sub.add_parser("models", help="list the built-in models (task, paper)")
    m.add_argument("--params", action="store_true",
                   help="also count each default config's parameters (builds every model)")
    _data_parser(sub)
    return p


def _budget_options(b) -> None:
    b.add_argument("--configs", nargs="+", metavar="CONFIG[:SECTION.KEY=VALUE...]",
                   help="budget: run configs, each with its own overrides after colons, e.g. "
                        "configs/nw_modelnet40.yaml:model.name=nw_cls (default: every "
                        "configs/*_modelnet40.yaml)")
    b.add_argument("--budget", type=_finite, metavar="MINUTES",
                   help="budget: train.time_budget of every run")
    b.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="S",
                   help="budget: train.seed of the runs of each config (default: 0)")
    b.add_argument("--set", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE",
                   help="budget: overrides for every run, as in pcattn train --set")
    b.add_argument("--out", metavar="DIR", help="budget: the run folders, budget.csv and "
                                                "budget.md (default: runs/budget-<date>); "
                                                "attention: attention.csv/.md/.png (default: .)")


def _bounding_options(p, default: str) -> None:
    p.add_argument("--max-points", type=_count, metavar="N",
                   help=f"down-sample larger clouds to N points (default: {default}); a "
                        "segmenter's parts still reach every input point (nearest kept point)")
    p.add_argument("--sampling", default="auto", choices=["auto", "fps", "voxel"],
                   help="how: fps (farthest point sampling), voxel (one point per cell of a "
                        "grid), auto (fps, with a voxel grid first on very large clouds)")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _count_or_zero(text: str) -> int:
    return 0 if text.strip() == "0" else _count(text)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _visualize_parser(sub) -> None:
    v = sub.add_parser("visualize", help="a trained model's attention on one cloud: PNG, "
                                         "coloured PLY and an offline HTML page")
    v.add_argument("checkpoint", metavar="RUN_DIR|CKPT", nargs="+",
                   help="one run, or several to compare on the same cloud")
    cloud = v.add_mutually_exclusive_group(required=True)
    cloud.add_argument("--sample", metavar="SPLIT:INDEX", help="a cloud of the run's data, "
                       "e.g. test:17, or the first of a class: test:torus")
    cloud.add_argument("--file", help="a cloud or mesh file (any file read_cloud reads)")
    v.add_argument("--layer", help="index (negative from the end) or name; default: the "
                                   "first, the last for rollout")
    v.add_argument("--head", type=int, help="one head (channel group); default: their mean")
    v.add_argument("--query", help="123 | 12,40,7 | fps:4 | xyz:0.1,0.2,0.0; default fps:4 "
                                   "(map), fps:1 (rollout)")
    v.add_argument("--mode", default="map", choices=["map", "received", "rollout"])
    v.add_argument("--scale", choices=["relative", "absolute"],
                   help="relative: weight x points read, 1 = uniform, on a log2 diverging "
                        "scale (default for map and received); absolute: the weight")
    v.add_argument("--grid", choices=["heads", "queries"],
                   help="also a figure of layers x heads (the mean and the most selective "
                        "heads) or layers x queries")
    v.add_argument("--format", default="png", choices=["png", "svg", "pdf"],
                   dest="figure_format", help="of the figures (default png)")
    v.add_argument("--stats", action="store_true",
                   help="print and plot each layer's and head's focus (normalised entropy, "
                        "top-1 share) on this cloud and over --clouds test clouds")
    v.add_argument("--clouds", type=_count_or_zero, default=32, metavar="N",
                   help="test clouds the --stats average runs over (default 32; 0: only "
                        "this cloud)")
    v.add_argument("--category", help="segmentation with --file: the object category")
    v.add_argument("--out", help="output folder; default RUN_DIR/attention")
    v.add_argument("--device", default="auto", type=_device,
                   help="auto (default), cpu, cuda, cuda:N or mps")
    _bounding_options(v, "the training num_points: the page holds every layer's attention")


def _device(name: str) -> str:
    from pcattn.devices import check_device_name

    try:
        return check_device_name(name, "--device")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _data_parser(sub) -> None:
    d = sub.add_parser("data", help="inspect a dataset root or build its cache")
    dsub = d.add_subparsers(dest="data_command", required=True)
    i = dsub.add_parser("info", help="what is under ROOT: layout, splits, classes, counts")
    i.add_argument("root")
    i.add_argument("--json", action="store_true", help="print JSON")
    pr = dsub.add_parser("prepare", help="build the cache of ROOT's train and test splits")
    pr.add_argument("root")
    pr.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                    help="data config fields, e.g. num_points=1024 name=modelnet10 "
                         "(use the values your run config uses so that it finds the cache)")
    pr.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(argv: list[str] | None = None) -> int:
    """Run a command; a user error (bad config, file, data or device) is one message and
    exit status 2, Ctrl-C is one line and 130, a closed pipe (``| head``) exits quietly."""
    args = _parser().parse_args(argv)
    from pcattn.engine.interrupt import TrainingInterrupted

    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(args.command)
            code = _run(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below
        return code
    except BrokenPipeError:
        # the reader went away: print nothing more (also not at interpreter exit)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a process ended by the closed pipe
    except TrainingInterrupted as stop:
        print(f"pcattn {args.command}: {stop}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print(f"\npcattn {args.command}: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError) as err:  # FileNotFoundError, DataFormatError, ...
        print(f"pcattn {args.command}: error: {err}", file=sys.stderr)
        return 2


def _one_line_warning(command: str):
    """``warnings.showwarning`` that prints ``pcattn COMMAND: warning: MESSAGE`` on stderr
    (what a user should know about the input); deprecations, meant for developers, go to
    the usual handler."""
    usual = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, (DeprecationWarning, PendingDeprecationWarning)):
            usual(message, category, filename, lineno, file, line)
            return
        text = " ".join(str(message).split())
        print(f"pcattn {command}: warning: {text}", file=sys.stderr)

    return show


def _run(args) -> int:
    if args.command == "train":
        from pcattn.engine.config import load_config  # config errors before heavy imports

        if args.resume:
            from pcattn.engine.resume import resume_config

            run, ckpt = resume_config(args.resume, args.config, args.set)
        elif args.config:
            run, ckpt = load_config(args.config, args.set), None
        else:
            raise ValueError("give --config FILE (a new run) or --resume RUN_DIR")
        from pcattn.engine.loop import train

        metrics = train(run, progress=not args.no_progress, resume=ckpt)
        if metrics["best"] is not None and int(os.environ.get("RANK", "0")) == 0:
            best = metrics["best"]
            test = metrics.get("test")
            tested = f"; test {best['metric']} {test[best['metric']]:.4f}" if test else ""
            print(f"best {metrics['eval_split']} {best['metric']} {best['value']:.4f} (epoch "
                  f"{best['epoch']}){tested}; run folder: {metrics['run_dir']}")
    elif args.command == "eval":
        from pcattn.engine import evaluate_checkpoint

        print(json.dumps(evaluate_checkpoint(args.checkpoint, split=args.split,
                                             device=args.device, votes=args.votes,
                                             vote_rotation=args.vote_rotation), indent=2))
    elif args.command == "predict":
        return _run_predict(args)
    elif args.command == "visualize":
        from pcattn.viz import visualize

        written = visualize(args.checkpoint, sample=args.sample, file=args.file,
                            layer=args.layer, head=args.head, query=args.query,
                            mode=args.mode, out=args.out, category=args.category,
                            device=args.device, max_points=args.max_points,
                            sampling=args.sampling, scale=args.scale, grid=args.grid,
                            figure_format=args.figure_format, stats=args.stats,
                            clouds=args.clouds, say=_say("visualize"), report=print)
        for kind, path in written.items():
            print(f"{kind}: {path}")
    elif args.command == "bench":
        if args.what == "train":
            from pcattn.bench import train as bench_train

            bench_train.run(args.model, points=args.points, batch=args.batch,
                            steps=args.steps, workers=args.workers, device=args.device,
                            as_json=args.json)
            return 0
        if args.what == "concurrent":
            from pcattn.bench import concurrent as bench_concurrent

            bench_concurrent.run(args.config, epochs=args.epochs, runs=args.runs,
                                 threads=args.threads, as_json=args.json)
            return 0
        if args.what == "budget":
            from pcattn.bench import budget as bench_budget

            bench_budget.run(args.configs, budget=args.budget, seeds=args.seeds,
                             sets=args.set, out=args.out)
            return 0
        if args.what == "attention":
            from pcattn.bench import attention as bench_attention

            bench_attention.run(args.sizes or [1000, 10_000, 100_000], out=args.out or ".",
                                max_full=args.max_full)
            return 0
        if args.what == "scale":
            from pcattn.bench import scale as bench_scale

            bench_scale.run(args.sizes or [10_000, 100_000, 1_000_000], out=args.out or ".",
                            patch_size=args.patch_size)
            return 0
        from pcattn.bench import suite as bench

        bench.run_suite(args.what, quick=args.quick)
    elif args.command == "models":
        from pcattn.model_configs import MODELS, format_table  # no model import: starts fast

        params = None
        if args.params:
            from pcattn.models.registry import model_info

            params = {name: model_info(name)["parameters"] for name in MODELS}
        print(format_table(params))
    elif args.command == "data":
        return _run_data(args)
    return 0


def _run_predict(args) -> int:
    from pcattn.engine.predict import load_model, predict_file

    if args.out and len(args.files) > 1:
        raise ValueError("--out names one output file; give one FILE or leave --out out")
    loaded = load_model(args.checkpoint, args.device)
    for f in args.files:
        res = predict_file(args.checkpoint, f, out=args.out, category=args.category,
                           max_points=args.max_points, sampling=args.sampling,
                           loaded=loaded, say=_say("predict"))
        if args.json:
            print(json.dumps(res))
        elif "class" in res:
            print(f"{f}: {res['class']}  (" + ", ".join(f"{c} {p:.3f}" for c, p in res["top5"])
                  + ")")
        else:
            print(f"{f}: wrote {res['out']}; points per part: " +
                  ", ".join(f"{p}: {n}" for p, n in res["part_counts"].items()))
    return 0


def _say(command: str):
    """Progress of long steps: one line each on stderr (stdout stays the answer)."""
    return lambda line: print(f"pcattn {command}: {line}", file=sys.stderr, flush=True)


def _run_data(args) -> int:
    from pcattn.data.info import describe, format_description, prepare
    from pcattn.model_configs.values import parse_yaml

    if args.data_command == "info":
        found = describe(args.root)
        print(json.dumps(found, indent=2) if args.json else format_description(found))
        return 0
    options = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value (e.g. num_points=1024), got {item!r}")
        options[key.removeprefix("data.")] = parse_yaml(value, f"--set {item}")
    from pcattn.data.info import guess_name
    from pcattn.engine.config import config_from_dict

    if "name" not in options:  # only then: a given name says what to look for itself
        options["name"] = guess_name(args.root, options.get("layout", "auto"))
    cfg = config_from_dict({"data": {**options, "root": args.root}}).data
    counts = prepare(cfg, progress=not args.no_progress)
    print("cached: " + ", ".join(f"{s} {n} clouds" for s, n in counts.items()))
    return 0
