// Operations dashboard: plain JavaScript and SVG, no third-party code (nothing to fetch at run time).
"use strict";

const $ = (selector) => document.querySelector(selector);
const form = $("#filters");
const statusLine = $("#status");
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#1d70b8", "#d4351c", "#00703c", "#f47738", "#4c2c92", "#b58840", "#28a197", "#d53880"];
let scopes = null;

function token() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem("token", fromHash);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return $("#token").value.trim() || sessionStorage.getItem("token") || "";
}

async function api(path) {
  const response = await fetch(path, { headers: { authorization: `Bearer ${token()}` } });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response.json();
}

// Figures withheld by disclosure control arrive as null with their path in the answer's "withheld" list and
// show as "withheld"; a figure with nothing to measure (no waits, nothing to divide by) shows as "–".
const WITHHELD = "withheld";
let hidden = new Set();
const shown = (value) => (value === null || value === undefined ? WITHHELD : `${value}`);
const measure = (value, path) => (hidden.has(path) ? WITHHELD : value === null || value === undefined ? "–" : `${value}`);
const pct = (value, path) => (hidden.has(path) ? WITHHELD : value === null || value === undefined ? "–" : `${value.toFixed(1)}%`);

function fillScopeIds() {
  const select = $("#scope-id");
  const wanted = new URLSearchParams(location.search).get("scope_id");
  select.innerHTML = "";
  const kind = $("#scope").value;
  const options = kind === "area" ? scopes.areas.map((id) => ({ id, name: id }))
    : kind === "organisation" ? scopes.organisations : scopes.services;
  for (const option of options) {
    const element = document.createElement("option");
    element.value = option.id;
    element.textContent = option.name;
    if (option.id === wanted) element.selected = true;
    select.append(element);
  }
}

function tile(label, value, name, tone = "") {
  const item = document.createElement("li");
  item.className = `tile ${tone}`;
  item.innerHTML = `<span class="value" data-figure="${name}"></span><span class="label"></span>`;
  item.querySelector(".value").textContent = value;
  item.querySelector(".label").textContent = label;
  return item;
}

function svg(width, height, title) {
  const element = document.createElementNS(SVG, "svg");
  element.setAttribute("viewBox", `0 0 ${width} ${height}`);
  element.setAttribute("role", "img");
  const caption = document.createElementNS(SVG, "title");
  caption.textContent = title;
  element.append(caption);
  return element;
}

function add(parent, name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  parent.append(element);
  return element;
}

function barChart(container, bars, title) {
  const width = 560, height = 230, left = 40, bottom = 40, top = 20;
  const max = Math.max(1, ...bars.map((b) => b.value || 0));
  const chart = svg(width, height, `${title}: ${bars.map((b) => `${b.label} ${shown(b.value)}`).join(", ")}`);
  const step = (width - left) / bars.length;
  add(chart, "line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, class: "axis" });
  bars.forEach((bar, i) => {
    const h = ((bar.value || 0) / max) * (height - bottom - top);
    const x = left + i * step + step * 0.15;
    add(chart, "rect", { x, y: height - bottom - h, width: step * 0.7, height: h, class: `bar ${bar.tone || ""}` });
    add(chart, "text", { x: x + step * 0.35, y: height - bottom - h - 5, "text-anchor": "middle" }, bar.text ?? shown(bar.value));
    add(chart, "text", { x: x + step * 0.35, y: height - bottom + 18, "text-anchor": "middle" }, bar.label);
  });
  container.replaceChildren(chart);
}

function lineChart(container, series, months) {
  const width = 560, height = 230, left = 40, bottom = 40, top = 15;
  const chart = svg(width, height, "Percentage of clocks stopped within target each month");
  const x = (i) => left + (i * (width - left - 10)) / Math.max(1, months.length - 1);
  const y = (v) => top + ((100 - v) / 100) * (height - bottom - top);
  for (const level of [0, 50, 100]) {
    add(chart, "line", { x1: left, x2: width, y1: y(level), y2: y(level), class: "axis" });
    add(chart, "text", { x: 4, y: y(level) + 4 }, `${level}%`);
  }
  months.forEach((m, i) => { if (i % 2 === months.length % 2) add(chart, "text", { x: x(i), y: height - 12, "text-anchor": "middle" }, m.slice(0, 7)); });
  const legend = document.createElement("ul");
  legend.className = "legend";
  Object.entries(series).forEach(([clock, values], n) => {
    const colour = COLOURS[n % COLOURS.length];
    const points = values.map((v, i) => (v === null ? null : `${x(i)},${y(v)}`)).filter(Boolean);
    if (points.length) add(chart, "polyline", { points: points.join(" "), class: "line", stroke: colour });
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.style.background = colour; // through the CSSOM: the page's policy allows no inline style attribute
    item.append(swatch, clock);
    legend.append(item);
  });
  container.replaceChildren(chart, legend);
}

function render(figures, trend, services) {
  hidden = new Set(figures.withheld || []);
  const clocks = Object.values(figures.clocks);
  const sum = (key) => (clocks.some((c) => c[key] === null) ? null : clocks.reduce((a, c) => a + (c[key] || 0), 0));
  const main = Object.entries(figures.clocks).sort((a, b) => (b[1].stopped_in_period || 0) - (a[1].stopped_in_period || 0))[0];
  $("#tiles").replaceChildren(
    tile("children's referrals waiting", shown(figures.waiting.waiting), "waiting"),
    tile("median wait (days)", measure(figures.waiting.median_days, "waiting.median_days"), "median"),
    tile("90th percentile wait (days)", measure(figures.waiting.p90_days, "waiting.p90_days"), "p90"),
    tile(main ? `within target: ${main[0]}` : "within target",
      main ? pct(main[1].pct_within_target, `clocks.${main[0]}.pct_within_target`) : "–", "within-target"),
    tile("clocks breached, still waiting", shown(sum("breached_and_waiting")), "breached", "bad"),
    tile("breaches within 7 days", shown(sum("imminent_breaches")), "imminent", "soon"),
    tile("children on more than one list", shown(figures.children_on_several_lists), "several-lists"),
    tile("open gaps between services", shown(figures.handoff_gaps.open), "open-gaps", "soon"),
    tile("closed before support (12 months)", shown(figures.closed_before_support), "closed-before-support"),
    tile("rejection rate (12 months)", pct(figures.rejection_rate, "rejection_rate"), "rejection-rate"),
  );
  const d = figures.waiting.distribution;
  barChart($("#chart-distribution"), [
    { label: "0–4 weeks", value: d["0-4"] }, { label: "4–18 weeks", value: d["4-18"] },
    { label: "18–52 weeks", value: d["18-52"], tone: "soon" }, { label: "52+ weeks", value: d["52+"], tone: "bad" },
  ], "Referrals waiting by completed weeks");
  const months = [...new Set(trend.map((p) => p.month_end))];
  const series = {};
  for (const point of trend) {
    series[point.clock] = series[point.clock] || months.map(() => null);
    series[point.clock][months.indexOf(point.month_end)] = point.pct_within_target;
  }
  lineChart($("#chart-trend"), series, months);
  const g = figures.handoff_gaps;
  barChart($("#chart-gaps"), [
    { label: "closed: median days", value: g.median_days, text: measure(g.median_days, "handoff_gaps.median_days") },
    { label: "closed: 90th pct", value: g.p90_days, text: measure(g.p90_days, "handoff_gaps.p90_days") },
    { label: "open gaps", value: g.open, tone: "soon" },
    { label: "open: median days", value: g.open_median_days, text: measure(g.open_median_days, "handoff_gaps.open_median_days"), tone: "bad" },
  ], "Gaps from a rejection, withdrawal or hand-off to acceptance elsewhere");
  // A sum over services with one withheld is withheld too (else it would give it back).
  const weeks = [0, 1, 2, 3].map((w) => (services.some((s) => s.breaches_next_4_weeks[w] === null) ? null
    : services.reduce((a, s) => a + s.breaches_next_4_weeks[w], 0)));
  barChart($("#chart-upcoming"), weeks.map((value, w) => ({ label: `week ${w + 1}`, value, tone: w === 0 ? "bad" : "soon" })),
    "Clocks due to breach in each of the next four weeks");
  const body = $("#risk tbody");
  body.replaceChildren(...services.map((s) => {
    const row = document.createElement("tr");
    if (s.breached_waiting > 0) row.className = "bad";
    const own = new Set(s.withheld || []);
    const next4 = s.breaches_next_4_weeks.some((n) => n === null) ? WITHHELD : s.breaches_next_4_weeks.reduce((a, b) => a + b, 0);
    const cells = [s.name, shown(s.waiting), own.has("median_days") ? WITHHELD : measure(s.median_days),
      shown(s.breached_waiting), shown(s.imminent), next4, own.has("pct_within_target") ? WITHHELD : pct(s.pct_within_target)];
    cells.forEach((value, i) => {
      const cell = document.createElement(i === 0 ? "th" : "td");
      if (i === 0) cell.scope = "row"; else cell.className = "num";
      cell.textContent = value;
      row.append(cell);
    });
    row.dataset.service = s.service_id;
    return row;
  }));
}

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
  statusLine.textContent = `Figures for ${$("#scope-id").selectedOptions[0].textContent} as of ${params.get("as_of")}.`;
  document.body.dataset.loaded = base;
}

async function start() {
  const query = new URLSearchParams(location.search);
  $("#as-of").value = query.get("as_of") || new Date().toISOString().slice(0, 10);
  if (query.get("scope")) $("#scope").value = query.get("scope");
  token();
  try {
    scopes = await api("../v1/dashboard/scopes");
    fillScopeIds();
    await load();
  } catch (error) {
    statusLine.className = "error";
    statusLine.textContent = `Could not load figures (${error.message}). Paste an ops token and press “Show figures”.`;
  }
}

$("#scope").addEventListener("change", () => { if (scopes) fillScopeIds(); });
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if ($("#token").value.trim()) sessionStorage.setItem("token", $("#token").value.trim());
  try {
    if (!scopes) { scopes = await api("../v1/dashboard/scopes"); fillScopeIds(); }
    await load();
  } catch (error) {
    statusLine.className = "error";
    statusLine.textContent = `Could not load figures (${error.message}).`;
  }
});
start();
