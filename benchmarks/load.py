"""An artificial load: busy processes pinned to every core, to test and measure on a busy machine.

    python benchmarks/load.py [--processes 2] [--seconds 0]           # 0: until killed (Ctrl-C)
    python benchmarks/load.py --processes 2 -- pytest tests/evonas/test_dispatch.py

Each process spins in pure Python (no I/O, no sleeping) with its affinity set to all the cores
this process may use (``os.sched_setaffinity``), so the scheduler shares every core between them
and whatever else runs. With a command after ``--``, the load runs for exactly as long as the
command, whose exit status is returned. Last line: one JSON object (processes, cores, seconds,
the command's exit status, and the load average at the end).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time


def spin(cores: list[int]) -> None:
    """Busy until killed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    x = 0
    while True:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF


def start(processes: int) -> tuple[list[multiprocessing.Process], list[int]]:
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    context = multiprocessing.get_context("spawn")
    spinners = [context.Process(target=spin, args=(cores,), daemon=True, name=f"load-{i}")
                for i in range(processes)]
    for p in spinners:
        p.start()
    return spinners, cores


def stop(spinners: list[multiprocessing.Process]) -> None:
    for p in spinners:
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)
        p.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2, help="busy processes (default 2)")
    parser.add_argument("--seconds", type=float, default=0.0,
                        help="how long, without a command (0: until killed)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- a command to run under the load")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    spinners, cores = start(args.processes)
    print(f"load: {args.processes} busy processes on cores {cores}", file=sys.stderr, flush=True)
    began, code = time.monotonic(), None
    try:
        if command:
            code = subprocess.call(command)
        elif args.seconds > 0:
            time.sleep(args.seconds)
        else:
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        load = os.getloadavg() if hasattr(os, "getloadavg") else None
        stop(spinners)
    print(json.dumps({"processes": args.processes, "cores": cores,
                      "seconds": round(time.monotonic() - began, 1), "command": command or None,
                      "exit_status": code, "loadavg": load}))
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
