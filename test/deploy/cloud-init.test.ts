// deploy/pi/cloud-init/user-data.yaml: valid cloud-config whose first boot installs the agent with
// the hub and token it names, turns the memory cgroup on in cmdline.txt exactly once, and reboots
// only when it did. (install-script.test.ts runs its first-boot script in a Debian root.)

import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { REPO_ROOT } from '../helpers/hub-process.js'

const USER_DATA = join(REPO_ROOT, 'deploy', 'pi', 'cloud-init', 'user-data.yaml')
const text = readFileSync(USER_DATA, 'utf8')
const doc = parse(text) as {
  write_files: { path: string; permissions: string; content: string }[]
  runcmd: (string | string[])[]
  power_state: { mode: string; condition: string }
}
const written = (path: string) => {
  const file = doc.write_files.find((f) => f.path === path)
  if (!file) throw new Error(`user-data writes no ${path}`)
  return file
}

t.test('cloud-config that runs the first-boot install as an agent, then reboots only when asked to', async (t) => {
  t.equal(text.split('\n')[0], '#cloud-config', 'cloud-init reads only a file that starts so')
  t.same(doc.runcmd[0], ['/usr/local/sbin/bramble-firstboot'])
  const firstboot = written('/usr/local/sbin/bramble-firstboot')
  t.equal(firstboot.permissions, '0700')
  t.match(firstboot.content, /deploy\/pi\/install\.sh --role agent --hub "\$BRAMBLE_HUB" --token "\$BRAMBLE_TOKEN"/)
  const env = written('/etc/bramble/firstboot.env')
  t.equal(env.permissions, '0600', 'it holds the join token')
  t.match(env.content, /^BRAMBLE_HUB=\S+$/m)
  t.match(env.content, /^BRAMBLE_TOKEN=\S+$/m)
  t.same([doc.power_state.mode, doc.power_state.condition], ['reboot', 'test -f /run/bramble-reboot'])
  t.match(String(doc.runcmd[1]), /bramble-memory-cgroup "\$cmdline"\; then touch \/run\/bramble-reboot/)

  for (const script of [firstboot.content, written('/usr/local/sbin/bramble-memory-cgroup').content, String(doc.runcmd[1])]) {
    const r = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' })
    t.equal(r.status, 0, `parses as shell: ${r.stderr}`)
  }
})

t.test('the memory cgroup goes onto the one line of cmdline.txt once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pi-cmdline-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const script = join(dir, 'bramble-memory-cgroup')
  writeFileSync(script, written('/usr/local/sbin/bramble-memory-cgroup').content, { mode: 0o755 })
  const cmdline = join(dir, 'cmdline.txt')
  // Raspberry Pi OS Bookworm's line, as shipped.
  const shipped = 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet splash plymouth.ignore-serial-consoles cfg80211.ieee80211_regdom=GB\n'
  writeFileSync(cmdline, shipped)

  t.equal(spawnSync(script, [cmdline]).status, 0, 'changed: a reboot is due')
  t.equal(readFileSync(cmdline, 'utf8'), `${shipped.trimEnd()} cgroup_enable=memory cgroup_memory=1\n`, 'appended to the line, still one line')
  t.equal(spawnSync(script, [cmdline]).status, 1, 'a second boot changes nothing')
  t.equal(readFileSync(cmdline, 'utf8').match(/cgroup_memory=1/g)?.length, 1)

  writeFileSync(cmdline, 'console=tty1 root=/dev/mmcblk0p2 rootwait   ')
  t.equal(spawnSync(script, [cmdline]).status, 0)
  t.equal(readFileSync(cmdline, 'utf8'), 'console=tty1 root=/dev/mmcblk0p2 rootwait cgroup_enable=memory cgroup_memory=1', 'trailing blanks and no newline')
})
