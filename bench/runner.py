"""What a benchmark is, and the command line that runs one or all of them.

A benchmark is a name, three sizes (``quick`` for a smoke run, ``default`` for a few minutes
on a 2-core machine, ``full`` for the README's figures) and a ``measure`` function returning
:class:`~bench.figures.Figure` s. ``python -m bench.<module>`` gets an option per size field.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from bench.figures import Figure, render
from bench.seed import Catalogue

S = TypeVar("S")
SIZES = ("quick", "default", "full")


@dataclass
class Context:
    """What every benchmark of one invocation shares: a folder, the seeded stores, notes."""

    workdir: Path
    catalogue: Catalogue
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Benchmark(Generic[S]):
    """One benchmark: its sizes and the function that measures at one of them."""

    name: str
    summary: str
    sizes: Mapping[str, S]
    measure: Callable[[S, Context], list[Figure]]
    unavailable: Callable[[], str | None] = lambda: None  # why it cannot run here, if so


def load_note() -> str:
    """The machine's load now: every figure moves with it."""
    return f"1-minute load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def run(
    benchmarks: Sequence[tuple[Benchmark[Any], Any]],
    json_path: Path | None = None,
    seeds: Path | None = None,
) -> list[Figure]:
    """Measure each benchmark at its size, print the table and notes, write JSON if asked.

    Seeded stores are kept in ``seeds`` (and reused from there) when it is given.
    """
    figures: list[Figure] = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chachaml-bench-") as tmp:
        if seeds is not None:
            seeds.mkdir(parents=True, exist_ok=True)
        context = Context(Path(tmp), Catalogue(seeds or Path(tmp)))
        context.notes.append(f"at the start: {load_note()}")
        for bench, size in benchmarks:
            reason = bench.unavailable()
            if reason is not None:
                context.notes.append(f"{bench.name}: not run ({reason})")
                continue
            print(f"{bench.name}: {bench.summary}", file=sys.stderr)
            workdir = context.workdir / bench.name
            workdir.mkdir()
            figures += bench.measure(size, dataclasses.replace(context, workdir=workdir))
        if context.catalogue.seeded:
            context.notes.append(
                f"seeded {context.catalogue.seeded:,} runs through the store's public"
                f" operations in {context.catalogue.seconds:.0f} s"
                f" ({context.catalogue.seeded / context.catalogue.seconds:,.0f} runs/s)"
            )
    seconds = time.perf_counter() - began
    context.notes.append(f"at the end: {load_note()}; {seconds:.0f} s in all")
    print(render(figures))
    print("\n".join(f"* {note}" for note in context.notes))
    if json_path is not None:
        document = {
            "sizes": {b.name: dataclasses.asdict(s) for b, s in benchmarks},
            "seconds": seconds,
            "notes": context.notes,
            "figures": [f.as_dict() for f in figures],
            "targets_met": all(f.met is not False for f in figures),
        }
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    return figures


def size_parser(parser: argparse.ArgumentParser) -> None:
    """``--quick`` / ``--full`` and ``--json``: the options every command shares."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--quick", action="store_true", help="smoke sizes, seconds to a minute")
    which.add_argument("--full", action="store_true", help="the README's sizes (long)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write figures as JSON")
    parser.add_argument(
        "--seeds",
        type=Path,
        metavar="DIR",
        help="keep the seeded stores in DIR and reuse them next time (seeding is most of --full)",
    )


def chosen_size(args: argparse.Namespace) -> str:
    """``quick``, ``full`` or ``default`` from the parsed options."""
    return "quick" if args.quick else "full" if args.full else "default"


def main_one(bench: Benchmark[Any], argv: Sequence[str] | None = None) -> int:
    """``python -m bench.<module>``: one benchmark, each size field an option."""
    default = bench.sizes["default"]
    parser = argparse.ArgumentParser(
        prog=f"python -m bench.{bench.name}", description=bench.summary
    )
    size_parser(parser)
    for f in dataclasses.fields(default):
        value = getattr(default, f.name)
        kind = type(value[0]) if isinstance(value, tuple) else type(value)
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=kind,
            nargs="+" if isinstance(value, tuple) else None,
            help=f"default {value}; --quick {getattr(bench.sizes['quick'], f.name)};"
            f" --full {getattr(bench.sizes['full'], f.name)}",
        )
    args = parser.parse_args(argv)
    size = bench.sizes[chosen_size(args)]
    given = {
        f.name: tuple(v) if isinstance(v, list) else v
        for f in dataclasses.fields(size)
        if (v := getattr(args, f.name)) is not None
    }
    figures = run([(bench, dataclasses.replace(size, **given))], args.json, args.seeds)
    return 0 if all(f.met is not False for f in figures) else 1
