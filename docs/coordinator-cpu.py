#!/usr/bin/env python3
"""Multiprocess CPU accounting: serial against `--mode multiprocess
--workers W` for each W, interleaved round by round, on one file.

Usage: cargo build --release
       target/release/parpipe generate --records 1000000 --output gen-1m.log
       F=gen-1m.log N=5 W=1,2,4,8 python3 docs/coordinator-cpu.py

Prints, per worker count, the process tree's CPU time (user+sys of the
run and its workers, from wait4) against serial's (median of per-round
ratios), and the coordinator's own CPU (the report's `coordinator_cpu_percent` x
wall, which is getrusage(RUSAGE_SELF)): in seconds, as a share of the
tree's, and per input line. P=... picks the binary."""
import resource, subprocess, sys, statistics as st, os, json, shutil, tempfile
P = os.environ.get('P', 'target/release/parpipe'); F = os.environ['F']; N = int(os.environ.get('N', '5'))
lines = sum(1 for _ in open(F, 'rb'))
ws = [int(w) for w in os.environ.get('W', '1,2,4,8').split(',')]
def run(args, out):
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([P, 'run', '-q', '--input', F, '--out', out] + args, check=True, stdout=subprocess.DEVNULL)
    a = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = json.load(open(out + '/report.json'))
    return a.ru_utime - b.ru_utime + a.ru_stime - b.ru_stime, r.get('coordinator_cpu_percent', r['cpu_percent']) / 100 * r['wall_seconds'], r['wall_seconds']
res = {'serial': []} | {w: [] for w in ws}
T = tempfile.mkdtemp()
for i in range(N):
    res['serial'].append(run(['--mode', 'serial'], f'{T}/serial'))
    for w in ws:
        res[w].append(run(['--mode', 'multiprocess', '--workers', str(w)], f'{T}/w{w}'))
s = st.median(x[0] for x in res['serial'])
print(f'{lines} lines, {N} rounds; serial tree CPU {s:.3f} s')
for w in ws:
    tree = st.median(x[0] for x in res[w]); ratio = st.median(x[0] / y[0] for x, y in zip(res[w], res['serial']))
    coord = st.median(x[1] for x in res[w]); share = st.median(x[1] / x[0] for x in res[w])
    print(f'--workers {w}: tree {tree:.3f} s = {ratio:.2f}x serial; coordinator {coord:.4f} s = {share:.1%}, {coord / lines * 1e9:.1f} ns/line')
shutil.rmtree(T)
