// Property tests: validation and defaulting survive any mutation of real manifests, and defaulting
// never turns a valid object into an invalid one.

import t from 'tap'
import fc from 'fast-check'
import { applyDefaults } from '../../src/api/defaults.js'
import { validateObject } from '../../src/api/validate.js'
import type { KubeObject } from '../../src/api/types.js'
import { mutate, mutation, SEEDS } from '../helpers/manifest-fuzz.js'

t.test('validation and defaulting never throw on mutated manifests, and defaults keep valid objects valid', async (t) => {
  let stillValid = 0
  fc.assert(
    fc.property(fc.nat({ max: SEEDS.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 3 }), (seed, mutations) => {
      const obj = mutate(SEEDS[seed], mutations)
      const before = validateObject(obj)
      const defaulted = applyDefaults(obj as KubeObject)
      const after = validateObject(defaulted)
      if (before.errors.length === 0) {
        stillValid++
        if (after.errors.length !== 0) throw new Error(`defaults broke a valid object: ${JSON.stringify(after.errors)} for ${JSON.stringify(obj)}`)
      }
    }),
    { numRuns: 2000, seed: 20261129 },
  )
  t.ok(stillValid > 100, `some mutated objects stayed valid (${stillValid}), so the second property was exercised`)
})

t.test('every seed is valid before and after defaults', async (t) => {
  for (const s of SEEDS) {
    t.same(validateObject(s).errors, [], `${s.kind}/${s.metadata.name}`)
    t.same(validateObject(applyDefaults(s)).errors, [], `${s.kind}/${s.metadata.name} defaulted`)
  }
})
