"""`tdn train`: the command line the tdn-torch plugin adds through tdn_register_commands.

Nothing here imports torch until the command runs, so that `tdn --help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from tdn.errors import TdnError

HELP = "train a Darknet classifier on labelled images (tdn-torch)"


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Train the network of CFG on DATA with Darknet's classifier training: the cfg's [net] "
        "section sets batch, subdivisions, learning rate policy, momentum, decay and augmentation. "
        "Writes OUT (.weights, Darknet's format), the class names beside it (OUT with .names) and a "
        "checkpoint (OUT with .ckpt).")
    parser.add_argument("cfg", help="Darknet .cfg file")
    parser.add_argument("data", metavar="DATA", help="a folder of DATA/<class>/ image folders, or a CSV "
                                                     "list of 'path,class' rows")
    parser.add_argument("--out", required=True, metavar="OUT", help="the .weights file to write")
    parser.add_argument("--weights", metavar="INIT", help="start from these trained weights (the "
                                                          "images-seen counter starts at 0, as Darknet's -clear)")
    parser.add_argument("--classes", type=_positive, metavar="N",
                        help="with --weights: replace the classifier by a new one for N classes and "
                             "write the adapted cfg beside OUT (OUT with .cfg)")
    parser.add_argument("--freeze", action="store_true",
                        help="with --weights: train only the last convolutional or connected layer")
    parser.add_argument("--labels", metavar="FILE", help="class names, one per line, in output order "
                                                         "(default: DATA's class names, sorted)")
    parser.add_argument("--max-batches", type=_positive, metavar="N",
                        help="stop after N weight updates (replaces the cfg's max_batches, "
                             "which also sets the poly policy's horizon)")
    parser.add_argument("--seed", type=int, metavar="S", help="random seed (default 0)")
    parser.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its checkpoint")
    parser.add_argument("--checkpoint-every", type=_positive, default=100, metavar="N",
                        help="write the checkpoint every N updates (default 100) and on Ctrl-C")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto (default): CUDA where torch has a GPU, else the CPU")
    parser.add_argument("--threads", type=_positive, metavar="N",
                        help="CPU threads for torch (default: torch's choice, one per core); 1 is "
                             "fastest for small networks on a busy machine")


def _write_text(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=path.name, suffix=".tmp",
                                     delete=False, encoding="utf-8") as handle:
        handle.write(text)
    os.replace(handle.name, path)


def _checked(args: argparse.Namespace) -> None:
    if (args.classes or args.freeze) and not args.weights:
        raise TdnError("--classes and --freeze need --weights INIT (the trained network to start from)")
    if not args.out.endswith(".weights"):
        raise TdnError(f"--out {args.out}: expected a file name ending in .weights")
    if not Path(args.out).resolve().parent.is_dir():
        raise TdnError(f"--out {args.out}: no such folder")
    if args.classes and Path(args.out).with_suffix(".cfg").resolve() == Path(args.cfg).resolve():
        raise TdnError(f"--out {args.out}: the adapted cfg would overwrite {args.cfg}; choose another name")


def run(args: argparse.Namespace) -> int:
    _checked(args)
    import torch
    from tdn.classes import read_names
    from tdn.weights import Header, write_weights
    from tqdm import tqdm

    from tdn_torch.train.checkpoint import Checkpoint
    from tdn_torch.train.data import Dataset
    from tdn_torch.train.loop import Trainer
    from tdn_torch.train.setup import prepare

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    resume = Checkpoint.load(args.resume) if args.resume else None
    seed = args.seed if args.seed is not None else (resume.seed if resume else 0)
    if resume and seed != resume.seed:
        raise TdnError(f"--seed {seed}: the checkpoint was trained with seed {resume.seed}")
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    dataset = Dataset.load(args.data, read_names(args.labels) if args.labels else None)
    run_ = prepare(args.cfg, dataset, seed, device, weights=args.weights, classes=args.classes,
                   freeze=args.freeze, max_batches=args.max_batches, adapted_cfg=out.with_suffix(".cfg"))
    trainer = Trainer(run_, resume)
    checkpoint_path = out.with_suffix(".ckpt")
    o = run_.options
    print(f"tdn: training {len(dataset.samples)} images of {len(dataset.names)} classes on {device}: "
          f"batch {o.batch} in {o.subdivisions} subdivision(s), updates {trainer.updates}..{o.max_batches}, "
          f"learning rate {o.learning_rate} ({o.policy}), seed {seed}", file=sys.stderr)
    stop = {"requested": False}

    def on_interrupt(signum, frame):
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        bar.write("tdn: stopping after this update (Ctrl-C again to abort without a checkpoint)", file=sys.stderr)

    start = time.perf_counter()
    with tqdm(total=o.max_batches, initial=trainer.updates, unit="batch", disable=None, file=sys.stderr) as bar:
        def on_update(progress):
            bar.set_postfix(loss=f"{progress.loss:.4f}", lr=f"{progress.learning_rate:.3g}",
                            img_s=f"{progress.images_per_second:.0f}", refresh=False)
            bar.update()

        previous = signal.signal(signal.SIGINT, on_interrupt)
        try:
            finished = trainer.train(on_update, lambda t: t.checkpoint().save(checkpoint_path),
                                     args.checkpoint_every, lambda: stop["requested"])
        finally:
            signal.signal(signal.SIGINT, previous)
    if not finished:
        print(f"tdn: stopped after update {trainer.updates}; checkpoint {checkpoint_path} "
              f"(continue with --resume {checkpoint_path})", file=sys.stderr)
        return 130
    write_weights(out, run_.graph, trainer.raw_params(), Header(seen=trainer.seen))
    names = out.with_suffix(".names")
    _write_text(names, "\n".join(dataset.names) + "\n")
    wrote = [str(out), str(names)]
    if args.classes:
        _write_text(out.with_suffix(".cfg"), run_.cfg_text)
        wrote.append(str(out.with_suffix(".cfg")))
    print(f"tdn: {trainer.updates} updates, {trainer.seen} images seen, {time.perf_counter() - start:.1f} s; "
          f"skipped {dataset.skipped} unreadable; wrote {', '.join(wrote)}", file=sys.stderr)
    return 0
