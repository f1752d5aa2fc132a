"""The fleet page: one self-contained HTML document (`drift --format html`).

No external asset and no network: the style and the small script are inline,
and the page's Content-Security-Policy allows nothing else (`default-src
'none'`, the script and the style by their hashes). The table is complete
without JavaScript; the script adds sorting, a text filter and a status filter.
Every string is escaped for HTML (`escape.html`): tenant names, URLs and server
text are hostile input, and the policy would stop a script that slipped through.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone

from reconciler import __version__
from reconciler.engine.drift import DriftReport
from reconciler.report.drift import drift_summary
from reconciler.report.escape import html as e
from reconciler.report.fleet import FleetRow, counts, rows

# Worst first, for sorting by status.
STATUS_ORDER = {"error": 0, "drifted": 1, "unhealthy": 2, "clean": 3, "paused": 4}
STATUS_LABEL = {"error": "unreadable", "drifted": "drifted", "unhealthy": "unhealthy",
                "clean": "clean", "paused": "paused"}  # fmt: skip

STYLE = """
:root { color-scheme: light; --line: #d8dee4; --muted: #57606a; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1f2328; background: #fff; }
header, main { padding: 0 24px; }
header { padding-top: 20px; }
h1 { font-size: 20px; margin: 0 0 4px; }
.meta { color: var(--muted); margin: 0 0 16px; font-size: 12px; }
.meta code { font-size: 12px; }
.counts { display: flex; flex-wrap: wrap; gap: 12px; margin: 0 0 16px; padding: 0; }
.count { list-style: none; min-width: 120px; padding: 10px 14px; border: 1px solid var(--line);
  border-radius: 8px; background: var(--bg); }
.count b { display: block; font-size: 24px; line-height: 1.1; }
.count span { color: var(--muted); }
.count.drifted b { color: #9a6700; } .count.unhealthy b { color: #bc4c00; }
.count.error b { color: #cf222e; } .count.clean b { color: #1a7f37; }
.count button { all: unset; cursor: pointer; display: block; }
.count button:focus-visible { outline: 2px solid #0969da; outline-offset: 4px; }
.count.active { border-color: #0969da; box-shadow: 0 0 0 1px #0969da; }
.controls { display: flex; flex-wrap: wrap; align-items: center; gap: 12px; margin: 0 0 12px; }
.controls input, .controls select { font: inherit; padding: 5px 8px; border: 1px solid var(--line);
  border-radius: 6px; }
.controls input { width: 320px; max-width: 100%; }
#shown { color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin-bottom: 32px; }
th, td { text-align: left; vertical-align: top; padding: 7px 8px;
  border-bottom: 1px solid var(--line); }
th { position: sticky; top: 0; background: var(--bg); font-size: 12px; white-space: nowrap;
  border-bottom: 2px solid var(--line); }
th button { all: unset; cursor: pointer; font-weight: 600; }
th button:focus-visible { outline: 2px solid #0969da; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
tbody tr:hover { background: #f6f8fa; }
td { overflow-wrap: break-word; }
td.nowrap { white-space: nowrap; }
td.tenant { min-width: 170px; max-width: 260px; }
td.tenant a { word-break: break-all; }
td.sender { min-width: 170px; max-width: 240px; word-break: break-word; }
td.health { min-width: 200px; }
td.drift { min-width: 170px; }
td.ignored { min-width: 130px; }
.tenant b { display: block; }
.sub { color: var(--muted); font-size: 12px; display: block; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; white-space: nowrap; }
.s-clean { background: #dafbe1; color: #116329; }
.s-drifted { background: #fff8c5; color: #7d4e00; }
.s-unhealthy { background: #fff1e5; color: #953800; }
.s-error { background: #ffebe9; color: #a40e26; }
.s-paused { background: #eaeef2; color: #424a53; }
ul { margin: 0; padding-left: 16px; }
.problems { color: #a40e26; }
.none { color: var(--muted); }
.facts { color: var(--muted); font-size: 12px; }
[hidden] { display: none !important; }
"""

SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("fleet");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
  var filter = document.getElementById("filter");
  var status = document.getElementById("status");
  var shown = document.getElementById("shown");
  var cards = Array.prototype.slice.call(document.querySelectorAll(".count button"));
  document.getElementById("controls").hidden = false;
  cards.forEach(function (b) { b.disabled = false; });

  function update() {
    var words = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var wanted = status.value;
    var count = 0;
    rows.forEach(function (r, i) {
      var keep = (wanted === "all" || r.getAttribute("data-status") === wanted) &&
        words.every(function (w) { return texts[i].indexOf(w) !== -1; });
      r.hidden = !keep;
      if (keep) { count += 1; }
    });
    shown.textContent = count + " of " + rows.length + " tenants shown";
    cards.forEach(function (b) {
      b.parentNode.classList.toggle("active", b.getAttribute("data-status") === wanted);
    });
  }

  function key(r, column) {
    var cell = r.cells[column];
    var value = cell.getAttribute("data-sort");
    return value === null ? cell.textContent.trim() : value;
  }

  function sortBy(th) {
    var column = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "number";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var keyed = rows.map(function (r, i) { return [key(r, column), i, r]; });
    keyed.sort(function (a, b) {
      var order = numeric ? Number(a[0]) - Number(b[0])
        : a[0].localeCompare(b[0], undefined, {numeric: true, sensitivity: "base"});
      return (ascending ? order : -order) || a[1] - b[1];
    });
    keyed.forEach(function (k) { body.appendChild(k[2]); });
  }

  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    var button = th.querySelector("button");
    if (button) { button.addEventListener("click", function () { sortBy(th); }); }
  });
  filter.addEventListener("input", update);
  status.addEventListener("change", update);
  cards.forEach(function (b) {
    b.addEventListener("click", function () {
      var wanted = b.getAttribute("data-status");
      status.value = status.value === wanted ? "all" : wanted;
      update();
    });
  });
  update();
})();
"""

# (header, data-type) of the page's columns: the CSV's, grouped for reading.
HEADERS = (
    ("Status", "number"),
    ("Tenant", "text"),
    ("Provider", "text"),
    ("SMTP server", "text"),
    ("Sender", "text"),
    ("Health", "number"),
    ("Drift", "number"),
    ("Ignored, paused", "number"),
)


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


POLICY = (
    f"default-src 'none'; script-src {_digest(SCRIPT)}; style-src {_digest(STYLE)}; "
    "img-src 'none'; base-uri 'none'; form-action 'none'"
)


def render_drift_html(report: DriftReport, *, now: datetime | None = None) -> str:
    """The fleet page of a drift report."""
    when = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    fleet = rows(report)
    shard = f" &middot; shard {e(report.shard)}" if report.shard else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>qlik-email fleet: {len(fleet)} tenant(s)</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        "<h1>E-mail configuration of the fleet</h1>",
        f'<p class="meta">{e(drift_summary(report))} &middot; generated {e(when)} by qlik-email '
        f"{e(__version__)}{shard} &middot; fingerprint <code>{e(report.fingerprint)}</code></p>",
        _counts(report),
        "</header>",
        "<main>",
        _controls(),
        '<table id="fleet">',
        "<thead><tr>" + "".join(_header(name, kind) for name, kind in HEADERS) + "</tr></thead>",
        "<tbody>",
        *(_row(r) for r in fleet),
        "</tbody>",
        "</table>",
        '<p class="none">No tenant in this report.</p>' if not fleet else "",
        "</main>",
        f"<script>{SCRIPT}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def _counts(report: DriftReport) -> str:
    items = [
        f'<li class="count {status}"><button type="button" data-status="{status}" disabled>'
        f"<b>{number}</b><span>{label}</span></button></li>"
        for status, label, number in counts(report)
    ]
    return '<ul class="counts" aria-label="Summary">' + "".join(items) + "</ul>"


def _controls() -> str:
    options = "".join(
        f'<option value="{status}">{label}</option>'
        for status, label in (("all", "every status"), *STATUS_LABEL.items())
    )
    return (
        '<div class="controls" id="controls" hidden>'
        '<input id="filter" type="search" placeholder="Filter: tenant, host, sender, field..." '
        'aria-label="Filter the tenants">'
        f'<select id="status" aria-label="Status">{options}</select>'
        '<span id="shown" aria-live="polite"></span></div>'
    )


def _header(name: str, kind: str) -> str:
    return f'<th scope="col" data-type="{kind}"><button type="button">{e(name)}</button></th>'


def _list(items: tuple[str, ...], css: str = "") -> str:
    if not items:
        return '<span class="none">&mdash;</span>'
    klass = f' class="{css}"' if css else ""
    return f"<ul{klass}>" + "".join(f"<li>{e(item)}</li>" for item in items) + "</ul>"


def _or_dash(text: str) -> str:
    return e(text) if text else '<span class="none">&mdash;</span>'


def _row(r: FleetRow) -> str:
    label = STATUS_LABEL.get(r.status, r.status)
    set_aside = r.ignored + ((f"paused: {r.paused}",) if r.paused else ())
    cells = [
        f'<td class="nowrap" data-sort="{STATUS_ORDER.get(r.status, 9)}">'
        f'<span class="badge s-{e(r.status)}">{e(label)}</span></td>',
        f'<td class="tenant" data-sort="{e(r.tenant)}"><b>{e(r.tenant)}</b>{_url(r.url)}</td>',
        f'<td class="nowrap">{_or_dash(r.provider)}</td>',
        f'<td class="nowrap" data-sort="{e(r.server_address)}:{e(r.server_port)}">'
        f"{_server(r)}</td>",
        f'<td class="sender" data-sort="{e(r.email_address)}">{_sender(r)}</td>',
        f'<td class="health" data-sort="{len(r.problems) + bool(r.error)}">{_health(r)}</td>',
        f'<td class="drift" data-sort="{len(r.drift)}">{_list(r.drift)}</td>',
        f'<td class="ignored" data-sort="{len(set_aside)}">{_list(set_aside)}</td>',
    ]
    return f'<tr data-status="{e(r.status)}">' + "".join(cells) + "</tr>"


def _url(url: str) -> str:
    # Only web addresses become links; anything else is shown as text.
    if url.startswith(("https://", "http://")):
        return f'<a class="sub" href="{e(url)}" rel="noopener noreferrer">{e(url)}</a>'
    return f'<span class="sub">{e(url)}</span>'


def _server(r: FleetRow) -> str:
    if not r.server_address:
        return '<span class="none">&mdash;</span>'
    port = f":{e(r.server_port)}" if r.server_port else ""
    return f"{e(r.server_address)}{port}"


def _sender(r: FleetRow) -> str:
    if not (r.email_address or r.sender_name):
        return '<span class="none">&mdash;</span>'
    name = f'<span class="sub">{e(r.sender_name)}</span>' if r.sender_name else ""
    return f"{e(r.email_address)}{name}"


def _health(r: FleetRow) -> str:
    if r.error:
        return f'<span class="problems">could not be read: {e(r.error)}</span>'
    if r.paused:
        return '<span class="none">not contacted: paused</span>'
    facts = [
        f"isValid {r.is_valid or '?'}",
        f"errorCode {r.error_code or '-'}",
        f"authFailures {r.auth_failures or '-'}",
    ]
    if r.verify:
        facts.append(f"verify {r.verify.split(':', 1)[0]}")
    problems = _list(r.problems, "problems") if r.problems else '<span class="ok">healthy</span>'
    return f'{problems}<span class="sub facts">{e(" · ".join(facts))}</span>'
