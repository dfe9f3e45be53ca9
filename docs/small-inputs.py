#!/usr/bin/env python3
"""Small inputs: serial against pipeline and multiprocess mode (default
settings), interleaved round by round, in alternating order.

Usage: cargo build --release
       for n in 25000 50000 100000; do
         target/release/parpipe generate --records $n --output /tmp/gen$n.log
       done
       docs/small-inputs.py [ROUNDS] [SIZES] [KINDS] [MODES]
e.g.   docs/small-inputs.py 21 25000,50000,100000 gen,file \
         serial,serial:--batch-size:8192,pipeline,multiprocess

A mode is `MODE[:FLAG:VALUE...]`; the first one is the reference. `gen`
runs `--records N`, `file` runs `--input /tmp/genN.log` (DIR=... to move
them). Prints, per size, input and mode, the median over rounds of the
per-round wall ratio reference/mode (with quartiles) and of the process
tree's CPU time (user+sys from wait4) mode/reference. Outputs go to a
temporary directory; every run's summary.json must equal the reference
mode's, byte for byte, or the script stops and says which differs."""
import os, shutil, statistics, subprocess, sys, tempfile, time

P = os.environ.get("P", "target/release/parpipe")
DIR = os.environ.get("DIR", "/tmp")
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 21
sizes = (sys.argv[2] if len(sys.argv) > 2 else "25000,50000,100000").split(",")
kinds = (sys.argv[3] if len(sys.argv) > 3 else "gen,file").split(",")
modes = (sys.argv[4] if len(sys.argv) > 4 else "serial,pipeline,multiprocess").split(",")
out = tempfile.mkdtemp()


def run(args, to):
    start = time.perf_counter()
    child = subprocess.Popen([P, "run", "-q", "--out", to] + args)
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        shutil.rmtree(out, ignore_errors=True)
        sys.exit(f"failed: {args}")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


wall, cpu, ref_wall = {}, {}, {}
for r in range(rounds):
    for n in sizes:
        for kind in kinds:
            src = ["--records", n] if kind == "gen" else ["--input", f"{DIR}/gen{n}.log"]
            w, c = {}, {}
            for m in modes if r % 2 == 0 else modes[::-1]:
                mode, *flags = m.split(":")
                w[m], c[m] = run(["--mode", mode] + flags + src, f"{out}/{modes.index(m)}")
            ref = modes[0]
            # Every mode's summary must be the reference's, byte for byte.
            summaries = []
            for i in range(len(modes)):
                with open(f"{out}/{i}/summary.json", "rb") as f:
                    summaries.append(f.read())
            for m, summary in zip(modes, summaries):
                if summary != summaries[0]:
                    shutil.rmtree(out, ignore_errors=True)
                    sys.exit(f"{m} on {n} {kind}: summary.json differs from {ref}'s")
            ref_wall.setdefault((n, kind), []).append(w[ref])
            for m in modes[1:]:
                wall.setdefault((n, kind, m), []).append(w[ref] / w[m])
                cpu.setdefault((n, kind, m), []).append(c[m] / max(c[ref], 1e-6))
for (n, kind), v in sorted(ref_wall.items()):
    print(f"{n} {kind}: {modes[0]} median {1000 * statistics.median(v):.1f} ms")
    for m in modes[1:]:
        x = wall[(n, kind, m)]
        q = statistics.quantiles(x, n=4) if len(x) > 1 else [x[0]] * 3
        print(f"  {m:<32} x {modes[0]}: median {statistics.median(x):.3f} "
              f"(q1 {q[0]:.2f} q3 {q[2]:.2f}); CPU x {statistics.median(cpu[(n, kind, m)]):.3f}")
shutil.rmtree(out, ignore_errors=True)
