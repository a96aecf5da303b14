// bench/etcd-store at its smallest (1 s per throughput figure, 4 writers), run as `npm run bench`
// runs it, against a real etcd member it starts: all four rows print an LMDB figure, an etcd figure
// and their ratio, each a positive number. Skipped without an etcd binary. Speed is the bench's.

import t from 'tap'
import { figuresOf, runBench } from '../helpers/bench-child.js'
import { etcdMissing } from '../helpers/etcd.js'

const ROWS = ['creates/s, 1 writer awaiting each', 'creates/s, 4 concurrent writers', 'create issued → watch event, median ms', 'create issued → watch event, p99 ms']

t.test('prints each row for LMDB and etcd with the etcd/LMDB ratio', async (t) => {
  const missing = etcdMissing()
  if (missing) return t.plan(0, missing)
  const r = await runBench('etcd-store', { BENCH_SECONDS: '1', BENCH_WRITERS: '4' }, 180)
  t.comment(`${r.stdout}(${r.seconds.toFixed(1)} s)`)
  t.equal(r.code, 0, `the bench exits 0 (stderr: ${r.stderr.slice(-2000)})`)
  for (const row of ROWS) {
    const [lmdb, etcd, ratio] = figuresOf(r.stdout, new RegExp(`${row.replace(/[()/]/g, '\\$&')}\\s+LMDB\\s+(\\d+(?:\\.\\d)?)\\s+etcd\\s+(\\d+(?:\\.\\d)?)\\s+etcd/LMDB (\\d+\\.\\d\\d)x`), row)
    t.ok(lmdb! > 0 && etcd! > 0 && ratio! > 0, `${row}: LMDB ${lmdb}, etcd ${etcd}, ratio ${ratio}, all positive`)
  }
  t.notMatch(r.stdout, /NaN|Infinity/, 'no figure is NaN or infinite')
})
