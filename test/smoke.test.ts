import t from 'tap'
t.test('works', async (t) => { t.equal(1 + 1, 2) })
