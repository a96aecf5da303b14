// Reading the hub's `Warning` headers, which the CLI prints as kubectl does.

import t from 'tap'
import { exitCodeOf, PartialFailureError, ServerError, UsageError, ConnectionError } from '../../src/cli/errors.js'
import { warningsOf } from '../../src/cli/http-client.js'

t.test('takes the quoted text of each 299 warning, unescaped', async (t) => {
  t.same(warningsOf('299 - "spec.priorityClassName is kept but not acted on"'), ['spec.priorityClassName is kept but not acted on'])
  t.same(warningsOf(['299 - "one"', '299 - "two \\"quoted\\""']), ['one', 'two "quoted"'])
  t.same(warningsOf('299 - "a", 299 - "b"'), ['a', 'b'], 'several in one header line')
})

t.test('no header, no warnings; an unusual header is passed on as it is', async (t) => {
  t.same(warningsOf(undefined), [])
  t.same(warningsOf('something odd'), ['something odd'])
})

t.test('exit codes: 2 for usage, 1 for what the server or the network said', async (t) => {
  t.equal(exitCodeOf(new UsageError('bad')), 2)
  t.equal(exitCodeOf(new ServerError('deployments.apps "x" not found', 404, 'NotFound')), 1)
  t.equal(exitCodeOf(new ConnectionError('https://127.0.0.1:6443', 'connection refused')), 1)
  t.equal(exitCodeOf(new PartialFailureError(1, 3, 'applied')), 1)
  t.equal(new ConnectionError('https://127.0.0.1:6443', 'connection refused').message, 'cannot reach the hub at https://127.0.0.1:6443: connection refused')
  t.equal(new PartialFailureError(1, 3, 'applied').message, '1 of 3 objects could not be applied')
})
