// The version skew a hub allows its agents: its own minor version and the one before.

import t from 'tap'
import { agentVersionProblem, parseVersion } from '../../src/api/version-skew.js'

t.test('parses MAJOR.MINOR.PATCH with an optional v and pre-release', async (t) => {
  t.same(parseVersion('1.4.2'), { major: 1, minor: 4, patch: 2 })
  t.same(parseVersion('v0.10.0-rc.1'), { major: 0, minor: 10, patch: 0 })
  t.equal(parseVersion('1.4'), undefined)
  t.equal(parseVersion('bramble'), undefined)
})

t.test('serves agents of its own minor version and the one before', async (t) => {
  t.equal(agentVersionProblem('1.4.0', '1.4.7'), undefined, 'same minor, any patch')
  t.equal(agentVersionProblem('1.4.2', '1.3.9'), undefined, 'one minor older')
  t.equal(agentVersionProblem('0.1.0', '0.1.0'), undefined, 'this release with itself')
  t.equal(agentVersionProblem('0.1.0', '0.0.3'), undefined, 'one minor older on 0.x')
})

t.test('refuses newer agents, and agents more than one minor version older, saying what to upgrade', async (t) => {
  t.equal(agentVersionProblem('1.4.0', '1.5.0'), 'agent 1.5.0 is newer than this hub (1.4.0), which serves agents 1.3 and 1.4: upgrade the hub first')
  t.equal(agentVersionProblem('1.4.0', '2.0.0'), 'agent 2.0.0 is newer than this hub (1.4.0), which serves agents 1.3 and 1.4: upgrade the hub first')
  t.equal(agentVersionProblem('1.4.0', '1.2.9'), 'agent 1.2.9 is too old for this hub (1.4.0), which serves agents 1.3 and 1.4: upgrade the agent one minor version at a time')
  t.equal(agentVersionProblem('2.0.0', '1.9.0'), 'agent 1.9.0 is too old for this hub (2.0.0), which serves agents 2.0: upgrade the agent one minor version at a time')
  t.match(agentVersionProblem('1.4.0', 'latest'), /not a version/)
})
