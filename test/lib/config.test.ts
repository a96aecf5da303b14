// The one config schema: defaults, environment, and validation errors that name the flag.

import { join, resolve } from 'node:path'
import t from 'tap'
import { ConfigError } from '../../src/lib/config-errors.js'
import { HUB_FLAGS, optionAttribute, parseDurationMs, FlagReason, resolveHubConfig, resolveKubeconfigPath, resolveAgentFlags, hostnameAsNodeName } from '../../src/lib/config.js'

const HOME_ENV = { HOME: '/home/pi' }

t.test('with no flags, every default applies', async (t) => {
  const config = resolveHubConfig({}, { BRAMBLE_DATA_DIR: '/srv/bramble' })
  t.same(config, {
    dataDir: '/srv/bramble',
    listen: '0.0.0.0',
    advertise: '127.0.0.1',
    apiPort: 6443,
    logLevel: 'info',
    store: { kind: 'lmdb' },
    storeMapSizeBytes: 1024 ** 3,
    mqttPort: 8883,
    mqttUrl: '',
    mosquittoPidFile: '',
    heartbeatIntervalMs: 5000,
    nodeGracePeriodMs: 20_000,
    leaderLeaseMs: 5_000,
    defaultTolerationSeconds: 30,
    unhealthyZoneThreshold: 0.55,
    nodeEvictionRatePerSecond: 0.1,
    schedulerStrategy: 'spread',
    serviceCidr: '10.43.0.0/16',
    clusterCidr: '10.42.0.0/16',
    nodeCidrMaskSize: 24,
  })
})

t.test('--cluster-cidr and --node-cidr-mask-size are parsed and checked together, naming the flag', async (t) => {
  const config = resolveHubConfig({ clusterCidr: '10.244.0.0/16', nodeCidrMaskSize: '26' }, HOME_ENV)
  t.equal(config.clusterCidr, '10.244.0.0/16')
  t.equal(config.nodeCidrMaskSize, 26)
  t.throws(() => resolveHubConfig({ clusterCidr: '10.42.0.0' }, HOME_ENV), /--cluster-cidr must be an IPv4 CIDR/)
  t.throws(() => resolveHubConfig({ clusterCidr: '10.42.1.0/16' }, HOME_ENV), /--cluster-cidr has host bits set.*10\.42\.0\.0\/16/)
  t.throws(() => resolveHubConfig({ clusterCidr: '10.0.0.0/8' }, HOME_ENV), /--cluster-cidr 10\.0\.0\.0\/8 overlaps --service-cidr 10\.43\.0\.0\/16/)
  t.throws(() => resolveHubConfig({ nodeCidrMaskSize: '/24' }, HOME_ENV), /--node-cidr-mask-size must be a prefix length between 8 and 28/)
  t.throws(() => resolveHubConfig({ nodeCidrMaskSize: '30' }, HOME_ENV), /--node-cidr-mask-size must be a prefix length between 8 and 28/)
  t.throws(() => resolveHubConfig({ clusterCidr: '10.42.0.0/24', nodeCidrMaskSize: '16' }, HOME_ENV), /--node-cidr-mask-size must be at least the prefix length of --cluster-cidr 10\.42\.0\.0\/24 \(\/24\)/)
  t.throws(() => resolveHubConfig({ clusterCidr: '10.0.0.0/8', serviceCidr: '192.168.0.0/16', nodeCidrMaskSize: '28' }, HOME_ENV), /--node-cidr-mask-size may split --cluster-cidr 10\.0\.0\.0\/8 into at most 65536 node subnets \(at most \/24\)/)
  try {
    resolveHubConfig({ clusterCidr: 'x' }, HOME_ENV)
  } catch (err) {
    t.ok(err instanceof ConfigError && err.flag === '--cluster-cidr', 'a ConfigError naming the flag')
  }
})

t.test('--service-cidr takes an IPv4 range and refuses others, naming the flag', async (t) => {
  t.equal(resolveHubConfig({ serviceCidr: '10.96.0.0/12' }, HOME_ENV).serviceCidr, '10.96.0.0/12')
  t.throws(() => resolveHubConfig({ serviceCidr: '10.43.0.0' }, HOME_ENV), /--service-cidr must be an IPv4 CIDR/)
  t.throws(() => resolveHubConfig({ serviceCidr: '10.43.0.1/16' }, HOME_ENV), /--service-cidr has host bits set.*10\.43\.0\.0\/16/)
  t.throws(() => resolveHubConfig({ serviceCidr: '10.0.0.0/31' }, HOME_ENV), /--service-cidr must have a prefix length between \/8 and \/30/)
  t.throws(() => resolveHubConfig({ serviceCidr: '300.1.0.0/16' }, HOME_ENV), /--service-cidr must be an IPv4 CIDR/)
})

t.test('the broker, heartbeat, grace period and scheduler flags are parsed and checked', async (t) => {
  const config = resolveHubConfig({ mqttPort: '0', mqttUrl: 'mqtt://127.0.0.1:1883', heartbeatInterval: '2s', nodeGracePeriod: '1m', scheduler: 'binpack' }, HOME_ENV)
  t.equal(config.mqttPort, 0)
  t.equal(config.mqttUrl, 'mqtt://127.0.0.1:1883')
  t.equal(config.heartbeatIntervalMs, 2000)
  t.equal(config.nodeGracePeriodMs, 60_000)
  t.equal(config.schedulerStrategy, 'binpack')
  t.throws(() => resolveHubConfig({ mqttUrl: 'http://x' }, HOME_ENV), /--mqtt-url must be an mqtt:\/\/ or mqtts:\/\/ URL/)
  t.throws(() => resolveHubConfig({ scheduler: 'random' }, HOME_ENV), /--scheduler must be spread or binpack/)
  t.throws(() => resolveHubConfig({ mqttPort: '70000' }, HOME_ENV), /--mqtt-port must be an integer 0-65535/)
})

t.test('the eviction flags are parsed and refused with the flag named', async (t) => {
  const config = resolveHubConfig({ defaultTolerationSeconds: '120', unhealthyZoneThreshold: '0.7', nodeEvictionRate: '2' }, HOME_ENV)
  t.equal(config.defaultTolerationSeconds, 120)
  t.equal(config.unhealthyZoneThreshold, 0.7)
  t.equal(config.nodeEvictionRatePerSecond, 2)
  t.equal(resolveHubConfig({ defaultTolerationSeconds: '0' }, HOME_ENV).defaultTolerationSeconds, 0, 'zero: evict at once')
  t.throws(() => resolveHubConfig({ defaultTolerationSeconds: '30s' }, HOME_ENV), /--default-toleration-seconds must be a whole number of seconds/)
  t.throws(() => resolveHubConfig({ unhealthyZoneThreshold: '1.5' }, HOME_ENV), /--unhealthy-zone-threshold must be a fraction above 0 and at most 1/)
  t.throws(() => resolveHubConfig({ unhealthyZoneThreshold: '0' }, HOME_ENV), /--unhealthy-zone-threshold must be a fraction/)
  t.throws(() => resolveHubConfig({ nodeEvictionRate: '0' }, HOME_ENV), /--node-eviction-rate must be a number of nodes per second above 0/)
})

t.test('--secrets-dir: empty (the default) for /run/bramble/<clusterId>/pods, else an absolute directory', async (t) => {
  t.equal(resolveAgentFlags({}, HOME_ENV).secretsDir, '')
  t.equal(resolveAgentFlags({ secretsDir: '/dev/shm/bramble' }, HOME_ENV).secretsDir, '/dev/shm/bramble')
  t.throws(() => resolveAgentFlags({ secretsDir: 'run/secrets' }, HOME_ENV), /--secrets-dir must be an absolute directory path, got "run\/secrets"/)
})

t.test('--pod-mtu: 0 (the default) for the link MTU minus 80, else an MTU the flag names when refused', async (t) => {
  t.equal(resolveAgentFlags({}, HOME_ENV).podMtu, 0)
  t.equal(resolveAgentFlags({ podMtu: '1380' }, HOME_ENV).podMtu, 1380)
  t.throws(() => resolveAgentFlags({ podMtu: '100' }, HOME_ENV), /--pod-mtu must be an MTU in bytes \(576-9000\), or 0 for the link MTU minus 80, got "100"/)
  t.throws(() => resolveAgentFlags({ podMtu: 'auto' }, HOME_ENV), /--pod-mtu must be an MTU in bytes/)
})

t.test('agent flags: defaults, parsing and refusals that name the flag', async (t) => {
  const flags = resolveAgentFlags({ hub: '10.0.0.1:6443', token: ' K10abc ', nodeName: 'pi-1', reserveCpu: '250m', reserveMemory: '256Mi' }, HOME_ENV)
  t.equal(flags.hub, '10.0.0.1:6443')
  t.equal(flags.token, 'K10abc')
  t.equal(flags.nodeName, 'pi-1')
  t.equal(flags.reserveCpuMilli, 250)
  t.equal(flags.reserveMemoryBytes, 256 * 1024 ** 2)
  t.equal(flags.dockerHost, 'unix:///var/run/docker.sock')
  t.equal(resolveAgentFlags({ reserveCpu: '0.5' }, HOME_ENV).reserveCpuMilli, 500)
  t.throws(() => resolveAgentFlags({ nodeName: 'Pi_1' }, HOME_ENV), /--node-name must be a DNS-1123 label/)
  t.throws(() => resolveAgentFlags({ hub: 'https://x/y' }, HOME_ENV), /--hub must be HOST or HOST:PORT/)
  t.throws(() => resolveAgentFlags({ dockerHost: 'docker.sock' }, HOME_ENV), /--docker-host must be/)
  t.throws(() => resolveAgentFlags({ reserveCpu: 'lots' }, HOME_ENV), /--reserve-cpu must be a CPU amount/)
  t.equal(hostnameAsNodeName('Raspberry_Pi.local'), 'raspberry-pi')
})

t.test('flags as commander hands them over are parsed into typed values', async (t) => {
  const config = resolveHubConfig({ dataDir: 'rel/dir', listen: '10.0.0.2', apiPort: '0', logLevel: 'warn', storeMapSize: '512Mi' }, HOME_ENV)
  t.equal(config.dataDir, resolve('rel/dir'), 'the data dir is made absolute')
  t.equal(config.apiPort, 0)
  t.equal(config.logLevel, 'warn')
  t.equal(config.storeMapSizeBytes, 512 * 1024 ** 2)
})

t.test('advertise defaults to a specific listen address, else to 127.0.0.1', async (t) => {
  t.equal(resolveHubConfig({ listen: '192.168.1.5' }, HOME_ENV).advertise, '192.168.1.5')
  t.equal(resolveHubConfig({ listen: '0.0.0.0' }, HOME_ENV).advertise, '127.0.0.1')
  t.equal(resolveHubConfig({ listen: '::' }, HOME_ENV).advertise, '127.0.0.1')
  t.equal(resolveHubConfig({ listen: '0.0.0.0', advertise: 'hub.lan' }, HOME_ENV).advertise, 'hub.lan')
})

t.test('a flag wins over its environment variable, which wins over the default', async (t) => {
  t.equal(resolveHubConfig({}, { BRAMBLE_LOG_LEVEL: 'debug' }).logLevel, 'debug')
  t.equal(resolveHubConfig({ logLevel: 'error' }, { BRAMBLE_LOG_LEVEL: 'debug' }).logLevel, 'error')
  t.equal(resolveHubConfig({ dataDir: '/a' }, { BRAMBLE_DATA_DIR: '/b' }).dataDir, '/a')
})

t.test('each bad value is refused with a ConfigError naming the flag and the value', async (t) => {
  const cases: [Record<string, string>, string][] = [
    [{ apiPort: 'abc' }, '--api-port must be an integer 0-65535, got "abc"'],
    [{ apiPort: '65536' }, '--api-port must be an integer 0-65535, got "65536"'],
    [{ apiPort: '-1' }, '--api-port must be an integer 0-65535, got "-1"'],
    [{ apiPort: '6443.5' }, '--api-port must be an integer 0-65535, got "6443.5"'],
    [{ listen: 'eth0' }, '--listen must be an IP address, got "eth0"'],
    [{ advertise: 'not a host!' }, '--advertise must be an IP address or a DNS name, got "not a host!"'],
    [{ logLevel: 'loud' }, '--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
    [{ storeMapSize: 'lots' }, '--store-map-size must be a size of at least 1Mi (bytes, or with a unit: 512Mi, 2Gi), got "lots"'],
    [{ dataDir: '' }, '--data-dir must name a directory, got ""'],
  ]
  for (const [raw, message] of cases) {
    const flag = message.split(' ')[0]
    t.throws(() => resolveHubConfig(raw, HOME_ENV), { code: 'BRAMBLE_CONFIG_INVALID', flag, message }, flag)
  }
})

t.test('a bad environment variable is named as such', async (t) => {
  const err = t.throws(() => resolveHubConfig({}, { BRAMBLE_LOG_LEVEL: 'chatty' })) as ConfigError
  t.equal(err.flag, 'BRAMBLE_LOG_LEVEL')
  t.ok(err instanceof ConfigError)
})

t.test('every flag is documented and maps to the attribute commander gives it', async (t) => {
  for (const [key, spec] of Object.entries(HUB_FLAGS)) {
    t.match(spec.flag, /^--[a-z][a-z-]*$/, `${key} has a kebab-case flag`)
    t.ok(spec.description.length > 10, `${key} is described`)
    t.ok(spec.defaultText, `${key} shows its default`)
  }
  t.equal(optionAttribute('--api-port'), 'apiPort')
  t.equal(optionAttribute('--store-map-size'), 'storeMapSize')
})

t.test('durations read as people write them', async (t) => {
  t.equal(parseDurationMs('24h'), 86_400_000)
  t.equal(parseDurationMs('1h30m'), 5_400_000)
  t.equal(parseDurationMs('90s'), 90_000)
  t.equal(parseDurationMs('7d'), 7 * 86_400_000)
  for (const bad of ['', '24', 'h', '1x', '0s', '1h 30m']) t.throws(() => parseDurationMs(bad), FlagReason, bad)
})

t.test('client commands find the kubeconfig: flag, then KUBECONFIG, then the data dir', async (t) => {
  t.equal(resolveKubeconfigPath('/x/k.yaml', { KUBECONFIG: '/y/k.yaml' }), '/x/k.yaml')
  t.equal(resolveKubeconfigPath(undefined, { KUBECONFIG: '/y/k.yaml:/z/k.yaml' }), '/y/k.yaml')
  t.equal(resolveKubeconfigPath(undefined, { BRAMBLE_DATA_DIR: '/srv/b' }), join('/srv/b', 'kubeconfig.yaml'))
})

t.test('--leader-lease takes whole seconds from 2s to 60s, naming the flag otherwise', async (t) => {
  t.equal(resolveHubConfig({ dataDir: '/tmp/ha-flags', leaderLease: '8s' }, {}).leaderLeaseMs, 8_000)
  for (const bad of ['1s', '90s', '2500ms']) t.throws(() => resolveHubConfig({ dataDir: '/tmp/ha-flags', leaderLease: bad }, {}), /--leader-lease/, `${bad} is refused`)
})
