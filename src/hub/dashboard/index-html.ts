// The dashboard's page (served at /dashboard): a login form and the empty sections app.js fills,
// and the tab's icon.
// Embedded as a string so that `tsc` alone builds a dist/ that serves it.

export const DASHBOARD_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bramble dashboard</title>
<link rel="stylesheet" href="/dashboard/app.css">
<link rel="icon" href="/dashboard/icon.svg" type="image/svg+xml">
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header>
  <h1>Bramble</h1>
  <span id="live" class="live" hidden>connecting</span>
  <button id="logout" type="button" hidden>Log out</button>
</header>

<main>
  <section id="login">
    <h2>Log in</h2>
    <p>Paste an API token: the admin or read-only token from the hub's data directory (the
    <code>token</code> in <code>kubeconfig.yaml</code>). It is kept in this tab only and sent with
    every request.</p>
    <form id="login-form" autocomplete="off">
      <label for="token">API token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required>
      <button type="submit">Log in</button>
    </form>
    <p id="login-error" class="error" role="alert" hidden></p>
  </section>

  <div id="dashboard" hidden>
    <section>
      <h2>Nodes <span id="node-count" class="count"></span></h2>
      <p class="hint">CPU, memory and temperature from the nodes' heartbeats, up to the last hour (the hub keeps them in memory only).</p>
      <div id="nodes" class="nodes"></div>
    </section>
    <section>
      <h2>Pods <span id="pod-count" class="count"></span></h2>
      <div id="pod-phases" class="phases"></div>
      <table id="pods" class="pods">
        <thead><tr><th>Node</th><th>Pending</th><th>Running</th><th>Succeeded</th><th>Failed</th><th>Unknown</th></tr></thead>
        <tbody></tbody>
      </table>
    </section>
    <section>
      <h2>Recent events</h2>
      <table id="events" class="events">
        <thead><tr><th>Last seen</th><th>Type</th><th>Reason</th><th>Object</th><th>Message</th></tr></thead>
        <tbody></tbody>
      </table>
    </section>
  </div>
</main>
</body>
</html>
`

/** The tab's icon: three berries on a stem. */
export const DASHBOARD_ICON = String.raw`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><path d="M16 2v8" stroke="#2f7d4f" stroke-width="3" stroke-linecap="round"/><circle cx="10" cy="16" r="6" fill="#5a2a6e"/><circle cx="22" cy="16" r="6" fill="#5a2a6e"/><circle cx="16" cy="25" r="6" fill="#7b3a8f"/></svg>
`
