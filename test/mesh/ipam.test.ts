// IPv4 address management: CIDR parsing with errors that name the field, block arithmetic, and
// the allocator's lowest-free, reserved, exhausted, released and claimed blocks.

import t from 'tap'
import { CidrInvalidError, IpamConflictError, IpamExhaustedError } from '../../src/mesh/errors.js'
import { CidrAllocator, addressAt, blockCount, containsCidr, containsIp, nthBlock, overlaps, parseCidr } from '../../src/mesh/ipam.js'

t.test('parses a CIDR and normalises it', async (t) => {
  const c = parseCidr(' 10.42.0.0/16 ')
  t.same(c, { text: '10.42.0.0/16', base: 10 * 2 ** 24 + 42 * 2 ** 16, prefix: 16, size: 65536 })
  t.equal(parseCidr('0.0.0.0/0').size, 2 ** 32)
  t.equal(parseCidr('10.43.0.10/32').text, '10.43.0.10/32')
})

t.test('refuses bad CIDRs with the field named and the reason', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['10.42.0.0', /--cluster-cidr must be an IPv4 CIDR such as 10.42.0.0\/16, got "10.42.0.0"/],
    ['10.42.0.0/33', /must be an IPv4 CIDR/],
    ['10.256.0.0/16', /must be an IPv4 CIDR/],
    ['fd00::/64', /must be an IPv4 CIDR/],
    ['', /must be an IPv4 CIDR/],
    ['10.42.1.0/16', /has host bits set: did you mean 10.42.0.0\/16\?/],
    ['10.0.0.0/4', /must have a prefix length between \/8 and \/30, got \/4/],
  ]
  for (const [text, message] of bad) {
    t.throws(() => parseCidr(text, '--cluster-cidr', { minPrefix: 8, maxPrefix: 30 }), message, text)
    try {
      parseCidr(text, '--cluster-cidr', { minPrefix: 8, maxPrefix: 30 })
    } catch (err) {
      t.ok(err instanceof CidrInvalidError && err.code === 'BRAMBLE_IPAM_CIDR_INVALID' && err.field === '--cluster-cidr', `${text}: typed, field named`)
    }
  }
})

t.test('block arithmetic: count, nth block, containment, overlap, addresses', async (t) => {
  const cluster = parseCidr('10.42.0.0/16')
  t.equal(blockCount(cluster, 24), 256)
  t.equal(blockCount(cluster, 8), 0, 'no block larger than the range')
  t.equal(nthBlock(cluster, 24, 0).text, '10.42.0.0/24')
  t.equal(nthBlock(cluster, 24, 255).text, '10.42.255.0/24')
  t.throws(() => nthBlock(cluster, 24, 256), RangeError)
  t.ok(containsIp(cluster, '10.42.7.9'))
  t.notOk(containsIp(cluster, '10.43.0.1'))
  t.ok(containsCidr(cluster, parseCidr('10.42.3.0/24')))
  t.notOk(containsCidr(parseCidr('10.42.3.0/24'), cluster))
  t.ok(overlaps(cluster, parseCidr('10.0.0.0/8')))
  t.notOk(overlaps(cluster, parseCidr('10.43.0.0/16')))
  t.equal(addressAt(parseCidr('10.42.3.0/24'), 1), '10.42.3.1')
})

t.test('hands out the lowest free block, then the next', async (t) => {
  const a = new CidrAllocator({ range: '10.42.0.0/16', blockPrefix: 24, what: 'pod subnet' })
  t.equal(a.allocate('n1'), '10.42.0.0/24')
  t.equal(a.allocate('n2'), '10.42.1.0/24')
  t.equal(a.holderOf('10.42.1.0/24'), 'n2')
  t.equal(a.used, 2)
  t.equal(a.free, 254)
})

t.test('a released block is handed out again', async (t) => {
  const a = new CidrAllocator({ range: '10.42.0.0/16', blockPrefix: 24 })
  a.allocate('n1')
  a.allocate('n2')
  a.allocate('n3')
  t.ok(a.release('10.42.1.0/24'))
  t.notOk(a.release('10.42.1.0/24'), 'releasing twice is a no-op')
  t.notOk(a.release('192.168.0.0/24'), 'not a block of this range')
  t.equal(a.allocate('n4'), '10.42.1.0/24')
  t.equal(a.allocate('n5'), '10.42.3.0/24')
})

t.test('runs out with a typed error naming the range', async (t) => {
  const a = new CidrAllocator({ range: '10.42.0.0/22', blockPrefix: 24, what: 'pod subnet' })
  for (let i = 0; i < 4; i++) a.allocate(`n${i}`)
  t.equal(a.free, 0)
  t.throws(() => a.allocate('n4'), { name: 'IpamExhaustedError', code: 'BRAMBLE_IPAM_EXHAUSTED', message: /no free pod subnet left in 10\.42\.0\.0\/22/ })
  a.release('10.42.2.0/24')
  t.equal(a.allocate('n4'), '10.42.2.0/24', 'room again once one is freed')
})

t.test('single addresses skip the network, broadcast and reserved addresses', async (t) => {
  const a = new CidrAllocator({ range: '10.43.0.0/29', blockPrefix: 32, reserved: ['10.43.0.1', '10.43.0.4/31'], what: 'cluster IP' })
  const got: string[] = []
  for (;;) {
    try {
      got.push(a.allocate(`svc${got.length}`))
    } catch (err) {
      t.ok(err instanceof IpamExhaustedError)
      break
    }
  }
  t.same(got, ['10.43.0.2', '10.43.0.3', '10.43.0.6'])
  t.throws(() => a.claim('10.43.0.1', 'x'), { name: 'IpamConflictError', message: /10\.43\.0\.1 is reserved/ })
})

t.test('claims blocks read back from the store and refuses ones it cannot hold', async (t) => {
  const a = new CidrAllocator({ range: '10.42.0.0/16', blockPrefix: 24 })
  a.claim('10.42.0.0/24', 'n1')
  a.claim('10.42.2.0/24', 'n2')
  a.claim('10.42.2.0/24', 'n2')
  t.equal(a.used, 2, 'claiming again for the same holder changes nothing')
  t.equal(a.allocate('n3'), '10.42.1.0/24', 'the gap is used')
  t.throws(() => a.claim('10.42.2.0/24', 'n9'), IpamConflictError, 'held by another')
  t.throws(() => a.claim('10.43.0.0/24', 'n9'), /is outside 10\.42\.0\.0\/16/)
  t.throws(() => a.claim('10.42.4.0/23', 'n9'), /is not a \/24/)
  t.throws(() => a.claim('10.42.4.1/24', 'n9'), /has host bits set/)
})

t.test('concurrent allocations never share a block', async (t) => {
  const a = new CidrAllocator({ range: '10.42.0.0/16', blockPrefix: 24 })
  const got = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
    await new Promise((resolve) => setImmediate(resolve))
    return a.allocate(`n${i}`)
  }))
  t.equal(new Set(got).size, 200)
  t.equal(a.used, 200)
})

t.test('refuses a block size the range cannot hold', async (t) => {
  t.throws(() => new CidrAllocator({ range: '10.42.0.0/16', blockPrefix: 12 }), /block size must be between \/16 .* and \/32/)
  t.throws(() => new CidrAllocator({ range: '10.42.0.1/16', blockPrefix: 24 }), /range has host bits set/)
})
