// bench/'s in-memory replica meets the Replica contract the LMDB one does.

import t from 'tap'
import { memoryReplicas } from '../../bench/memory-replica.js'
import { replicaContract } from '../contract/replica.js'

let n = 0
replicaContract(t, async () => {
  const open = memoryReplicas()
  const path = `/simulated/replica-${n++}`
  return () => open(path)
})
