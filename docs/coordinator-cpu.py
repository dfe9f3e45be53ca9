# Interleaved: serial vs multiprocess --workers W; tree CPU (wait4) and the coordinator's own CPU (report cpu_percent x wall).
import resource, subprocess, sys, statistics as st, os, json
P = os.environ.get('P', '/work/main/target/release/parpipe'); F = os.environ['F']; N = int(os.environ.get('N', '5'))
lines = sum(1 for _ in open(F, 'rb'))
ws = [int(w) for w in os.environ.get('W', '1,2,4,8').split(',')]
def run(args, out):
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([P, 'run', '-q', '--input', F, '--out', out] + args, check=True, stdout=subprocess.DEVNULL)
    a = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = json.load(open(out + '/report.json'))
    return a.ru_utime - b.ru_utime + a.ru_stime - b.ru_stime, r['cpu_percent'] / 100 * r['wall_seconds'], r['wall_seconds']
res = {'serial': []} | {w: [] for w in ws}
for i in range(N):
    res['serial'].append(run(['--mode', 'serial'], '/tmp/cs'))
    for w in ws:
        res[w].append(run(['--mode', 'multiprocess', '--workers', str(w)], f'/tmp/cw{w}'))
s = st.median(x[0] for x in res['serial'])
print(f'{lines} lines, {N} rounds; serial tree CPU {s:.3f} s')
for w in ws:
    tree = st.median(x[0] for x in res[w]); ratio = st.median(x[0] / y[0] for x, y in zip(res[w], res['serial']))
    coord = st.median(x[1] for x in res[w]); share = st.median(x[1] / x[0] for x in res[w])
    print(f'--workers {w}: tree {tree:.3f} s = {ratio:.2f}x serial; coordinator {coord:.4f} s = {share:.1%}, {coord / lines * 1e9:.1f} ns/line')
