"""Offline checks of the monitoring: the Grafana dashboard's queries and the Prometheus alert rules.

Every metric a query or a rule names must be one the code really exports. The exported metrics are
found twice, and the two must agree: by reading the source for prometheus_client instruments and
collector families, and by importing those modules and asking the instruments themselves (names,
types, label names). Queries are then read by a small PromQL reader (balanced brackets, known
functions, label matchers and groupings, metric names), the rules against the structure Prometheus
and this project expect, and the wiring (prometheus.yml's rule_files, docker-compose.yml's mount).

When ``promtool`` is on PATH (or named by $PROMTOOL) it also checks the config and the rules, parses
every dashboard query, and runs the alerts' unit tests (deploy/prometheus/alerts.test.yml); without it
those tests are skipped and the checks above still run. Nothing is installed at test time.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from send_shared.web.ops import ops_router

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TESTS = PROMETHEUS_DIR / "alerts.test.yml"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
COMPOSE_FILE = ROOT / "docker-compose.yml"
SOURCE_ROOTS = [ROOT / "shared" / "src", *sorted((ROOT / "services").glob("*/src"))]
SERVICE_JOBS = ("referrals", "waitlists", "notifications")
SEVERITIES = {"critical", "warning"}

# --------------------------------------------------------------------------------------------------
# what the code exports


@dataclass(frozen=True)
class Exported:
    name: str  # the family name as declared (a counter without its _total)
    type: str
    labels: frozenset[str]
    module: str


_INSTRUMENT = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary|Info|Enum|(?:Counter|Gauge|Histogram|GaugeHistogram|Summary|Info|StateSet|Unknown)"
    r"MetricFamily)\(\s*\"([A-Za-z_:][A-Za-z0-9_:]*)\""
)


def _module_name(path: Path) -> str:
    for source_root in SOURCE_ROOTS:
        if path.is_relative_to(source_root):
            return ".".join(path.relative_to(source_root).with_suffix("").parts).removesuffix(".__init__")
    raise AssertionError(f"{path} is under no source root")


@functools.cache
def declared_in_source() -> dict[str, str]:
    """Metric family name -> module, for every instrument or collector family constructed with a literal name."""
    found: dict[str, str] = {}
    for source_root in SOURCE_ROOTS:
        for path in sorted(source_root.rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if "prometheus_client" not in text:
                continue
            for _, name in _INSTRUMENT.findall(text):
                found[name.removesuffix("_total")] = _module_name(path)
    return found


@functools.cache
def exported_metrics() -> dict[str, Exported]:
    """Family name -> what the instrument says of itself, from the modules that declare instruments."""
    exported: dict[str, Exported] = {}
    for module_name in sorted(set(declared_in_source().values())):
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                labels = frozenset(value._labelnames)
                for family in value.describe():
                    exported[family.name] = Exported(family.name, family.type, labels, module_name)
            elif _is_collector(value) and type(value).__module__ == module_name:
                for family in value.collect():  # collector families state their label names even when empty
                    labels = frozenset(getattr(family, "_labelnames", ()))
                    exported[family.name] = Exported(family.name, family.type, labels, module_name)
    return exported


def _is_collector(value: object) -> bool:
    """A custom collector instance (prometheus_client's Collector is a protocol: anything with collect())."""
    return not isinstance(value, type) and callable(getattr(value, "collect", None))


_SUFFIXES: dict[str, dict[str, frozenset[str]]] = {
    "counter": {"_total": frozenset()},
    "gauge": {"": frozenset()},
    "histogram": {"_bucket": frozenset({"le"}), "_sum": frozenset(), "_count": frozenset()},
    "gaugehistogram": {"_bucket": frozenset({"le"}), "_gsum": frozenset(), "_gcount": frozenset()},
    "summary": {"": frozenset({"quantile"}), "_sum": frozenset(), "_count": frozenset()},
    "info": {"_info": frozenset()},
    "stateset": {"": frozenset()},
    "unknown": {"": frozenset()},
}


@functools.cache
def scrape_target_labels() -> frozenset[str]:
    """Labels Prometheus attaches to every series it scrapes: job, instance and the static target labels."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    labels = {"job", "instance"}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            labels |= set(static.get("labels", {}))
    return frozenset(labels)


@functools.cache
def job_names() -> frozenset[str]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    return frozenset(job["job_name"] for job in config["scrape_configs"])


@dataclass(frozen=True)
class Series:
    labels: frozenset[str]
    package: str | None  # the service whose code exports it; None for shared code or Prometheus itself


@functools.cache
def queryable_series() -> dict[str, Series]:
    """Series name as queried -> its label names (scrape labels included) and owning service."""
    series: dict[str, Series] = {}
    target = scrape_target_labels()
    for family in exported_metrics().values():
        package = family.module.split(".")[0]
        owner = package if package in SERVICE_JOBS else None
        for suffix, extra in _SUFFIXES[family.type].items():
            series[family.name + suffix] = Series(family.labels | extra | target, owner)
    # Written by Prometheus itself for every target it scrapes.
    series["up"] = Series(target, None)
    return series


@functools.cache
def string_literals_in_source() -> frozenset[str]:
    found: set[str] = set()
    for source_root in SOURCE_ROOTS:
        for path in source_root.rglob("*.py"):
            found |= set(re.findall(r"[\"']([A-Za-z0-9_.\- ]+)[\"']", path.read_text(encoding="utf-8")))
    return frozenset(found)


def test_exported_metrics_found_by_reading_and_by_importing_agree() -> None:
    declared = declared_in_source()
    exported = exported_metrics()
    assert set(declared) == set(exported), (
        f"declared but not importable: {set(declared) - set(exported)}; "
        f"imported but not found in the source: {set(exported) - set(declared)}"
    )
    # The ones this monitoring relies on, with the label names its queries use.
    expect = {
        "waitlist_waiting_referrals": {"service"},
        "waitlist_clock_breached_waiting": {"service", "clock"},
        "waitlist_clock_imminent_breaches": {"service", "clock"},
        "webhook_deliveries_pending": {"state"},
        "webhook_attempts": {"result"},
        "consumer_messages": {"group", "topic", "outcome"},
        "consumer_lag": {"group", "topic", "partition"},
        "consumer_oldest_unread_age_seconds": {"group"},
        "readiness_part_ok": {"part"},
    }
    for name, labels in expect.items():
        assert exported[name].labels == labels, f"{name}: {sorted(exported[name].labels)}"


# --------------------------------------------------------------------------------------------------
# a small PromQL reader

FUNCTIONS = frozenset(
    [
        "abs",
        "absent",
        "absent_over_time",
        "acos",
        "acosh",
        "asin",
        "asinh",
        "atan",
        "atanh",
        "avg_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "cos",
        "cosh",
        "count_over_time",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "days_in_month",
        "deg",
        "delta",
        "deriv",
        "exp",
        "floor",
        "histogram_avg",
        "histogram_count",
        "histogram_fraction",
        "histogram_quantile",
        "histogram_stddev",
        "histogram_stdvar",
        "histogram_sum",
        "holt_winters",
        "hour",
        "idelta",
        "increase",
        "irate",
        "label_join",
        "label_replace",
        "last_over_time",
        "ln",
        "log10",
        "log2",
        "mad_over_time",
        "max_over_time",
        "min_over_time",
        "minute",
        "month",
        "predict_linear",
        "present_over_time",
        "quantile_over_time",
        "rad",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sin",
        "sinh",
        "sort",
        "sort_by_label",
        "sort_by_label_desc",
        "sort_desc",
        "sqrt",
        "stddev_over_time",
        "stdvar_over_time",
        "sum_over_time",
        "tan",
        "tanh",
        "time",
        "timestamp",
        "vector",
        "year",
    ]
)
AGGREGATIONS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ]
)
BINARY_KEYWORDS = frozenset({"and", "or", "unless", "bool", "atan2"})
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
LITERAL_KEYWORDS = frozenset({"inf", "nan"})
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<duration>(?:\d+(?:ms|s|m|h|d|w|y))+)(?![A-Za-z0-9_])
  | (?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=@,:])
  | (?P<open>[(\[{])
  | (?P<close>[)\]}])
    """,
    re.VERBOSE,
)


class PromQLError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str


@dataclass
class Query:
    """What a PromQL expression names: selectors (metric -> their matchers), functions and label lists."""

    selectors: list[tuple[str, list[Matcher]]] = field(default_factory=list)
    functions: set[str] = field(default_factory=set)
    label_lists: list[tuple[str, list[str]]] = field(default_factory=list)  # (keyword, labels)

    @property
    def metrics(self) -> set[str]:
        return {name for name, _ in self.selectors}


def tokenize(expr: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if match is None:
            raise PromQLError(f"unexpected {expr[position : position + 10]!r} at {position}")
        kind = match.lastgroup
        assert kind is not None
        if kind not in ("space", "comment"):
            tokens.append(Token(kind, match.group()))
        position = match.end()
    return tokens


def parse_promql(expr: str) -> Query:
    """Reads ``expr`` far enough to know every name in it; raises PromQLError where it is malformed."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    if "$" in expr:
        raise PromQLError(f"unknown template variable in {expr!r}")
    tokens = tokenize(expr)
    if not tokens:
        raise PromQLError("empty expression")
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for token in tokens:
        if token.kind == "open":
            stack.append(token.text)
        elif token.kind == "close" and (not stack or stack.pop() != pairs[token.text]):
            raise PromQLError(f"unbalanced {token.text!r} in {expr!r}")
    if stack:
        raise PromQLError(f"unclosed {stack[-1]!r} in {expr!r}")

    query = Query()
    i = 0

    def peek(offset: int = 0) -> Token | None:
        return tokens[i + offset] if i + offset < len(tokens) else None

    def label_list(keyword: str) -> None:
        nonlocal i
        if peek() is None or peek().text != "(":  # type: ignore[union-attr]
            if keyword in ("group_left", "group_right"):
                query.label_lists.append((keyword, []))
                return
            raise PromQLError(f"{keyword} without a label list in {expr!r}")
        i += 1
        labels: list[str] = []
        while (token := peek()) is not None and token.text != ")":
            if token.kind != "ident":
                raise PromQLError(f"{keyword}: {token.text!r} is not a label name in {expr!r}")
            labels.append(token.text)
            i += 1
            if (separator := peek()) is not None and separator.text == ",":
                i += 1
        i += 1  # the ")"
        query.label_lists.append((keyword, labels))

    def matchers() -> list[Matcher]:
        nonlocal i
        i += 1  # the "{"
        found: list[Matcher] = []
        while (token := peek()) is not None and token.text != "}":
            op, value = peek(1), peek(2)
            if (
                token.kind != "ident"
                or op is None
                or op.text not in ("=", "!=", "=~", "!~")
                or value is None
                or value.kind != "string"
            ):
                raise PromQLError(f"malformed label matcher at {token.text!r} in {expr!r}")
            found.append(Matcher(token.text, op.text, value.text[1:-1]))
            i += 3
            if (separator := peek()) is not None and separator.text == ",":
                i += 1
        i += 1  # the "}"
        return found

    def range_or_subquery() -> None:
        nonlocal i
        i += 1  # the "["
        parts = []
        while (token := peek()) is not None and token.text != "]":
            parts.append(token)
            i += 1
        i += 1
        if (
            not parts
            or parts[0].kind != "duration"
            or [p.kind for p in parts[1:]] not in ([], ["op"], ["op", "duration"])
        ):
            raise PromQLError(f"malformed range in {expr!r}")

    while i < len(tokens):
        token = tokens[i]
        following = peek(1)
        if token.kind == "ident":
            word = token.text
            if word in LABEL_LIST_KEYWORDS:
                i += 1
                label_list(word)
                continue
            if word == "offset":
                if following is None or following.kind != "duration":
                    raise PromQLError(f"offset without a duration in {expr!r}")
                i += 2
                continue
            if word in BINARY_KEYWORDS or word.lower() in LITERAL_KEYWORDS:
                i += 1
                continue
            if word in AGGREGATIONS and following is not None and following.text in ("(", "by", "without"):
                query.functions.add(word)
                i += 1
                continue
            if following is not None and following.text == "(":
                if word not in FUNCTIONS:
                    raise PromQLError(f"unknown function {word!r} in {expr!r}")
                query.functions.add(word)
                i += 1
                continue
            i += 1
            found = matchers() if (nxt := peek()) is not None and nxt.text == "{" else []
            query.selectors.append((word, found))
            continue
        if token.text == "{":
            raise PromQLError(f"a selector without a metric name in {expr!r}")
        if token.text == "[":
            range_or_subquery()
            continue
        i += 1
    if not query.selectors:
        raise PromQLError(f"no metric in {expr!r}")
    return query


def problems_with(expr: str) -> list[str]:
    """Why ``expr`` does not query what the services export (empty when it does)."""
    try:
        query = parse_promql(expr)
    except PromQLError as exc:
        return [str(exc)]
    series = queryable_series()
    problems = []
    for name, selector_matchers in query.selectors:
        if name not in series:
            problems.append(f"{name} is not exported by the services (nor written by Prometheus)")
            continue
        known = series[name]
        for m in selector_matchers:
            if m.label not in known.labels:
                problems.append(f"{name} has no label {m.label!r}")
            elif m.label == "job":
                wanted = set(m.value.split("|")) if m.op in ("=~", "!~") else {m.value}
                if not wanted <= job_names():
                    problems.append(f"{name}: no scrape job {sorted(wanted - job_names())}")
                if known.package is not None and m.op in ("=", "=~") and wanted != {known.package}:
                    problems.append(f"{name} is exported by {known.package} only, not {sorted(wanted)}")
            elif (
                m.op in ("=", "!=")
                and m.label not in scrape_target_labels()
                and m.value not in string_literals_in_source()
            ):
                problems.append(f"{name}{{{m.label}={m.value!r}}}: the code never writes that value")
    every_label = set().union(*(series[name].labels for name in query.metrics if name in series))
    for keyword, labels in query.label_lists:
        unknown = set(labels) - every_label
        if unknown:
            problems.append(f"{keyword} ({', '.join(labels)}): unknown labels {sorted(unknown)}")
    return problems


def result_labels(expr: str) -> set[str]:
    """A generous guess at the labels an expression's result can carry (used for annotation templates)."""
    query = parse_promql(expr)
    groupings = [labels for keyword, labels in query.label_lists if keyword == "by"]
    if groupings:
        return set().union(*map(set, groupings))
    series = queryable_series()
    return set().union(*(series[name].labels for name in query.metrics))


@pytest.mark.parametrize(
    ("expr", "complaint"),
    [
        ("sum(rate(http_requests_total[5m])", "unclosed"),
        ("sum by (route) (rate(http_requests_total[5m]))]", "unbalanced"),
        ("max(waitlist_waiting_referal)", "not exported"),
        ('max by (team) (waitlist_waiting_referrals{job="waitlists"})', "unknown labels"),
        ('waitlist_waiting_referrals{job="notifications"}', "exported by waitlists only"),
        ('consumer_messages_total{outcome="deadlettered"}', "never writes"),
        ('consumer_lag{lane="1"}', "no label"),
        ("rated(consumer_lag[5m])", "unknown function"),
        ("rate(consumer_lag[5x])", "malformed range"),
        ('{__name__="consumer_lag"}', "without a metric name"),
    ],
)
def test_the_query_checker_rejects_broken_queries(expr: str, complaint: str) -> None:
    found = problems_with(expr)
    assert any(complaint in problem for problem in found), found


def test_the_query_checker_reads_valid_queries() -> None:
    query = parse_promql(
        "histogram_quantile(0.99, sum by (le, service) (rate(outbox_commit_to_publish_seconds_bucket[$__rate_interval]))) "
        '> on (service) group_left max(up{job=~"referrals|waitlists"} offset 1d) and vector(1) > bool 0.5e1'
    )
    assert query.metrics == {"outbox_commit_to_publish_seconds_bucket", "up"}
    assert ("by", ["le", "service"]) in query.label_lists
    assert {"histogram_quantile", "sum", "rate", "max", "vector"} <= query.functions


# --------------------------------------------------------------------------------------------------
# the Grafana dashboards


def dashboards() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(DASHBOARDS.glob("*.json")):
        yield path, json.loads(path.read_text(encoding="utf-8"))


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def dashboard_expressions() -> list[str]:
    return [t["expr"] for _, d in dashboards() for panel in query_panels(d) for t in panel["targets"]]


def test_dashboards_are_well_formed() -> None:
    paths = list(dashboards())
    assert paths, "no dashboard"
    uids = [d["uid"] for _, d in paths]
    assert len(uids) == len(set(uids))
    for path, dashboard in paths:
        assert dashboard["title"] and dashboard["schemaVersion"] >= 36, path.name
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        occupied: set[tuple[int, int]] = set()
        for panel in dashboard["panels"]:
            where = f"{path.name}: {panel.get('title')!r}"
            assert panel["type"] in {"row", "timeseries", "stat", "state-timeline", "bargauge", "table", "gauge"}, where
            assert panel["title"], where
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, where
            cells = {
                (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not cells & occupied, f"{where} overlaps another panel"
            occupied |= cells
            if panel["type"] == "row":
                assert "targets" not in panel, where
                continue
            assert panel["description"], f"{where}: say what the panel shows"
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, where
            assert panel["targets"], where
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), where
            for t in panel["targets"]:
                assert t["expr"].strip() and t["datasource"] == panel["datasource"], where


def test_dashboard_queries_name_real_metrics_and_labels() -> None:
    problems = {expr: found for expr in dashboard_expressions() if (found := problems_with(expr))}
    assert not problems, json.dumps(problems, indent=2)


def panel_queries() -> dict[str, list[Query]]:
    return {
        panel["title"]: [parse_promql(t["expr"]) for t in panel["targets"]]
        for _, d in dashboards()
        for panel in query_panels(d)
    }


def panel_with(
    metric: str, *, grouped_by: set[str] | frozenset[str] = frozenset(), matcher: Matcher | None = None
) -> str:
    """The title of a panel that queries ``metric`` grouped by at least ``grouped_by`` (and with ``matcher``)."""
    for title, queries in panel_queries().items():
        for q in queries:
            for name, found in q.selectors:
                by = {label for keyword, labels in q.label_lists if keyword == "by" for label in labels}
                if name == metric and grouped_by <= by and (matcher is None or matcher in found):
                    return title
    raise AssertionError(f"no panel queries {metric} by {sorted(grouped_by)} {matcher or ''}")


def test_dashboard_shows_the_waiting_lists_webhooks_dead_letters_lag_and_readiness() -> None:
    waiting = Matcher("job", "=", "waitlists")
    assert panel_with("waitlist_waiting_referrals", grouped_by={"service"}, matcher=waiting)
    assert panel_with("waitlist_clock_breached_waiting", grouped_by={"service", "clock"}, matcher=waiting)
    assert panel_with("waitlist_clock_imminent_breaches", grouped_by={"service", "clock"}, matcher=waiting)
    assert panel_with("webhook_deliveries_pending", grouped_by={"state"})
    assert panel_with("webhook_attempts_total", grouped_by={"result"})
    assert panel_with("consumer_messages_total", grouped_by={"group"}, matcher=Matcher("outcome", "=", "dead_lettered"))
    assert panel_with("consumer_lag", grouped_by={"group", "topic"})
    assert panel_with("consumer_oldest_unread_age_seconds", grouped_by={"group"})
    assert panel_with("up", grouped_by={"job"})
    assert panel_with("readiness_part_ok", grouped_by={"part"})
    # and the technical panels it had before
    assert panel_with("http_requests_total", grouped_by={"service"})
    assert panel_with("outbox_published_events_total", grouped_by={"topic"})
    assert panel_with("consumer_messages_total", grouped_by={"outcome"})
    assert panel_with("outbox_commit_to_publish_seconds_bucket", grouped_by={"le"})


def test_waiting_list_gauges_keep_their_service_label() -> None:
    """The waiting-list gauges label the SEND service `service`, as does the scrape config (the microservice):
    the waitlists job must honour the scraped label, or Prometheus renames it `exported_service`."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name, family in exported_metrics().items():
        if family.labels & scrape_target_labels():
            job = family.module.split(".")[0]
            assert jobs[job].get("honor_labels") is True, f"{name}: its labels {sorted(family.labels)} clash"


# --------------------------------------------------------------------------------------------------
# the alert rules

DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")
TEMPLATE_LABEL = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert set(document) == {"groups"}
    rules = []
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit", "labels"}, group.get("name")
        assert group["name"] and group["rules"], group
        rules += group["rules"]
    return rules


def test_prometheus_loads_the_rules_and_compose_mounts_them() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    assert config["rule_files"] == ["alerts.yml"]
    groups = [g["name"] for g in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]]
    assert len(groups) == len(set(groups)), "duplicate rule group names"

    prometheus = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]["prometheus"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"] if v.startswith("./")}
    (config_arg,) = [arg for arg in prometheus["command"] if arg.startswith("--config.file=")]
    config_in_container = Path(config_arg.removeprefix("--config.file="))
    assert mounts[str(config_in_container)] == "./deploy/prometheus/prometheus.yml"
    # rule_files are read relative to the config file
    for rule_file in config["rule_files"]:
        assert mounts[str(config_in_container.parent / rule_file)] == f"./deploy/prometheus/{rule_file}"


def test_every_alert_rule_is_complete_and_queries_real_metrics() -> None:
    rules = alert_rules()
    names = [rule.get("alert") for rule in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    problems: dict[str, list[str]] = {}
    for rule in rules:
        name = rule.get("alert") or f"record {rule.get('record')}"
        found = []
        if unknown_keys := set(rule) - {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}:
            found.append(f"unknown keys {sorted(unknown_keys)}")
        if not rule.get("alert"):
            found.append("not an alert")
        if not isinstance(rule.get("for"), str) or not DURATION.fullmatch(rule["for"]):
            found.append(f"for: {rule.get('for')!r} is not a duration")
        if (rule.get("labels") or {}).get("severity") not in SEVERITIES:
            found.append(f"labels.severity must be one of {sorted(SEVERITIES)}")
        annotations = rule.get("annotations") or {}
        if not annotations.get("summary") or not annotations.get("description"):
            found.append("needs annotations.summary and annotations.description")
        expr = rule.get("expr")
        if not isinstance(expr, str) or not expr.strip():
            found.append("no expr")
        else:
            found += problems_with(expr)
            if not found:
                available = result_labels(expr)
                for text in annotations.values():
                    for label in TEMPLATE_LABEL.findall(text):
                        if label not in available:
                            found.append(f"annotation uses $labels.{label}, which the result does not carry")
        if found:
            problems[name] = found
    assert not problems, json.dumps(problems, indent=2)


def test_the_alerts_cover_breaches_dead_letters_lag_webhooks_and_readiness() -> None:
    covered = {rule["alert"]: parse_promql(rule["expr"]) for rule in alert_rules()}

    def alerting_on(metric: str, matcher: Matcher | None = None) -> list[str]:
        return [
            name
            for name, q in covered.items()
            if any(n == metric and (matcher is None or matcher in found) for n, found in q.selectors)
        ]

    assert alerting_on("waitlist_clock_imminent_breaches")
    assert "offset" in next(
        r["expr"] for r in alert_rules() if r["alert"] in alerting_on("waitlist_clock_imminent_breaches")
    )
    assert alerting_on("consumer_messages_total", Matcher("outcome", "=", "dead_lettered"))
    assert alerting_on("consumer_lag")
    assert alerting_on("consumer_oldest_unread_age_seconds")
    assert alerting_on("webhook_deliveries_pending", Matcher("state", "=", "waiting_retry"))
    assert alerting_on("up", Matcher("job", "=~", "|".join(SERVICE_JOBS)))
    assert alerting_on("readiness_part_ok")


def test_the_alerts_are_documented() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for rule in alert_rules():
        assert f"`{rule['alert']}`" in readme, f"deploy/README.md does not describe {rule['alert']}"


# --------------------------------------------------------------------------------------------------
# the readiness gauge the alerts read


async def test_metrics_report_each_part_readiness() -> None:
    parts: dict[str, str | None] = {"outbox": None, "consumer test-monitoring": "stuck since 12:00"}
    app = FastAPI()
    app.include_router(ops_router({}, lambda: parts))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        text = (await client.get("/metrics")).text
        parts["consumer test-monitoring"] = None
        text_after = (await client.get("/metrics")).text

    def readiness(exposition: str) -> dict[str, float]:
        return {
            sample.labels["part"]: sample.value
            for family in text_string_to_metric_families(exposition)
            if family.name == "readiness_part_ok"
            for sample in family.samples
            if sample.labels["part"] in parts
        }

    assert readiness(text) == {"outbox": 1.0, "consumer test-monitoring": 0.0}
    assert readiness(text_after) == {"outbox": 1.0, "consumer test-monitoring": 1.0}


# --------------------------------------------------------------------------------------------------
# promtool, when it is there


def promtool() -> str:
    beside_python = Path(sys.executable).parent / "promtool"  # where `make promtool` puts it
    found = (
        os.environ.get("PROMTOOL")
        or shutil.which("promtool")
        or (str(beside_python) if beside_python.exists() else None)
    )
    if not found:
        pytest.skip("promtool is not installed (Debian: prometheus); the checks above ran without it")
    return found


def run_promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> None:
    result = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_config_and_the_rules() -> None:
    run_promtool("check", "config", PROMETHEUS_CONFIG.name)  # loads the rule files it names, too
    run_promtool("check", "rules", ALERTS.name)


def test_promtool_runs_the_alert_unit_tests() -> None:
    run_promtool("test", "rules", ALERTS_TESTS.name)


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    expressions = dashboard_expressions()
    for variable, value in GRAFANA_VARIABLES.items():
        expressions = [e.replace(variable, value) for e in expressions]
    rules = [{"record": f"dashboard:query_{n}", "expr": e} for n, e in enumerate(expressions)]
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run_promtool("check", "rules", "dashboard.yml", cwd=tmp_path)
