import t from 'tap'
import { Quantity, sumQuantities } from '../../src/api/quantity.js'
import { QuantityError } from '../../src/api/errors.js'

const canon = (s: string | number): string => Quantity.parse(s).toString()

t.test('parses decimal SI, binary SI and exponents to exact amounts', async (t) => {
  t.equal(Quantity.parse('500m').milliValue(), 500n)
  t.equal(Quantity.parse('1.5').milliValue(), 1500n)
  t.equal(Quantity.parse('128Mi').value(), 128n * 1024n * 1024n)
  t.equal(Quantity.parse('1G').value(), 1_000_000_000n)
  t.equal(Quantity.parse('1e3').value(), 1000n)
  t.equal(Quantity.parse('1.5E2').value(), 150n)
  t.equal(Quantity.parse('2k').value(), 2000n)
  t.equal(Quantity.parse('1Ei').value(), 2n ** 60n)
  t.equal(Quantity.parse('3E').value(), 3n * 10n ** 18n)
  t.equal(Quantity.parse('-2').value(), -2n)
  t.equal(Quantity.parse('+2').value(), 2n)
  t.equal(Quantity.parse('.5').milliValue(), 500n)
  t.equal(Quantity.parse(2).value(), 2n)
  t.equal(Quantity.parse(0.25).milliValue(), 250n)
  t.equal(Quantity.parse('100n').nanos, 100n)
})

t.test('rounds up to whole units and milli-units as Kubernetes does', async (t) => {
  t.equal(Quantity.parse('1500m').value(), 2n)
  t.equal(Quantity.parse('1m').value(), 1n)
  t.equal(Quantity.parse('0.0001').milliValue(), 1n)
  t.equal(Quantity.parse('100n').milliValue(), 1n)
  t.equal(Quantity.parse('0').value(), 0n)
  t.equal(Quantity.parse('-1500m').value(), -2n)
})

t.test('sums exactly where floats would drift', async (t) => {
  t.equal(Quantity.parse('0.1').add(Quantity.parse('0.2')).toString(), '300m')
  t.equal(Quantity.parse('0.1').add(Quantity.parse('0.2')).cmp(Quantity.parse('300m')), 0)
  const tenths = Array.from({ length: 10 }, () => Quantity.parse('0.1'))
  t.equal(sumQuantities(tenths).toString(), '1')
  t.equal(Quantity.parse('1Gi').sub(Quantity.parse('512Mi')).toString(), '512Mi')
  t.equal(Quantity.parse('1').sub(Quantity.parse('1')).isZero(), true)
  t.equal(sumQuantities([]).isZero(), true)
})

t.test('compares', async (t) => {
  t.equal(Quantity.parse('500m').cmp(Quantity.parse('1')), -1)
  t.equal(Quantity.parse('1Ki').cmp(Quantity.parse('1k')), 1)
  t.equal(Quantity.parse('1000m').cmp(Quantity.parse('1')), 0)
})

t.test('writes the canonical form', async (t) => {
  t.equal(canon('1.5'), '1500m')
  t.equal(canon('1024Mi'), '1Gi')
  t.equal(canon('0.1'), '100m')
  t.equal(canon('1000'), '1k')
  t.equal(canon('1500'), '1500')
  t.equal(canon('128Mi'), '128Mi')
  t.equal(canon('1536Mi'), '1536Mi')
  t.equal(canon('1.5Gi'), '1536Mi')
  t.equal(canon('512'), '512')
  t.equal(canon('0.5Ki'), '512')
  t.equal(canon('0'), '0')
  t.equal(canon('0Mi'), '0')
  t.equal(canon('1e3'), '1e3')
  t.equal(canon('1.5e3'), '1500')
  t.equal(canon('100e-3'), '100e-3')
  t.equal(canon('-1.5'), '-1500m')
  t.equal(canon('1000E'), '1000E')
  t.equal(JSON.stringify({ cpu: Quantity.parse('0.5') }), '{"cpu":"500m"}')
})

t.test('refuses what is not a quantity, with a clear message', async (t) => {
  for (const bad of ['1.5.5', 'abc', '12Q', '-', '', '1 Gi', 'Gi', '1e', '1ee3', '1e999999999', '1.5Gi2', ' 1', '1KI', 'x'.repeat(500)]) {
    t.throws(() => Quantity.parse(bad), { code: 'BRAMBLE_API_QUANTITY' }, JSON.stringify(bad))
  }
  t.throws(() => Quantity.parse(Number.NaN), { name: 'QuantityError' })
  t.throws(() => Quantity.parse(Infinity), { name: 'QuantityError' })
  try {
    Quantity.parse('12Q')
  } catch (e) {
    t.match((e as Error).message, /quantity "12Q" is invalid: unknown suffix "Q"/)
    t.equal((e as QuantityError).code, 'BRAMBLE_API_QUANTITY')
  }
  t.equal(Quantity.tryParse('abc'), undefined)
  t.equal(Quantity.tryParse({}), undefined)
})
