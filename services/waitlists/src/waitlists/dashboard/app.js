// Operations dashboard: plain JavaScript and SVG, no third-party code (nothing to fetch at run time).
// Every number shown comes from the API as it is: the page formats figures, it does not work any out.
"use strict";

const $ = (selector) => document.querySelector(selector);
const form = $("#filters");
const statusLine = $("#status");
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#1d70b8", "#d4351c", "#00703c", "#6f3c00", "#4c2c92", "#505a5f", "#005a5c", "#a8175c"];
const DASHES = ["", "7 4", "2 3", "10 3 2 3", "4 2", "1 4", "12 4", "6 2 2 2"];
const MARKERS = ["circle", "square", "triangle", "diamond", "cross", "triangle-down", "bar", "plus"];
// The aim drawn on the "within target" chart: 92%, the NHS referral to treatment standard.
const TARGET_PCT = 92;
const CLOCK_NAMES = {
  ehc_decision_6w: "EHC decision to assess, 6 weeks",
  ehc_no_plan_16w: "EHC no-plan decision, 16 weeks",
  ehc_plan_20w: "EHC plan issued, 20 weeks",
  rtt_18w: "Referral to treatment, 18 weeks",
  cypmh_4w: "CYPMH 4 weeks",
  cypmh_ed: "CYPMH eating disorders (urgent 1 week, routine 4 weeks)",
  cypmh_crisis: "CYPMH urgent crisis, 24 hours",
  service_target: "Service's own target",
};
const REASON_NAMES = {
  threshold_not_met: "Threshold not met",
  outside_remit: "Outside the service's remit",
  insufficient_information: "Not enough information to decide",
  needs_met_elsewhere: "Needs already met elsewhere",
  duplicate: "Duplicate referral",
};
const readable = (code) => code.charAt(0).toUpperCase() + code.slice(1).replaceAll("_", " ");
const clockName = (kind) => CLOCK_NAMES[kind] || readable(kind);
const reasonName = (code) => REASON_NAMES[code] || readable(code);
let scopes = null;
let names = { area: new Map(), organisation: new Map(), service: new Map() };

// Signed in through /signin: the session cookie travels with every same-origin request; the token is never in
// a URL or in this script's reach.
class SignedOut extends Error {}

async function request(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (response.status === 401) throw new SignedOut("sign in to see the figures");
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response;
}

function showSignIn() {
  const next = location.pathname + location.search;
  const link = element("a", { href: `/signin?${new URLSearchParams({ next })}` }, "Sign in");
  statusLine.className = "error";
  statusLine.replaceChildren("You are not signed in. ", link, " to see the figures.");
  $("#signout").hidden = true;
}
const api = async (path) => (await request(path)).json();

// The calendar date in the UK now: the default reporting date (not the UTC date, a day behind after
// midnight in British Summer Time).
function londonToday() {
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/London", year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(new Date());
  const part = (type) => parts.find((p) => p.type === type).value;
  return `${part("year")}-${part("month")}-${part("day")}`;
}

const dateText = (iso, options = { day: "numeric", month: "short", year: "numeric" }) =>
  new Date(`${iso}T00:00:00Z`).toLocaleDateString("en-GB", { timeZone: "UTC", ...options });

// Figures withheld by disclosure control arrive as null with their path in the answer's "withheld" list and
// show as "withheld" (never 0); a figure with nothing to measure (no waits, nothing to divide by) shows as "–".
const WITHHELD = "withheld";
let hidden = new Set();
const count = (value, path) => (hidden.has(path) || value === null || value === undefined ? WITHHELD : `${value}`);
const measure = (value, path) => (hidden.has(path) ? WITHHELD : value === null || value === undefined ? "–" : `${value}`);
const pct = (value, path) => (hidden.has(path) ? WITHHELD : value === null || value === undefined ? "–" : `${value.toFixed(1)}%`);

function fillScopeIds() {
  const select = $("#scope-id");
  const wanted = new URLSearchParams(location.search).get("scope_id");
  select.innerHTML = "";
  const kind = $("#scope").value;
  const options = kind === "area" ? areaChoices() : kind === "organisation" ? scopes.organisations : scopes.services;
  for (const option of options) {
    const element = document.createElement("option");
    element.value = option.id;
    element.textContent = option.name;
    if (option.id === wanted) element.selected = true;
    select.append(element);
  }
}

const areaChoices = () => scopes.area_choices || scopes.areas.map((id) => ({ id, name: id, parent: "" }));

function learnNames() {
  names = {
    area: new Map(areaChoices().map((a) => [a.id, a])),
    organisation: new Map(scopes.organisations.map((o) => [o.id, o])),
    service: new Map(scopes.services.map((s) => [s.id, s])),
  };
}
const nameOf = (kind, id) => names[kind].get(id)?.name || id;

function element(name, attributes = {}, text) {
  const made = document.createElement(name);
  for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, value);
  if (text !== undefined) made.textContent = text;
  return made;
}

function tile(label, value, name, tone = "") {
  const item = element("li", { class: `tile ${tone}` });
  item.append(element("span", { class: "value", "data-figure": name }, value), element("span", { class: "label" }, label));
  return item;
}

function svg(width, height, title) {
  const made = document.createElementNS(SVG, "svg");
  made.setAttribute("viewBox", `0 0 ${width} ${height}`);
  made.setAttribute("role", "img");
  const caption = document.createElementNS(SVG, "title");
  caption.textContent = title;
  made.append(caption);
  return made;
}

function add(parent, name, attributes, text) {
  const made = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, value);
  if (text !== undefined) made.textContent = text;
  parent.append(made);
  return made;
}

function empty(container, message) {
  container.replaceChildren(element("p", { class: "empty" }, message));
}

// Bars of one kind of number only (children, or days), with the unit on the axis.
function barChart(container, bars, title, unit, emptyMessage) {
  if (bars.every((b) => b.value === 0 || (b.value === null && b.text === "–"))) return empty(container, emptyMessage);
  const width = 560, height = 240, left = 46, bottom = 40, top = 24;
  const max = Math.max(1, ...bars.map((b) => b.value || 0));
  const chart = svg(width, height, `${title} (${unit}): ${bars.map((b) => `${b.label} ${b.text}`).join(", ")}`);
  const step = (width - left) / bars.length;
  add(chart, "text", { x: 4, y: 12, class: "unit" }, unit);
  add(chart, "line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, class: "axis" });
  bars.forEach((bar, i) => {
    const h = ((bar.value || 0) / max) * (height - bottom - top);
    const x = left + i * step + step * 0.15;
    const rect = add(chart, "rect", { x, y: height - bottom - h, width: step * 0.7, height: h, class: `bar ${bar.tone || ""}` });
    add(rect, "title", {}, `${bar.label}: ${bar.text}`);
    add(chart, "text", { x: x + step * 0.35, y: height - bottom - h - 6, "text-anchor": "middle", class: "value" }, bar.text);
    add(chart, "text", { x: x + step * 0.35, y: height - bottom + 18, "text-anchor": "middle" }, bar.label);
  });
  container.replaceChildren(chart);
}

function marker(parent, shape, cx, cy, colour) {
  const r = 4.5;
  const polygon = (points) => add(parent, "polygon", { points: points.map(([dx, dy]) => `${cx + dx},${cy + dy}`).join(" "), fill: colour });
  switch (shape) {
    case "square": return add(parent, "rect", { x: cx - r, y: cy - r, width: 2 * r, height: 2 * r, fill: colour });
    case "triangle": return polygon([[0, -r - 1], [r + 1, r], [-r - 1, r]]);
    case "triangle-down": return polygon([[0, r + 1], [r + 1, -r], [-r - 1, -r]]);
    case "diamond": return polygon([[0, -r - 1], [r + 1, 0], [0, r + 1], [-r - 1, 0]]);
    case "cross": return add(parent, "path", { d: `M${cx - r},${cy - r}L${cx + r},${cy + r}M${cx - r},${cy + r}L${cx + r},${cy - r}`, stroke: colour, "stroke-width": 3, fill: "none" });
    case "plus": return add(parent, "path", { d: `M${cx - r},${cy}H${cx + r}M${cx},${cy - r}V${cy + r}`, stroke: colour, "stroke-width": 3, fill: "none" });
    case "bar": return add(parent, "rect", { x: cx - 2, y: cy - r - 1, width: 4, height: 2 * r + 2, fill: colour });
    default: return add(parent, "circle", { cx, cy, r, fill: colour });
  }
}

// Lines told apart by colour, dash pattern and marker shape, named in a legend; each point's number in its tooltip.
// series: [{name, values: [{value, text}]}]; labels: the x-axis labels; scale: {max, ticks, format, target}.
function lineChart(container, series, labels, scale, title) {
  const width = 560, height = 250, left = 46, right = 12, bottom = 40, top = 18;
  const chart = svg(width, height, title);
  const x = (i) => left + (i * (width - left - right)) / Math.max(1, labels.length - 1);
  const y = (v) => top + ((scale.max - v) / scale.max) * (height - bottom - top);
  add(chart, "text", { x: 4, y: 12, class: "unit" }, scale.unit);
  for (const level of scale.ticks) {
    add(chart, "line", { x1: left, x2: width - right, y1: y(level), y2: y(level), class: "axis" });
    add(chart, "text", { x: left - 6, y: y(level) + 4, "text-anchor": "end" }, scale.format(level));
  }
  if (scale.target !== undefined) {
    add(chart, "line", { x1: left, x2: width - right, y1: y(scale.target), y2: y(scale.target), class: "target" });
    add(chart, "text", { x: width - right, y: y(scale.target) - 5, "text-anchor": "end", class: "target-label" }, scale.targetLabel);
  }
  const every = Math.ceil(labels.length / 6);
  labels.forEach((label, i) => {
    if ((labels.length - 1 - i) % every === 0) add(chart, "text", { x: x(i), y: height - 14, "text-anchor": "middle" }, label);
  });
  const legend = element("ul", { class: "legend" });
  series.forEach((line, n) => {
    const colour = COLOURS[n % COLOURS.length], dash = DASHES[n % DASHES.length], shape = MARKERS[n % MARKERS.length];
    const group = add(chart, "g", { class: "series" });
    // A withheld or empty point breaks the line rather than being drawn as 0.
    let run = [];
    const flush = () => {
      if (run.length > 1) add(group, "polyline", { points: run.join(" "), class: "line", stroke: colour, "stroke-dasharray": dash });
      run = [];
    };
    line.values.forEach((point, i) => {
      if (point.value === null || point.value === undefined) { flush(); return; }
      run.push(`${x(i)},${y(point.value)}`);
    });
    flush();
    line.values.forEach((point, i) => {
      if (point.value === null || point.value === undefined) return;
      const dot = marker(group, shape, x(i), y(point.value), colour);
      add(dot, "title", {}, `${line.name}, ${labels[i]}: ${point.text}`);
    });
    const item = element("li");
    const key = document.createElementNS(SVG, "svg");
    key.setAttribute("viewBox", "0 0 36 14");
    key.setAttribute("aria-hidden", "true");
    key.setAttribute("class", "key");
    add(key, "line", { x1: 1, x2: 35, y1: 7, y2: 7, stroke: colour, "stroke-width": 2.5, "stroke-dasharray": dash });
    marker(key, shape, 18, 7, colour);
    item.append(key, line.name);
    legend.append(item);
  });
  container.replaceChildren(chart, legend);
}

// The numbers behind a chart, as a table under a disclosure.
function numbersTable(container, caption, header, rows) {
  const details = element("details", { class: "numbers" });
  details.append(element("summary", {}, "The numbers behind the chart"));
  const wrap = element("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption });
  const table = element("table");
  table.append(element("caption", {}, caption));
  const head = element("tr");
  header.forEach((h, i) => head.append(element("th", { scope: "col", class: i ? "num" : "" }, h)));
  const thead = element("thead");
  thead.append(head);
  table.append(thead);
  const body = element("tbody");
  for (const [label, ...cells] of rows) {
    const row = element("tr");
    row.append(element("th", { scope: "row" }, label));
    for (const cell of cells) row.append(element("td", { class: "num" }, cell));
    body.append(row);
  }
  table.append(body);
  wrap.append(table);
  details.append(wrap);
  container.append(details);
}

// The trend's points; once disclosure control reaches it, a withheld value is null and named in a "withheld"
// list: the point's own (field names) or the answer's (dotted paths from the point's index).
function trendPoints(answer) {
  const points = Array.isArray(answer) ? answer : answer.points || answer.trend || [];
  const top = new Set(Array.isArray(answer) ? [] : answer.withheld || []);
  return points.map((point, i) => {
    const own = new Set(point.withheld || []);
    const held = (field) => own.has(field) || [`${i}.${field}`, `points.${i}.${field}`, `trend.${i}.${field}`].some((p) => top.has(p));
    return { ...point, held };
  });
}

function renderTrend(answer) {
  const points = trendPoints(answer);
  const container = $("#chart-trend");
  const months = [...new Set(points.map((p) => p.month_end))].sort();
  if (!points.some((p) => p.stopped !== 0)) {
    return empty(container, "No clocks stopped in these 12 months, so there is no percentage within target to show.");
  }
  const kinds = [...new Set(points.map((p) => p.clock))];
  const text = (p) => {
    if (!p) return "–";
    const stopped = p.stopped === null || p.held("stopped") ? WITHHELD : `${p.stopped}`;
    const share = p.held("pct_within_target") || (p.pct_within_target === null && p.stopped === null) ? WITHHELD
      : p.pct_within_target === null ? "–" : `${p.pct_within_target.toFixed(1)}%`;
    if (share === WITHHELD && stopped === WITHHELD) return WITHHELD;
    return stopped === "0" ? "none stopped" : `${share} of ${stopped} stopped`;
  };
  const at = (kind, month) => points.find((p) => p.clock === kind && p.month_end === month);
  const series = kinds.map((kind) => ({
    name: clockName(kind),
    values: months.map((month) => {
      const p = at(kind, month);
      return { value: p ? p.pct_within_target : null, text: text(p) };
    }),
  }));
  const labels = months.map((m) => dateText(m, { month: "short", year: "2-digit" }));
  lineChart(container, series, labels, {
    max: 100, ticks: [0, 25, 50, 75, 100], format: (v) => `${v}%`, unit: "% of clocks stopped",
    target: TARGET_PCT, targetLabel: `aim ${TARGET_PCT}%`,
  }, `Percentage of clocks stopped within target each month, with the ${TARGET_PCT}% aim marked`);
  numbersTable(container, "% within target each month, and how many clocks stopped",
    ["Month", ...kinds.map(clockName)], months.map((m, i) => [labels[i], ...kinds.map((k) => text(at(k, m)))]));
}

function renderFlows(figures) {
  const flows = figures.weekly_flows;
  const container = $("#chart-flows");
  const fields = [["referrals_in", "Referrals in"], ["started", "Support started"], ["closed", "Closed"]];
  if (!flows.length || flows.every((w) => fields.every(([f]) => w[f] === 0))) {
    return empty(container, "No referrals came in, started or closed in these 12 weeks.");
  }
  const show = (w, i, f) => count(w[f], `weekly_flows.${i}.${f}`);
  const max = Math.max(4, ...flows.flatMap((w) => fields.map(([f]) => w[f] || 0)));
  const tick = Math.max(1, Math.ceil(max / 4));
  const labels = flows.map((w) => dateText(w.week_end, { day: "numeric", month: "short" }));
  lineChart(container, fields.map(([f, name]) => ({
    name, values: flows.map((w, i) => ({ value: w[f], text: show(w, i, f) })),
  })), labels, {
    max: tick * 4, ticks: [0, tick, 2 * tick, 3 * tick, 4 * tick], format: (v) => `${v}`, unit: "referrals a week",
  }, "Referrals in, support started and referrals closed in each week ending on the date shown");
  numbersTable(container, "Referrals each week (weeks end on the date shown)", ["Week ending", ...fields.map(([, n]) => n)],
    flows.map((w, i) => [labels[i], ...fields.map(([f]) => show(w, i, f))]));
}

function renderClocks(figures) {
  const body = $("#clocks tbody");
  const rows = Object.entries(figures.clocks).map(([kind, c]) => {
    const row = element("tr", { "data-clock": kind });
    row.append(element("th", { scope: "row" }, clockName(kind)));
    const p = `clocks.${kind}`;
    const cells = [
      ["stopped", count(c.stopped_in_period, `${p}.stopped_in_period`)],
      ["met", count(c.met_in_period, `${p}.met_in_period`)],
      ["pct", pct(c.pct_within_target, `${p}.pct_within_target`)],
      ["pct-ex", pct(c.pct_within_target_ex, `${p}.pct_within_target_ex`)],
      ["exceptions", count(c.exceptions, `${p}.exceptions`)],
      ["breached", count(c.breached_and_waiting, `${p}.breached_and_waiting`)],
      ["imminent", count(c.imminent_breaches, `${p}.imminent_breaches`)],
    ];
    for (const [name, value] of cells) row.append(element("td", { class: "num", "data-figure": `clock-${kind}-${name}` }, value));
    return row;
  });
  if (!rows.length) {
    const row = element("tr");
    row.append(element("td", { colspan: "8" }, "No service here runs a clock."));
    rows.push(row);
  }
  body.replaceChildren(...rows);
  $("#clocks-caption").textContent = `Clocks that stopped from ${dateText(figures.period_start)} to ${dateText(figures.period_end)}, `
    + `and clocks still running on ${dateText(figures.as_of)}. Each clock is shown on its own: none is picked as “the” figure.`;
}

function renderReasons(figures) {
  const reasons = Object.entries(figures.rejections_by_reason);
  const rows = reasons.map(([code, n]) => {
    const row = element("tr");
    row.append(element("th", { scope: "row" }, reasonName(code)),
      element("td", { class: "num", "data-figure": `reason-${code}` }, count(n, `rejections_by_reason.${code}`)));
    return row;
  });
  if (!rows.length) {
    const row = element("tr");
    row.append(element("td", { colspan: "2" }, "No referral was rejected in the period."));
    rows.push(row);
  }
  const total = element("tr", { class: "total" });
  total.append(element("th", { scope: "row" }, "All rejections"),
    element("td", { class: "num", "data-figure": "rejected" }, count(figures.rejected_in_period, "rejected_in_period")));
  const rate = element("tr", { class: "total" });
  rate.append(element("th", { scope: "row" }, `Rejection rate: rejected of the ${count(figures.closed_in_period, "closed_in_period")} referrals closed`),
    element("td", { class: "num", "data-figure": "rejection-rate-table" }, pct(figures.rejection_rate, "rejection_rate")));
  $("#reasons tbody").replaceChildren(...rows, total, rate);
  $("#reasons-caption").textContent = `Referrals rejected from ${dateText(figures.period_start)} to ${dateText(figures.period_end)}, by the reason given.`;
}

function renderServices(services) {
  const body = $("#risk tbody");
  body.replaceChildren(...services.map((s) => {
    const row = element("tr", { "data-service": s.service_id });
    const own = new Set(s.withheld || []);
    const held = (field, value, format) => (own.has(field) ? WITHHELD : format(value));
    const plain = (value) => (value === null || value === undefined ? "–" : `${value}`);
    const next4 = s.breaches_next_4_weeks.some((n) => n === null) ? WITHHELD : s.breaches_next_4_weeks.reduce((a, b) => a + b, 0);
    const head = element("th", { scope: "row" }, s.name);
    if (s.breached_waiting > 0) {
      row.className = "bad";
      head.append(" ", element("span", { class: "marker" }, "breached"));
    }
    row.append(head, element("td", {}, nameOf("organisation", s.organisation_id)));
    const cells = [
      ["waiting", count(s.waiting)], ["median", held("median_days", s.median_days, plain)],
      ["p90", held("p90_days", s.p90_days, plain)], ["breached", count(s.breached_waiting)], ["imminent", count(s.imminent)],
      ["next4", `${next4}`], ["pct", held("pct_within_target", s.pct_within_target, (v) => pct(v, ""))],
    ];
    for (const [name, value] of cells) row.append(element("td", { class: "num", "data-figure": `service-${name}` }, value));
    return row;
  }));
}

function renderDownloads(params) {
  const scope = params.get("scope"), id = params.get("scope_id"), asOf = params.get("as_of");
  const area = scope === "area" ? id
    : scope === "organisation" ? names.organisation.get(id)?.parent
      : names.organisation.get(names.service.get(id)?.parent)?.parent;
  const year = asOf.slice(0, 4);
  const links = [[
    `../v1/exports/rtt-distribution.csv?${new URLSearchParams({ scope, scope_id: id, as_of: asOf })}`,
    `rtt-distribution-${id}-${asOf}.csv`,
    `Referrals waiting by completed week, ${nameOf(scope, id)}, ${dateText(asOf)} (CSV)`,
  ]];
  const scoped = new URLSearchParams({ scope, scope_id: id, as_of: asOf });
  links.push(
    [`../v1/exports/capacity-weekly.csv?${scoped}`, `capacity-weekly-${id}-${asOf}.csv`,
      `Referrals in, support started and change in waiting per service and week, ${nameOf(scope, id)} (CSV)`],
    [`../v1/exports/breach-forecast.csv?${scoped}`, `breach-forecast-${id}-${asOf}.csv`,
      `Breach forecast and breaches avoided per extra start per service, ${nameOf(scope, id)} (CSV)`],
    [`../v1/exports/impact.csv?${scoped}`, `impact-${id}-${asOf}.csv`,
      `Re-referral, outcomes and time to support per service, ${nameOf(scope, id)} (CSV)`],
  );
  if (area) {
    links.push([
      `../v1/exports/ehc-timeliness.csv?${new URLSearchParams({ area_id: area, year })}`,
      `ehc-timeliness-${area}-${year}.csv`,
      `EHC plans issued within 20 weeks, all and excluding exceptions, ${nameOf("area", area)}, ${year} (CSV)`,
    ]);
  }
  $("#downloads").replaceChildren(...links.map(([href, file, label]) => {
    const item = element("li");
    item.append(element("a", { href, download: file, "data-download": file }, label));
    return item;
  }));
}

// Fetched, then saved, so that a failure is told on the page rather than as a broken download.
$("#downloads").addEventListener("click", async (event) => {
  const link = event.target.closest("a[data-download]");
  if (!link) return;
  event.preventDefault();
  try {
    const blob = await (await request(link.getAttribute("href"))).blob();
    const url = URL.createObjectURL(blob);
    const save = element("a", { href: url, download: link.dataset.download });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    statusLine.className = "error";
    statusLine.textContent = `Could not download ${link.dataset.download} (${error.message}).`;
  }
});

function render(figures, trend, services) {
  hidden = new Set(figures.withheld || []);
  // Clocks summed over clock kinds; withheld if any one is (a sum would otherwise give it back).
  const clocks = Object.entries(figures.clocks);
  const sum = (key) => (clocks.some(([k, c]) => c[key] === null || hidden.has(`clocks.${k}.${key}`)) ? null
    : clocks.reduce((a, [, c]) => a + (c[key] || 0), 0));
  $("#tiles").replaceChildren(
    tile("children's referrals waiting", count(figures.waiting.waiting, "waiting.waiting"), "waiting"),
    tile("median wait (days)", measure(figures.waiting.median_days, "waiting.median_days"), "median"),
    tile("90th percentile wait (days)", measure(figures.waiting.p90_days, "waiting.p90_days"), "p90"),
    tile("clocks breached, still waiting (all clocks)", count(sum("breached_and_waiting")), "breached", "bad"),
    tile("clocks due to breach within 7 days (all clocks)", count(sum("imminent_breaches")), "imminent", "soon"),
    tile("children on more than one list", count(figures.children_on_several_lists, "children_on_several_lists"), "several-lists"),
    tile("closed before support started (12 months)", count(figures.closed_before_support, "closed_before_support"), "closed-before-support"),
    tile("rejection rate (12 months)", pct(figures.rejection_rate, "rejection_rate"), "rejection-rate"),
  );
  renderClocks(figures);
  const d = figures.waiting.distribution;
  const bucket = (name) => ({ value: d[name], text: count(d[name], `waiting.distribution.${name}`) });
  barChart($("#chart-distribution"), [
    { label: "0–4 weeks", ...bucket("0-4") }, { label: "4–18 weeks", ...bucket("4-18") },
    { label: "18–52 weeks", ...bucket("18-52"), tone: "soon" }, { label: "52+ weeks", ...bucket("52+"), tone: "bad" },
  ], "Referrals waiting by completed weeks", "referrals waiting", "No one was waiting on this date.");
  const long = figures.waiting.long_waiters;
  $("#long-waiters").replaceChildren(...Object.entries(long).map(([weeks, n]) =>
    tile(`waiting ${weeks} weeks or more`, count(n, `waiting.long_waiters.${weeks}`), `long-${weeks}`, Number(weeks) >= 52 ? "bad" : "")));
  renderTrend(trend);
  renderFlows(figures);
  // A sum over services with one withheld is withheld too (else it would give it back).
  const weeks = [0, 1, 2, 3].map((w) => (services.some((s) => s.breaches_next_4_weeks[w] === null) ? null
    : services.reduce((a, s) => a + s.breaches_next_4_weeks[w], 0)));
  barChart($("#chart-upcoming"), weeks.map((value, w) => ({ label: `week ${w + 1}`, value, text: count(value), tone: w === 0 ? "bad" : "soon" })),
    "Clocks due to breach in each of the next four weeks", "clocks", "No clock is due to breach in the next 4 weeks.");
  const g = figures.handoff_gaps;
  $("#gap-counts").replaceChildren(
    tile("gaps closed in the period", count(g.closed_in_period, "handoff_gaps.closed_in_period"), "gaps-closed"),
    tile("gaps still open", count(g.open, "handoff_gaps.open"), "open-gaps", "soon"),
  );
  const days = (label, key, tone) => ({ label, value: g[key], text: measure(g[key], `handoff_gaps.${key}`), tone });
  barChart($("#chart-gaps"), [
    days("closed: median", "median_days"), days("closed: 90th percentile", "p90_days"),
    days("still open: median so far", "open_median_days", "bad"),
  ], "Days from a rejection, withdrawal or hand-off to acceptance at another service", "days",
  "No gap between services closed in the period, and none is open.");
  renderReasons(figures);
  renderServices(services);
}

// Demand and capacity (issue #18): weekly flows per service, the breach forecast with its what-if, and the area's
// services ranked by the breaches one more start a week would avoid. Numbers as the API gives them.
let capacity = { weekly: null, params: null };
const held = (row, path) => (row.withheld || []).includes(path);
const shown = (row, path, value) => (held(row, path) || value === null || value === undefined ? WITHHELD : `${value}`);
const areaOf = (scope, id) => (scope === "area" ? id
  : scope === "organisation" ? names.organisation.get(id)?.parent
    : names.organisation.get(names.service.get(id)?.parent)?.parent);

function renderDemand() {
  const weekly = capacity.weekly;
  const container = $("#chart-demand");
  const chosen = $("#demand-service").value;
  const weeks = chosen ? (weekly.services.find((s) => s.service_id === chosen)?.weeks || []) : weekly.weeks;
  const who = chosen ? nameOf("service", chosen) : nameOf(weekly.scope, weekly.scope_id);
  const fields = [["demand", "Referrals in"], ["throughput", "Support started"], ["net_change", "Change in number waiting"]];
  if (!weeks.length || weeks.every((w) => fields.every(([f]) => w[f] === 0))) {
    return empty(container, `No referrals came in or started at ${who} in these weeks.`);
  }
  const labels = weeks.map((w) => dateText(w.week_end, { day: "numeric", month: "short" }));
  const values = weeks.flatMap((w) => fields.map(([f]) => w[f] || 0));
  const top = Math.max(4, ...values), bottom = Math.min(0, ...values);
  const tick = Math.max(1, Math.ceil((top - bottom) / 4));
  const floor = Math.floor(bottom / tick) * tick;
  // lineChart draws from 0 up; shift by the lowest tick so a fall in the list shows below zero.
  const series = fields.map(([f, name]) => ({
    name, values: weeks.map((w) => ({ value: w[f] === null ? null : w[f] - floor, text: shown(w, f, w[f]) })),
  }));
  const ticks = [0, 1, 2, 3, 4].map((i) => i * tick);
  lineChart(container, series, labels, {
    max: 4 * tick, ticks, format: (v) => `${v + floor}`, unit: "referrals a week",
  }, `${who}: referrals in, support started and the change in the number waiting, each week (by the day it ends)`);
  numbersTable(container, `${who}: each week of seven days, the latest ending on the date chosen`,
    ["Week ending", ...fields.map(([, n]) => n), "Waiting at the end"],
    weeks.map((w, i) => [labels[i], ...fields.map(([f]) => shown(w, f, w[f])), shown(w, "waiting_at_end", w.waiting_at_end)]));
}

function renderForecast(answer) {
  const t = answer.total;
  const extra = answer.extra_starts;
  const value = (path, n) => (held(t, path) ? null : n);
  const bar = (label, path, n, tone) => ({ label, value: value(path, n), text: shown(t, path, n), tone });
  const who = nameOf(answer.scope, answer.scope_id);
  barChart($("#chart-forecast"), [
    bar("4 weeks, now", "breaches.4", t.breaches["4"], "soon"),
    bar(`4 weeks, +${extra}`, "breaches_with_extra.4", t.breaches_with_extra["4"]),
    bar("12 weeks, now", "breaches.12", t.breaches["12"], "bad"),
    bar(`12 weeks, +${extra}`, "breaches_with_extra.12", t.breaches_with_extra["12"]),
  ], `${who}: breaches forecast at current throughput and with ${extra} more starts a week`, "breaches forecast",
  "No breaches are forecast in the next 12 weeks, at current throughput or with more starts.");
  numbersTable($("#chart-forecast"), `${who}: breaches forecast after ${dateText(answer.as_of)}`,
    ["Within", "At current throughput", `With ${extra} more a week`, "Avoided"],
    ["4", "12"].map((h) => [`${h} weeks`, shown(t, `breaches.${h}`, t.breaches[h]),
      shown(t, `breaches_with_extra.${h}`, t.breaches_with_extra[h]), shown(t, `avoided.${h}`, t.avoided[h])]));
  const avoided = shown(t, "avoided.12", t.avoided["12"]);
  const result = avoided === WITHHELD ? "the number of breaches avoided in the next 12 weeks is withheld"
    : `${avoided} breach${avoided === "1" ? "" : "es"} avoided in the next 12 weeks`;
  $("#forecast-summary").textContent = `${who}: with ${extra} more start${extra === 1 ? "" : "s"} a week, ${result} `
    + `(now ${shown(t, "throughput_per_week", t.throughput_per_week)} starts a week).`;
}

function renderRanking(answer) {
  const rows = answer.services.map((r) => {
    const row = element("tr", { "data-service": r.scope_id });
    row.append(element("td", { class: "num" }, r.rank === null ? WITHHELD : `${r.rank}`),
      element("th", { scope: "row" }, r.name));
    const cells = [
      ["throughput", shown(r, "throughput_per_week", r.throughput_per_week)],
      ["demand", shown(r, "demand_per_week", r.demand_per_week)],
      ["waiting", shown(r, "waiting", r.waiting)],
      ["breaches-4", shown(r, "breaches.4", r.breaches["4"])],
      ["breaches-12", shown(r, "breaches.12", r.breaches["12"])],
      ["per-start", shown(r, "avoided_per_extra_start", r.avoided_per_extra_start)],
    ];
    for (const [name, text] of cells) row.append(element("td", { class: "num", "data-figure": `rank-${name}` }, text));
    return row;
  });
  if (!rows.length) {
    const row = element("tr");
    row.append(element("td", { colspan: "8" }, "No service in this area."));
    rows.push(row);
  }
  $("#ranking tbody").replaceChildren(...rows);
  $("#ranking-caption").textContent = `Where one more clinician would help most in ${nameOf("area", answer.scope_id)}: `
    + `services ranked by the breaches one more start a week would avoid in the 12 weeks after ${dateText(answer.as_of)}, per extra start.`;
}

async function loadForecast() {
  const params = capacity.params;
  const extra = $("#extra-starts").value || "1";
  const query = new URLSearchParams({ as_of: params.get("as_of"), extra_starts: extra });
  const path = `../v1/capacity/${params.get("scope")}/${encodeURIComponent(params.get("scope_id"))}/forecast?${query}`;
  renderForecast(await api(path));
}

async function loadCapacity(params) {
  capacity.params = params;
  const scope = params.get("scope"), id = params.get("scope_id"), asOf = params.get("as_of");
  const area = areaOf(scope, id) || (scope === "area" ? id : null);
  const weekly = await api(`../v1/capacity/${scope}/${encodeURIComponent(id)}/weekly?${new URLSearchParams({ as_of: asOf })}`);
  capacity.weekly = weekly;
  const select = $("#demand-service");
  const wanted = select.value;
  select.replaceChildren(element("option", { value: "" }, `All of ${nameOf(scope, id)}`),
    ...weekly.services.map((s) => element("option", { value: s.service_id }, nameOf("service", s.service_id))));
  if (weekly.services.some((s) => s.service_id === wanted)) select.value = wanted;
  renderDemand();
  await loadForecast();
  if (area) {
    renderRanking(await api(`../v1/capacity/area/${encodeURIComponent(area)}/forecast?${new URLSearchParams({ as_of: asOf })}`));
  }
}

$("#demand-service").addEventListener("change", () => { if (capacity.weekly) renderDemand(); });
$("#what-if").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!capacity.params) return;
  try {
    await loadForecast();
  } catch (error) {
    if (error instanceof SignedOut) return showSignIn();
    statusLine.className = "error";
    statusLine.textContent = `Could not work out the forecast (${error.message}).`;
  }
});

async function load() {
  const params = new URLSearchParams({ scope: $("#scope").value, scope_id: $("#scope-id").value, as_of: $("#as-of").value });
  history.replaceState(null, "", `?${params}`);
  statusLine.className = "";
  statusLine.textContent = "Loading…";
  const base = params.toString();
  const [figures, trend, services] = await Promise.all([
    api(`../v1/metrics/${params.get("scope")}/${encodeURIComponent(params.get("scope_id"))}?as_of=${params.get("as_of")}`),
    api(`../v1/dashboard/trend?${base}`),
    api(`../v1/dashboard/services?${base}`),
  ]);
  render(figures, trend, services);
  renderDownloads(params);
  await loadCapacity(params);
  statusLine.textContent = `Figures for ${nameOf(params.get("scope"), params.get("scope_id"))} as of ${dateText(params.get("as_of"))}.`;
  document.body.dataset.loaded = base;
}

async function loadScopes() {
  scopes = await api("../v1/dashboard/scopes");
  learnNames();
  fillScopeIds();
}

async function start() {
  const query = new URLSearchParams(location.search);
  $("#as-of").value = query.get("as_of") || londonToday();
  if (query.get("scope")) $("#scope").value = query.get("scope");
  try {
    await loadScopes();
    $("#signout").hidden = false;
    await load();
  } catch (error) {
    if (error instanceof SignedOut) return showSignIn();
    statusLine.className = "error";
    statusLine.textContent = `Could not load figures (${error.message}).`;
  }
}

$("#scope").addEventListener("change", () => { if (scopes) fillScopeIds(); });
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    if (!scopes) await loadScopes();
    await load();
  } catch (error) {
    if (error instanceof SignedOut) return showSignIn();
    statusLine.className = "error";
    statusLine.textContent = `Could not load figures (${error.message}).`;
  }
});
start();
