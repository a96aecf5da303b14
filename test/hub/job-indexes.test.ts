// The compact index lists of Indexed Jobs (status.completedIndexes), both ways.

import t from 'tap'
import { formatIndexes, parseIndexes } from '../../src/hub/job-indexes.js'

t.test('formats runs of indexes as ranges and parses them back', async (t) => {
  t.equal(formatIndexes(new Set([5, 0, 1, 2, 7, 8])), '0-2,5,7-8')
  t.same([...parseIndexes('0-2,5,7-8')], [0, 1, 2, 5, 7, 8])
  t.equal(formatIndexes(new Set()), '')
  t.same([...parseIndexes('')], [])
})

t.test('skips what is not an index list (the do-nothing case for garbage)', async (t) => {
  t.same([...parseIndexes('a,3,-1,4-x')], [3])
  t.same([...parseIndexes(undefined)], [])
})
