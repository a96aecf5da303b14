// The web dashboard in a real browser: headless Chromium (Debian's `chromium`, driven by
// playwright-core) against a real hub process and a real agent on the shared Docker engine. Logging
// in with the read-only token shows the node as it joins, a pod as it is applied and as it runs
// (through the API's watches, no reload), the node's CPU and memory charts once a few heartbeats
// came in, and the pod's Events; a screenshot is saved in the test's temp dir. A hidden tab lets go
// of its streams and catches up when shown. A wrong token, or none, sees no data.
//
// Skipped with a reason when chromium or a Docker engine is missing (CI installs both).

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { until } from '../helpers/e2e.js'
import { BRAMBLE_BIN, startHubProcess } from '../helpers/hub-process.js'

const CHROMIUM = '/usr/bin/chromium'
const NODE = 'db-node'
const POD = 'db-web'
/** Generous: the machine is shared and slow under load. */
const WAIT_MS = 120_000

const docker = dockerClient()

t.test('the dashboard shows a joining node, an applied pod, its history and events, and nothing to a wrong token', async (t) => {
  if (!existsSync(CHROMIUM)) return t.plan(0, `${CHROMIUM} is missing (apt-get install chromium): the dashboard test needs a headless browser`)
  const noDocker = await dockerUnavailable(docker)
  if (noDocker) return t.plan(0, noDocker)
  await ensureBusyboxImage(docker)

  const root = mkdtempSync(join(tmpdir(), 'db-dashboard-'))
  const hub = await startHubProcess({ dataDir: join(root, 'hub') })
  const clusterId = readFileSync(join(hub.dataDir, 'cluster-id'), 'utf8').trim()
  const readOnlyToken = readFileSync(join(hub.dataDir, 'read-only-token'), 'utf8').trim()
  const joinToken = readFileSync(join(hub.dataDir, 'join-token'), 'utf8').trim()
  let agent: ChildProcess | undefined
  let agentOutput = ''
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(async () => {
    await browser.close().catch(() => {})
    if (agent && agent.exitCode === null) {
      const exited = new Promise((r) => agent!.once('exit', r))
      agent.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))])
      if (agent.exitCode === null) agent.kill('SIGKILL')
    }
    await hub.stop()
    closeApiAgents()
    await removeClusterContainers(docker, clusterId)
    // The data dirs go; the screenshot stays for a person to look at.
    for (const dir of ['hub', 'agent']) rmSync(join(root, dir), { recursive: true, force: true })
    rmSync(join('/run/bramble', clusterId), { recursive: true, force: true })
  })

  // The hub's CA is its own: a person accepts it (or imports ca.crt); the test browser ignores it.
  // Other tests add and remove interfaces on this machine (netns, veths); Chromium then aborts
  // requests in flight with ERR_NETWORK_CHANGED (a navigation fails with it, or is "interrupted by
  // another navigation to chrome-error://", its error page). A person would press reload: so do
  // these, a few times.
  const open = async (): Promise<Page> => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 1000 } })
    const page = await context.newPage()
    for (let attempt = 1; ; attempt++) {
      try {
        await page.goto(`${hub.server}/dashboard`)
        return page
      } catch (err) {
        if (attempt >= 5 || !/ERR_NETWORK_CHANGED|chrome-error:\/\//.test((err as Error).message)) throw err
      }
    }
  }
  /** Submits the token; resolves once the page shows the dashboard or says why not. */
  const logIn = async (page: Page, token: string) => {
    for (let attempt = 1; ; attempt++) {
      await page.fill('#token', token)
      await page.click('#login-form button[type=submit]')
      await page.waitForSelector('#dashboard:not([hidden]), #login-error:not([hidden])', { timeout: WAIT_MS })
      const error = (await page.isVisible('#login-error')) ? await page.textContent('#login-error') : ''
      if (attempt >= 5 || !/Could not reach the hub/.test(error ?? '')) return
    }
  }

  const page = await open()
  await logIn(page, readOnlyToken)
  await page.waitForSelector('#dashboard:not([hidden])', { timeout: WAIT_MS })
  t.ok(await page.isHidden('#login'), 'the login form goes once the token is accepted')
  await page.waitForSelector('#nodes .empty', { timeout: WAIT_MS })
  t.match(await page.textContent('#nodes'), /No nodes have joined yet/, 'an empty cluster says so')

  await t.test('a node appears as its agent joins, and turns Ready', async (t) => {
    agent = spawn(
      process.execPath,
      [BRAMBLE_BIN, 'agent', '--data-dir', join(root, 'agent'), '--hub', new URL(hub.server).host, '--token', joinToken, '--node-name', NODE,
        '--heartbeat-interval', '1s', '--wireguard-interface', 'none', '--cluster-dns', 'none', '--metrics-address', 'none', '--log-level', 'warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    agent.stdout!.on('data', (d) => (agentOutput += d))
    agent.stderr!.on('data', (d) => (agentOutput += d))
    const card = `#nodes article[data-node="${NODE}"]`
    await page.waitForSelector(card, { timeout: WAIT_MS }).catch((err) => {
      throw new Error(`${(err as Error).message}\nagent output:\n${agentOutput}`)
    })
    await page.waitForSelector(`${card} .badge.ready`, { timeout: WAIT_MS })
    t.match(await page.textContent(`${card} h3`), new RegExp(`${NODE}\\s*Ready`), 'the card names the node and its Ready condition')
    t.match(await page.textContent(`${card} .meta`), /linux|amd64|arm/, 'and what the node reported about itself')
    t.match(await page.textContent('#node-count'), '(1)')
  })

  await t.test('a pod appears as it is applied, then shows Running on its node, without a reload', async (t) => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: POD, labels: { app: POD } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'main', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'] }],
      },
    }
    const created = await apiRequest({ server: hub.server, ca: hub.ca, token: hub.token }, 'POST', '/api/v1/namespaces/default/pods', pod)
    t.equal(created.status, 201, `created (${created.json?.message ?? created.status})`)
    const chip = `#pods tr[data-node="${NODE}"] .pod[data-pod="default/${POD}"]`
    await page.waitForSelector(chip, { timeout: WAIT_MS })
    await page.waitForSelector(`${chip}[data-phase="Running"]`, { timeout: WAIT_MS })
    t.match(await page.textContent('#pod-phases'), /Running: 1/, 'the phase summary counts it')
  })

  await t.test("the node's history charts fill in after a few heartbeats", async (t) => {
    const card = `#nodes article[data-node="${NODE}"]`
    // Samples are one per 5 s step and the page polls every 10 s: a line needs two samples.
    const samples = await until('two CPU samples in the chart', async () => {
      const n = Number(await page.getAttribute(`${card} svg.chart-cpu`, 'data-samples'))
      return n >= 2 && n
    }, WAIT_MS)
    t.ok(samples >= 2, `${samples} samples in the CPU chart`)
    const points = (await page.getAttribute(`${card} svg.chart-cpu polyline`, 'points')) ?? ''
    t.ok(points.trim().split(/\s+/).length >= 2, `the CPU line has ${points.trim().split(/\s+/).length} points`)
    t.ok(Number(await page.getAttribute(`${card} svg.chart-memory`, 'data-samples')) >= 2, 'so does the memory chart')
    t.match(await page.textContent(`${card} .metric`), /CPU\s*[\d.]+ %/, 'the current CPU figure is shown')
    t.match(await page.textContent(`${card} .beat`), /last heartbeat \d+ s ago/)
  })

  await t.test('the pod\'s events are listed', async (t) => {
    await page.waitForFunction((name) => document.querySelector('#events tbody')!.textContent!.includes(`pod/${name}`), POD, { timeout: WAIT_MS })
    t.match(await page.textContent('#events tbody'), /Scheduled/, 'the scheduler\'s event among them')
  })

  await t.test('a screenshot of the dashboard is saved', async (t) => {
    const file = join(root, 'dashboard.png')
    await page.screenshot({ path: file, fullPage: true })
    const size = readFileSync(file).length
    t.ok(size > 10_000, `screenshot ${file} (${size} bytes)`)
    t.comment(`dashboard screenshot: ${file}`)
  })

  await t.test('a deleted pod leaves the page through the watch', async (t) => {
    const deleted = await apiRequest({ server: hub.server, ca: hub.ca, token: hub.token }, 'DELETE', `/api/v1/namespaces/default/pods/${POD}`)
    t.ok(deleted.status === 200 || deleted.status === 202, `deleted (${deleted.status})`)
    await page.waitForSelector(`.pod[data-pod="default/${POD}"]`, { state: 'detached', timeout: WAIT_MS })
    t.pass('the chip is gone')
  })

  await t.test('a hidden tab lets go of its streams and catches up once shown again', async (t) => {
    const setHidden = (hidden: boolean) =>
      page.evaluate((h) => {
        Object.defineProperty(document, 'hidden', { value: h, configurable: true })
        document.dispatchEvent(new Event('visibilitychange'))
      }, hidden)
    await setHidden(true)
    t.equal(await page.textContent('#live'), 'paused')
    // Bound to a node that does not exist: it stays Pending and runs nowhere.
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'db-late' }, spec: { nodeName: 'db-absent', containers: [{ name: 'main', image: BUSYBOX_IMAGE }] } }
    t.equal((await apiRequest({ server: hub.server, ca: hub.ca, token: hub.token }, 'POST', '/api/v1/namespaces/default/pods', pod)).status, 201)
    await setHidden(false)
    await page.waitForSelector('#pods tr[data-node="db-absent"] .pod[data-pod="default/db-late"]', { timeout: WAIT_MS })
    await page.waitForFunction(() => document.querySelector('#live')!.textContent === 'live', undefined, { timeout: WAIT_MS })
    t.pass('the pod made while the tab was hidden shows, and the page is live again')
  })

  await t.test('a wrong token sees no data, and neither does no token', async (t) => {
    const stranger = await open()
    await logIn(stranger, 'not-a-real-token')
    await stranger.waitForSelector('#login-error:not([hidden])', { timeout: WAIT_MS })
    t.match(await stranger.textContent('#login-error'), /refused/)
    t.ok(await stranger.isHidden('#dashboard'), 'the dashboard stays hidden')
    const text = (await stranger.textContent('body')) ?? ''
    t.notMatch(text, NODE, 'no node name anywhere on the page')
    t.equal(await stranger.evaluate(() => sessionStorage.length), 0, 'nothing kept in the session')
    const statuses = await stranger.evaluate(async () => {
      const wrong = { Authorization: 'Bearer not-a-real-token' }
      // A fetch cut by a network change (see open()) is tried again.
      const status = async (path: string, headers: Record<string, string>) => {
        for (let attempt = 1; ; attempt++) {
          try {
            return (await fetch(path, { headers })).status
          } catch (err) {
            if (attempt >= 5) throw err
          }
        }
      }
      return Promise.all([status('/dashboard/api/node-history', wrong), status('/dashboard/api/node-history', {}), status('/api/v1/pods', wrong)])
    })
    t.same(statuses, [401, 401, 401], 'the history and the API refuse it from the browser too')
    await stranger.context().close()
  })

  await t.test('logging out forgets the token and clears the page', async (t) => {
    await page.click('#logout')
    await page.waitForSelector('#login:not([hidden])')
    t.equal(await page.evaluate(() => sessionStorage.length), 0)
    t.notMatch((await page.textContent('body')) ?? '', NODE)
  })
})
