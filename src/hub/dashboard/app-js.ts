// The dashboard's script (served at /dashboard/app.js): plain browser JavaScript, no framework.
// Logs in with a bearer token kept in sessionStorage, lists nodes, pods and events and follows them
// through the API's own watch streams, polls the hub's heartbeat history, and draws it as inline SVG.
// Every value reaches the page through textContent or an SVG attribute, never as markup.
// Embedded as a string so that `tsc` alone builds a dist/ that serves it.

export const DASHBOARD_JS = String.raw`
'use strict'
;(function () {
  const TOKEN_KEY = 'bramble.dashboard.token'
  const PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown']
  const UNSCHEDULED = '(unscheduled)'
  const HISTORY_POLL_MS = 10000
  const EVENTS_SHOWN = 30
  const SVG = 'http://www.w3.org/2000/svg'

  const state = { nodes: new Map(), pods: new Map(), events: new Map(), history: { windowSeconds: 3600, nodes: {} } }
  let session = null // { token, abort: AbortController, paused? }: the loops of one login run while it is current
  let renderPending = false

  const $ = function (id) { return document.getElementById(id) }

  // ---- session ----

  function start() {
    $('login-form').addEventListener('submit', function (e) {
      e.preventDefault()
      logIn($('token').value.trim())
    })
    $('logout').addEventListener('click', function () { logOut('') })
    // A hidden tab lets go of its streams: a browser keeps at most six connections to one host, and
    // each visible tab holds three watches and a poll.
    document.addEventListener('visibilitychange', function () {
      if (!session) return
      if (document.hidden && !session.paused) {
        session.abort.abort()
        session = { token: session.token, abort: session.abort, paused: true }
        setLive(false, 'paused')
      } else if (!document.hidden && session.paused) startStreams(session.token)
    })
    let saved = sessionStorage.getItem(TOKEN_KEY)
    if (saved) logIn(saved)
    else showLogin('')
  }

  function showLogin(message) {
    $('login').hidden = false
    $('dashboard').hidden = true
    $('logout').hidden = true
    $('live').hidden = true
    $('login-error').hidden = !message
    $('login-error').textContent = message
  }

  function logIn(token) {
    if (!token) return showLogin('Enter a token.')
    // The token is tried before anything is shown: a refused one leaves the page empty.
    fetch('/api/v1/nodes?limit=1', { headers: authHeaders(token) }).then(function (res) {
      if (res.status === 401) return logOut('The hub refused that token.')
      if (res.status === 403) return logOut('That token may not read nodes.')
      if (!res.ok) return logOut('The hub answered ' + res.status + '.')
      sessionStorage.setItem(TOKEN_KEY, token)
      $('token').value = ''
      $('login').hidden = true
      $('login-error').hidden = true
      $('dashboard').hidden = false
      $('logout').hidden = false
      $('live').hidden = false
      startStreams(token)
    }, function (err) {
      showLogin('Could not reach the hub: ' + err.message)
    })
  }

  function startStreams(token) {
    if (session) session.abort.abort()
    session = { token: token, abort: new AbortController() }
    follow('/api/v1/nodes', state.nodes)
    follow('/api/v1/pods', state.pods)
    follow('/api/v1/events', state.events)
    pollHistory(session)
  }

  function logOut(message) {
    if (session) session.abort.abort()
    session = null
    sessionStorage.removeItem(TOKEN_KEY)
    state.nodes.clear(); state.pods.clear(); state.events.clear()
    state.history = { windowSeconds: 3600, nodes: {} }
    for (let id of ['nodes', 'pod-phases']) $(id).replaceChildren()
    for (let table of ['pods', 'events']) $(table).tBodies[0].replaceChildren()
    showLogin(message)
  }

  function authHeaders(token) {
    return { Authorization: 'Bearer ' + token, Accept: 'application/json' }
  }

  function setLive(on, text) {
    $('live').classList.toggle('on', on)
    $('live').textContent = text
  }

  // ---- data: list, then watch from the list's resourceVersion (what kubectl's informers do) ----

  function sleep(ms, signal) {
    return new Promise(function (resolve) {
      let t = setTimeout(resolve, ms)
      signal.addEventListener('abort', function () { clearTimeout(t); resolve() }, { once: true })
    })
  }

  function keyOf(o) { return (o.metadata.namespace || '') + '/' + o.metadata.name }

  async function getJson(s, path) {
    let res = await fetch(path, { headers: authHeaders(s.token), signal: s.abort.signal })
    if (res.status === 401) { logOut('The hub no longer accepts the token; log in again.'); throw new Error('unauthorized') }
    if (!res.ok) throw new Error(path + ': ' + res.status)
    return res.json()
  }

  async function follow(path, into) {
    let s = session
    let backoff = 1000
    while (session === s) {
      try {
        let list = await getJson(s, path)
        into.clear()
        for (let item of list.items) into.set(keyOf(item), item)
        scheduleRender()
        let rv = list.metadata.resourceVersion
        for (;;) {
          let next = await watch(s, path, rv, into)
          backoff = 1000
          if (next === null) break // 410 Gone or an error event: list again
          rv = next
        }
      } catch (err) {
        if (session !== s) return
        setLive(false, 'reconnecting')
        await sleep(backoff, s.abort.signal)
        backoff = Math.min(backoff * 2, 15000)
      }
    }
  }

  /** Streams one watch; resolves to the last resourceVersion seen, or null when a fresh list is needed. */
  async function watch(s, path, rv, into) {
    let url = path + '?watch=true&resourceVersion=' + encodeURIComponent(rv) + '&timeoutSeconds=600'
    let res = await fetch(url, { headers: authHeaders(s.token), signal: s.abort.signal })
    if (res.status === 401) { logOut('The hub no longer accepts the token; log in again.'); throw new Error('unauthorized') }
    if (res.status === 410) return null
    if (!res.ok || !res.body) throw new Error(url + ': ' + res.status)
    setLive(true, 'live')
    let reader = res.body.getReader()
    let decoder = new TextDecoder()
    let buffered = ''
    for (;;) {
      let chunk = await reader.read()
      if (chunk.done) return rv
      buffered += decoder.decode(chunk.value, { stream: true })
      let lines = buffered.split('\n')
      buffered = lines.pop()
      for (let line of lines) {
        if (!line.trim()) continue
        let event = JSON.parse(line)
        if (event.type === 'ERROR') return null
        if (event.type === 'BOOKMARK') { rv = event.object.metadata.resourceVersion; continue }
        if (event.type === 'DELETED') into.delete(keyOf(event.object))
        else into.set(keyOf(event.object), event.object)
        rv = event.object.metadata.resourceVersion
        scheduleRender()
      }
    }
  }

  async function pollHistory(s) {
    while (session === s) {
      try {
        state.history = await getJson(s, '/dashboard/api/node-history')
        scheduleRender()
      } catch (err) {
        if (session !== s) return
      }
      await sleep(HISTORY_POLL_MS, s.abort.signal)
    }
  }

  // ---- rendering: the whole dashboard from state, at most once per frame ----

  function scheduleRender() {
    if (renderPending) return
    renderPending = true
    requestAnimationFrame(function () {
      renderPending = false
      if (!session) return
      renderNodes()
      renderPods()
      renderEvents()
    })
  }

  function el(tag, attrs, children) {
    let node = document.createElement(tag)
    for (let k in attrs || {}) {
      if (k === 'text') node.textContent = attrs[k]
      else if (k === 'className') node.className = attrs[k]
      else node.setAttribute(k, attrs[k])
    }
    for (let c of children || []) if (c) node.append(c)
    return node
  }

  function svg(tag, attrs) {
    let node = document.createElementNS(SVG, tag)
    for (let k in attrs) node.setAttribute(k, attrs[k])
    return node
  }

  function readyOf(node) {
    let c = ((node.status || {}).conditions || []).find(function (c) { return c.type === 'Ready' })
    if (!c) return 'Unknown'
    return c.status === 'True' ? 'Ready' : c.status === 'False' ? 'NotReady' : 'Unknown'
  }

  function renderNodes() {
    let names = Array.from(state.nodes.values()).map(function (n) { return n.metadata.name }).sort()
    $('node-count').textContent = '(' + names.length + ')'
    let cards = names.map(function (name) { return nodeCard(state.nodes.get('/' + name)) })
    if (cards.length === 0) cards = [el('p', { className: 'empty', text: 'No nodes have joined yet. Join one with: bramble agent --hub HOST --token TOKEN' })]
    $('nodes').replaceChildren.apply($('nodes'), cards)
  }

  function nodeCard(node) {
    let name = node.metadata.name
    let status = node.status || {}
    let info = status.nodeInfo || {}
    let ready = readyOf(node)
    let history = state.history.nodes[name] || { lastHeartbeatSecondsAgo: null, samples: [] }
    let samples = history.samples
    let last = samples[samples.length - 1]
    let memTotal = parseQuantity((status.capacity || {}).memory)
    let address = ((status.addresses || []).find(function (a) { return a.type === 'InternalIP' }) || {}).address
    let meta = [info.architecture, info.osImage, info.kubeletVersion, address].filter(Boolean).join(' · ')
    let spanSeconds = chartSpan(samples, state.history.windowSeconds)
    return el('article', { className: 'node', 'data-node': name }, [
      el('h3', {}, [
        el('span', { text: name }),
        el('span', { className: 'badge ' + ready.toLowerCase(), text: ready }),
        (node.spec || {}).unschedulable ? el('span', { className: 'badge cordoned', text: 'cordoned' }) : null,
      ]),
      el('p', { className: 'meta', text: meta || 'no status reported yet' }),
      metric('CPU', last ? percent(last[1]) : '–', chart('cpu', samples, spanSeconds, function (s) { return s[1] * 100 }, 0, 100)),
      metric('Memory', last ? bytes(last[2]) + (memTotal ? ' / ' + bytes(memTotal) : '') : '–',
        chart('memory', samples, spanSeconds, function (s) { return memTotal ? (s[2] / memTotal) * 100 : s[2] }, 0, memTotal ? 100 : null)),
      metric('Temperature', last && last[3] !== null ? last[3].toFixed(1) + ' °C' : 'not reported',
        chart('temperature', samples, spanSeconds, function (s) { return s[3] }, null, null)),
      el('p', { className: 'beat', text: (history.lastHeartbeatSecondsAgo === null ? 'no heartbeat since the hub started' : 'last heartbeat ' + ago(history.lastHeartbeatSecondsAgo) + ' ago') + ' · charts: last ' + ago(spanSeconds) }),
    ])
  }

  function metric(label, value, chartSvg) {
    return el('div', { className: 'metric' }, [el('span', { className: 'label' }, [label, el('span', { className: 'value', text: value })]), chartSvg])
  }

  /** The charts' time span: the history kept so far, rounded up to a readable span, at most the window. */
  function chartSpan(samples, windowSeconds) {
    let oldest = samples.length ? samples[0][0] : 0
    for (let span of [60, 120, 300, 600, 900, 1800]) if (oldest <= span && span < windowSeconds) return span
    return windowSeconds
  }

  /** An inline SVG line over the span: x is time (now at the right), y the value in [lo, hi] (null: fitted). */
  function chart(kind, samples, spanSeconds, valueOf, lo, hi) {
    let W = 300, H = 46
    let box = svg('svg', { class: 'chart chart-' + kind, viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img' })
    let points = samples.filter(function (s) { return s[0] <= spanSeconds && valueOf(s) !== null && valueOf(s) !== undefined })
    box.setAttribute('data-samples', String(points.length))
    let title = svg('title', {})
    title.textContent = kind + ' over the last ' + ago(spanSeconds)
    box.append(title)
    for (let q = 1; q < 4; q++) box.append(svg('line', { class: 'grid', x1: 0, x2: W, y1: (H * q) / 4, y2: (H * q) / 4 }))
    if (points.length === 0) {
      let none = svg('text', { class: 'none', x: 6, y: H / 2 + 4 })
      none.textContent = 'no readings yet'
      box.append(none)
      return box
    }
    let values = points.map(valueOf)
    let min = lo !== null ? lo : Math.min.apply(null, values) - 2
    let max = hi !== null ? hi : Math.max.apply(null, values) + 2
    if (max <= min) max = min + 1
    let coords = points.map(function (s, i) {
      let x = W * (1 - Math.min(s[0], spanSeconds) / spanSeconds)
      let y = H - 2 - ((H - 4) * (Math.min(Math.max(values[i], min), max) - min)) / (max - min)
      return x.toFixed(1) + ',' + y.toFixed(1)
    })
    // A single sample still shows: as a short flat stroke.
    if (coords.length === 1) coords.unshift((parseFloat(coords[0]) - 3).toFixed(1) + ',' + coords[0].split(',')[1])
    let firstX = coords[0].split(',')[0], lastX = coords[coords.length - 1].split(',')[0]
    box.append(svg('polygon', { points: firstX + ',' + H + ' ' + coords.join(' ') + ' ' + lastX + ',' + H }))
    box.append(svg('polyline', { points: coords.join(' ') }))
    return box
  }

  function podPhase(pod) {
    let phase = (pod.status || {}).phase
    return PHASES.indexOf(phase) >= 0 ? phase : 'Pending'
  }

  function renderPods() {
    let byNode = new Map()
    let totals = {}
    for (let name of Array.from(state.nodes.values()).map(function (n) { return n.metadata.name })) byNode.set(name, [])
    let pods = Array.from(state.pods.values()).sort(function (a, b) { return keyOf(a) < keyOf(b) ? -1 : 1 })
    for (let pod of pods) {
      let node = (pod.spec || {}).nodeName || UNSCHEDULED
      if (!byNode.has(node)) byNode.set(node, [])
      byNode.get(node).push(pod)
      let phase = podPhase(pod)
      totals[phase] = (totals[phase] || 0) + 1
    }
    $('pod-count').textContent = '(' + pods.length + ')'
    $('pod-phases').replaceChildren.apply($('pod-phases'), PHASES.filter(function (p) { return totals[p] }).map(function (p) {
      return el('span', { className: 'phase phase-' + p, text: p + ': ' + totals[p] })
    }))
    let rows = Array.from(byNode.keys()).sort(function (a, b) { return a === UNSCHEDULED ? 1 : b === UNSCHEDULED ? -1 : a < b ? -1 : 1 }).map(function (node) {
      let cells = PHASES.map(function (phase) {
        return el('td', {}, byNode.get(node).filter(function (p) { return podPhase(p) === phase }).map(function (p) {
          let chip = el('span', { className: 'pod phase-' + phase + (p.metadata.deletionTimestamp ? ' terminating' : ''), 'data-pod': keyOf(p), 'data-phase': phase, text: p.metadata.namespace === 'default' ? p.metadata.name : keyOf(p) })
          chip.title = keyOf(p) + ' · ' + phase + (p.metadata.deletionTimestamp ? ' · terminating' : '')
          return chip
        }))
      })
      return el('tr', { 'data-node': node }, [el('td', { text: node })].concat(cells))
    })
    if (rows.length === 0) rows = [el('tr', {}, [el('td', { className: 'empty', colspan: '6', text: 'No pods.' })])]
    $('pods').tBodies[0].replaceChildren.apply($('pods').tBodies[0], rows)
  }

  function eventTime(e) {
    return Date.parse(e.lastTimestamp || e.eventTime || (e.series || {}).lastObservedTime || e.firstTimestamp || e.metadata.creationTimestamp) || 0
  }

  function renderEvents() {
    let events = Array.from(state.events.values()).sort(function (a, b) { return eventTime(b) - eventTime(a) }).slice(0, EVENTS_SHOWN)
    let now = Date.now()
    let rows = events.map(function (e) {
      let o = e.involvedObject || {}
      let count = e.count > 1 ? ' (×' + e.count + ')' : ''
      return el('tr', { className: e.type === 'Warning' ? 'Warning' : 'Normal' }, [
        el('td', { text: ago(Math.max(0, (now - eventTime(e)) / 1000)) + count }),
        el('td', { text: e.type || '' }),
        el('td', { text: e.reason || '' }),
        el('td', { text: (o.kind || '').toLowerCase() + '/' + (o.namespace && o.namespace !== 'default' ? o.namespace + '/' : '') + (o.name || '') }),
        el('td', { text: e.message || '' }),
      ])
    })
    if (rows.length === 0) rows = [el('tr', {}, [el('td', { className: 'empty', colspan: '5', text: 'No events.' })])]
    $('events').tBodies[0].replaceChildren.apply($('events').tBodies[0], rows)
  }

  // ---- formatting ----

  const UNITS = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1048576, Gi: 1073741824, Ti: 1099511627776, m: 0.001 }
  function parseQuantity(q) {
    let m = /^([0-9.]+)([a-zA-Z]*)$/.exec(q || '')
    return m && UNITS[m[2]] !== undefined ? parseFloat(m[1]) * UNITS[m[2]] : 0
  }

  function percent(fraction) { return (fraction * 100).toFixed(fraction < 0.1 ? 1 : 0) + ' %' }

  function bytes(n) {
    if (n >= 1073741824) return (n / 1073741824).toFixed(1) + ' GiB'
    if (n >= 1048576) return Math.round(n / 1048576) + ' MiB'
    return Math.round(n / 1024) + ' KiB'
  }

  function ago(seconds) {
    if (seconds < 60) return Math.round(seconds) + ' s'
    if (seconds < 3600) return Math.round(seconds / 60) + ' min'
    if (seconds < 86400) return Math.round(seconds / 3600) + ' h'
    return Math.round(seconds / 86400) + ' d'
  }

  // Relative times ("3 s ago") move on even when nothing changes.
  setInterval(scheduleRender, 5000)
  document.addEventListener('DOMContentLoaded', start)
})()
`
