// The dashboard's style sheet (served at /dashboard/app.css): plain CSS, light and dark.

export const DASHBOARD_CSS = String.raw`
:root {
  --bg: #f6f7f5; --fg: #1d2320; --muted: #5f6b66; --card: #ffffff; --line: #d9dfdb;
  --accent: #2f7d4f; --warn: #b86e00; --bad: #b3261e; --cpu: #2f6fb3; --mem: #7b4bb3; --temp: #c0562b;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #141816; --fg: #e3e8e5; --muted: #98a39e; --card: #1d2320; --line: #34403a; --cpu: #6aa5e6; --mem: #b08be6; --temp: #ee8a5c; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; align-items: center; gap: 1rem; padding: .6rem 1.2rem; border-bottom: 1px solid var(--line); background: var(--card); }
header h1 { font-size: 1.15rem; margin: 0; flex: 1; color: var(--accent); }
main { padding: 1rem 1.2rem; max-width: 1400px; margin: 0 auto; }
h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
.count { color: var(--muted); font-weight: normal; }
.hint { color: var(--muted); margin: 0 0 .6rem; }
button { font: inherit; padding: .35rem .8rem; border: 1px solid var(--line); border-radius: 4px; background: var(--card); color: var(--fg); cursor: pointer; }
button[type=submit] { background: var(--accent); border-color: var(--accent); color: #fff; }
#login { max-width: 34rem; }
#login-form { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
#login-form input { flex: 1; min-width: 14rem; font: inherit; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 4px; background: var(--card); color: var(--fg); }
.error { color: var(--bad); }
.live { font-size: .85rem; color: var(--muted); }
.live::before { content: ""; display: inline-block; width: .6rem; height: .6rem; border-radius: 50%; margin-right: .35rem; background: var(--warn); }
.live.on::before { background: var(--accent); }

.nodes { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: .8rem; }
.node { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .7rem .8rem; }
.node h3 { margin: 0; font-size: 1rem; display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
.node .meta, .node .beat { color: var(--muted); font-size: .85rem; margin: .15rem 0 .4rem; }
.badge { font-size: .75rem; font-weight: 600; padding: .05rem .45rem; border-radius: 3px; border: 1px solid currentColor; }
.badge.ready { color: var(--accent); }
.badge.notready, .badge.unknown { color: var(--bad); }
.badge.cordoned { color: var(--warn); }
.metric { display: grid; grid-template-columns: 9.5rem 1fr; align-items: center; gap: .5rem; margin: .25rem 0; }
.metric .label { font-size: .8rem; color: var(--muted); }
.metric .value { display: block; white-space: nowrap; font-size: .95rem; color: var(--fg); font-variant-numeric: tabular-nums; }
.chart { width: 100%; height: 46px; display: block; background: var(--bg); border-radius: 3px; }
.chart .grid { stroke: var(--line); stroke-width: 1; vector-effect: non-scaling-stroke; }
.chart polyline { fill: none; stroke-width: 1.6; vector-effect: non-scaling-stroke; stroke-linejoin: round; }
.chart polygon { stroke: none; opacity: .15; }
.chart-cpu polyline { stroke: var(--cpu); }
.chart-cpu polygon { fill: var(--cpu); }
.chart-memory polyline { stroke: var(--mem); }
.chart-memory polygon { fill: var(--mem); }
.chart-temperature polyline { stroke: var(--temp); }
.chart-temperature polygon { fill: var(--temp); }
.chart .none { fill: var(--muted); font-size: 11px; }

.phases { display: flex; gap: .5rem; flex-wrap: wrap; margin-bottom: .5rem; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 6px; }
th, td { text-align: left; padding: .35rem .55rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { white-space: nowrap; font-size: .8rem; color: var(--muted); font-weight: 600; }
tr:last-child td { border-bottom: none; }
.pods td { width: 18%; }
.pods td:first-child { width: 10%; font-weight: 600; white-space: nowrap; }
.pod, .phase { display: inline-block; margin: .1rem .2rem .1rem 0; padding: .05rem .4rem; border-radius: 3px; font-size: .8rem; border: 1px solid var(--line); }
.phase-Running { border-color: var(--accent); }
.phase-Pending { border-color: var(--warn); }
.phase-Failed, .phase-Unknown { border-color: var(--bad); }
.pod.terminating { opacity: .55; text-decoration: line-through; }
.events td:first-child { white-space: nowrap; color: var(--muted); }
.events tr.Warning td:nth-child(2) { color: var(--warn); font-weight: 600; }
.empty { color: var(--muted); font-style: italic; }
`
