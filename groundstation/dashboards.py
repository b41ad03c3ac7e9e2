"""Grafana dashboards generated from the mission database and the metric contract.

    python -m groundstation.dashboards --write deploy/grafana/dashboards   # regenerate
    python -m groundstation.dashboards --check deploy/grafana/dashboards   # exit 1 if stale

Three kinds of dashboard, built with Grafana Labs' typed builders
(``grafana-foundation-sdk``) and written as JSON for Grafana's file provisioning:

- ``fleet-overview.json``: every spacecraft side by side (links, frame age, rates,
  rejects, gaps, alarm counts, onboard and light time);
- ``health-<spacecraft>.json``: one per spacecraft, a row per subsystem and a stat
  panel per housekeeping parameter with its unit and its own limits as thresholds
  (enumerations: their state names and colours as value mappings);
- ``ground-station.json``: links, chain stages, export latency, archive, MQTT, commands.

Every metric name used is checked against :data:`groundstation.metrics.METRICS` while
generating, so renaming a metric without regenerating fails here, not silently in Grafana.
Panels that count events (rejects, gaps, alarms, commands) fall back to 0 when there
were none, so an operator sees "0", not "No data", on a quiet day.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import timeseries as ts_b
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common, units
from grafana_foundation_sdk.models import dashboard as dash_m

from groundstation.metrics import LATENCY_NAME, SPECS
from protocols.missions import ParameterInfo, Registry, Spacecraft, builtin_registry, registry
from protocols.parameters import Limits, StateLimits, States

#: The provisioned Prometheus datasource (deploy/grafana/provisioning/datasources/prometheus.yaml).
DATASOURCE_UID = "queqiao-prometheus"
#: The full-resolution store that [[remote_write]] fills (deploy/grafana/provisioning/datasources/full-resolution.yaml).
FULL_RESOLUTION_UID = "queqiao-full-resolution"
#: Every panel queries the dashboard's `datasource` variable: the scraping Prometheus by default, or any other
#: Prometheus-API datasource, such as the full-resolution store, chosen at the top of the dashboard.
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = dash_m.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards"
TAG = "queqiao"
HEALTH_TAG = "queqiao-health"
HEALTH_PREFIX = "health-"

GREEN, YELLOW, RED, BLUE, GREY = "green", "yellow", "red", "blue", "text"

#: Mission-database units -> Grafana unit ids; anything else is shown as a suffix.
UNITS: dict[str, str] = {
    "V": units.Volt, "A": units.Ampere, "W": units.Watt, "degC": units.Celsius, "K": units.Kelvin,
    "%": units.Percent, "deg": units.Degrees, "m": units.Meter, "km": units.Kilometer,
    "mm": units.Millimeter, "s": units.Seconds, "ms": units.Milliseconds, "us": units.Microseconds,
    "h": units.Hours, "d": units.Days, "rpm": units.RevolutionsPerMinute, "dBm": units.DecibelMilliWatt,
    "dB": units.Decibel, "m/s": units.MetersPerSecond, "kg": units.Kilogram, "J": units.Joule,
    "N": units.Newtons, "Pa": units.Pascals, "": units.NoUnit,
}


def grafana_unit(unit: str) -> str:
    return UNITS.get(unit, f"suffix: {unit}")


def metric(name: str) -> str:
    """A metric name from the contract (groundstation.metrics): fail loudly on a typo or a rename."""
    base = name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
    if name not in SPECS and base != LATENCY_NAME:
        raise KeyError(f"{name!r} is not a metric of groundstation.metrics.METRICS")
    return name


# Shorthands for the expressions below.
LAST_FRAME = metric("queqiao_spacecraft_last_frame_timestamp_seconds")


def zero_per_spacecraft(selector: str = "") -> str:
    """0 for every spacecraft that has sent a frame: the fallback side of ``X or ...``."""
    return f"sum by (spacecraft) (0 * {LAST_FRAME}{selector})"


# --------------------------------------------------------------------------- panel helpers


@dataclass
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


class PanelIds:
    """Stable, unique panel ids in the order panels are made (for links to ``viewPanel=``)."""

    def __init__(self) -> None:
        self.next = 0

    def __call__(self) -> int:
        self.next += 1
        return self.next


def _targets(queries: Sequence[Query]) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    out: list[cogbuilder.Builder[cogvariants.Dataquery]] = []
    for i, q in enumerate(queries):
        t = prom_b.Dataquery().expr(q.expr).ref_id(chr(ord("A") + i)).datasource(DATASOURCE)
        if q.legend:
            t = t.legend_format(q.legend)
        out.append(t.instant() if q.instant else t.range())
    return out


def thresholds(steps: Iterable[tuple[float | None, str]]) -> dash_b.ThresholdsConfig:
    return (dash_b.ThresholdsConfig().mode(dash_m.ThresholdsMode.ABSOLUTE)
            .steps([dash_m.Threshold(value=v, color=c) for v, c in steps]))


def limit_steps(limits: Limits) -> list[tuple[float | None, str]]:
    """Grafana threshold steps (ascending; each colours values >= its value) from numeric limits.

    Below the critical range red, between critical and warning yellow, inside the warning
    range green, then yellow and red again above.  A step on the upper warning/critical
    bound colours that exact value as the next band, where Limits still call it the inner
    one: only the boundary value itself differs.
    """
    clo, chi = limits.critical or (None, None)
    wlo, whi = limits.warning or (None, None)
    base = RED if clo is not None else YELLOW if wlo is not None else GREEN
    steps: list[tuple[float | None, str]] = [(None, base)]
    for value, color in ((clo, YELLOW if wlo is not None else GREEN), (wlo, GREEN), (whi, YELLOW), (chi, RED)):
        if value is None:
            continue
        if steps[-1][0] is not None and steps[-1][0] == value:
            steps[-1] = (value, color)  # equal bounds: the outer band wins (as classify does above)
        else:
            steps.append((float(value), color))
    return steps


def state_mappings(states: States, limits: StateLimits | None) -> list[dash_m.ValueMap]:
    """Raw state code -> name, coloured by the state limits (critical red, warning yellow, else green)."""
    options: dict[str, dash_m.ValueMappingResult] = {}
    for index, (code, name) in enumerate(sorted(states.states.items())):
        color = GREEN
        if limits is not None and name in limits.critical:
            color = RED
        elif limits is not None and name in limits.warning:
            color = YELLOW
        options[str(code)] = dash_m.ValueMappingResult(text=name, color=color, index=index)
    return [dash_m.ValueMap(options=options)]


def stat(ids: PanelIds, title: str, queries: Sequence[Query], *, unit: str = units.NoUnit, width: int = 4,
         height: int = 4, steps: Iterable[tuple[float | None, str]] = ((None, GREEN),),
         mappings: Sequence[dash_m.ValueMap] = (), description: str = "", graph: bool = True,
         color_mode: common.BigValueColorMode = common.BigValueColorMode.BACKGROUND,
         links: Sequence[dash_b.DashboardLink] = (), decimals: int | None = None,
         instant: bool | None = None) -> stat_b.Panel:
    # Without a sparkline only the latest value shows: an instant query is enough (and exact for $__range).
    instant = not graph if instant is None else instant
    queries = [Query(q.expr, q.legend, instant) for q in queries]
    panel = (stat_b.Panel().id(ids()).title(title).datasource(DATASOURCE).targets(_targets(queries))
             .unit(unit).span(width).height(height).thresholds(thresholds(steps))
             .color_scheme(dash_b.FieldColor().mode(dash_m.FieldColorModeId.THRESHOLDS))
             .graph_mode(common.BigValueGraphMode.AREA if graph else common.BigValueGraphMode.NONE)
             .color_mode(color_mode).text_mode(common.BigValueTextMode.VALUE_AND_NAME
                                               if any(q.legend for q in queries) else common.BigValueTextMode.AUTO)
             .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .no_value("no data"))
    if description:
        panel = panel.description(description)
    if mappings:
        panel = panel.mappings(list(mappings))
    if links:
        panel = panel.data_links(list(links))
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def timeseries(ids: PanelIds, title: str, queries: Sequence[Query], *, unit: str = units.NoUnit, width: int = 12,
               height: int = 8, description: str = "") -> ts_b.Panel:
    panel = (ts_b.Panel().id(ids()).title(title).datasource(DATASOURCE).targets(_targets(queries))
             .unit(unit).span(width).height(height).fill_opacity(10).line_width(1)
             .legend(common_b.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
                     .placement(common.LegendPlacement.RIGHT).show_legend(True).calcs(["lastNotNull", "max"]))
             .tooltip(common_b.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                      .sort(common.SortOrder.DESCENDING)))
    if description:
        panel = panel.description(description)
    return panel


def row(ids: PanelIds, title: str) -> dash_b.Row:
    return dash_b.Row(title).id(ids())


def _dashboard(uid: str, title: str, description: str, tags: list[str]) -> dash_b.Dashboard:
    default = dash_m.VariableOption(selected=True, text="Queqiao Prometheus", value=DATASOURCE_UID)
    source = (dash_b.DatasourceVariable(DATASOURCE_VARIABLE).label("Data source").type("prometheus")
              .current(default).description("The scraping Prometheus, or the full-resolution store (docs/HISTORY.md)"))
    return (dash_b.Dashboard(title).uid(uid).description(description).tags(tags).refresh("10s").time("now-1h", "now")
            .timezone("utc").tooltip(dash_m.DashboardCursorSync.CROSSHAIR).readonly()
            .with_variable(source)
            .link(dash_b.DashboardLink("Queqiao").type(dash_m.DashboardLinkType.DASHBOARDS).tags([TAG])
                  .as_dropdown(True).include_vars(False).keep_time(True)))


def health_link(title: str = "Health of ${__field.labels.spacecraft}") -> dash_b.DashboardLink:
    return (dash_b.DashboardLink(title).url(f"/d/{HEALTH_PREFIX}${{__field.labels.spacecraft}}?${{__url_time_range}}")
            .target_blank(False))


# --------------------------------------------------------------------------- fleet overview


def fleet_overview(reg: Registry) -> dash_b.Dashboard:
    ids = PanelIds()
    names = ", ".join(sc.name for sc in reg)
    d = _dashboard("queqiao-fleet", "Queqiao / Fleet overview",
                   f"Every spacecraft at a glance ({names}). Generated by groundstation.dashboards.",
                   [TAG, "fleet"])
    sc_legend = "{{spacecraft}}"
    d = d.with_row(row(ids, "Contact"))
    d = d.with_panel(stat(ids, "Links up", [Query(metric("queqiao_link_up"), "{{link}}")], width=6, graph=False,
                          steps=[(None, RED), (1, GREEN)], description="1 while a link is connected or bound.",
                          mappings=[dash_m.ValueMap(options={
                              "0": dash_m.ValueMappingResult(text="DOWN", color=RED, index=0),
                              "1": dash_m.ValueMappingResult(text="UP", color=GREEN, index=1)})]))
    d = d.with_panel(stat(ids, "Last frame age", [Query(f"time() - {LAST_FRAME}", sc_legend)], unit=units.Seconds,
                          width=18, graph=False, steps=[(None, GREEN), (60, YELLOW), (300, RED)], decimals=0,
                          description="Seconds since the last good frame per spacecraft (ground receipt time). "
                                      "Red at 300 s, as the QueqiaoNoTelemetry alert. Click for its health dashboard.",
                          links=[health_link()]))
    d = d.with_panel(timeseries(ids, "Frame rate", [Query(
        f"sum by (spacecraft) (rate({metric('queqiao_frames_total')}[$__rate_interval]))", sc_legend)],
        unit="fps", description="Good frames per second, all virtual channels (idle frames included)."))
    d = d.with_panel(timeseries(ids, "Packet rate", [Query(
        f"sum by (spacecraft) (rate({metric('queqiao_packets_total')}[$__rate_interval]))", sc_legend)],
        unit=units.PacketsPerSecond, description="Space packets extracted per second."))
    d = d.with_row(row(ids, "Losses and rejects"))
    rejected = metric("queqiao_frames_rejected_total")
    d = d.with_panel(timeseries(ids, "Rejected frames by reason", [Query(
        f"sum by (link, reason) (rate({rejected}[$__rate_interval]))"
        f" or sum by (link, reason) (label_replace(0 * {metric('queqiao_link_up')}, \"reason\", \"none\", \"\", \"\"))",
        "{{link}} {{reason}}")], unit="fps",
        description="Frames rejected per second by link and reason (fecf, sync, unknown SCID, ...); "
                    "reason \"none\" at 0 while nothing was rejected."))
    d = d.with_panel(timeseries(ids, "Rejected packets by reason", [Query(
        f"sum by (spacecraft, reason) (rate({metric('queqiao_packets_rejected_total')}[$__rate_interval]))"
        f" or sum by (spacecraft, reason) (label_replace(0 * {LAST_FRAME}, \"reason\", \"none\", \"\", \"\"))",
        "{{spacecraft}} {{reason}}")], unit=units.PacketsPerSecond,
        description="Packets rejected per second by spacecraft and reason."))
    gap_steps = [(None, GREEN), (1, YELLOW)]
    for title, name, what in (
            ("Frame gaps", "queqiao_frame_gaps_total", "Frames lost (virtual channel frame count gaps)"),
            ("Packet gaps", "queqiao_packet_gaps_total", "Packets lost (sequence count gaps)"),
            ("Duplicate packets", "queqiao_packet_duplicates_total", "Packets seen twice")):
        d = d.with_panel(stat(ids, f"{title} (time range)", [Query(
            f"sum by (spacecraft) (increase({metric(name)}[$__range])) or {zero_per_spacecraft()}", sc_legend)],
            width=8, graph=False, steps=gap_steps, decimals=0,
            description=f"{what} within the dashboard's time range, per spacecraft."))
    d = d.with_row(row(ids, "Alarms"))
    limit_state = metric("queqiao_parameter_limit_state")
    for title, level, color in (("Parameters in warning", 1, YELLOW), ("Parameters in critical", 2, RED)):
        d = d.with_panel(stat(ids, title, [Query(
            f"count by (spacecraft) ({limit_state} == {level}) or {zero_per_spacecraft()}", sc_legend)],
            width=8, graph=False, steps=[(None, GREEN), (1, color)], decimals=0, links=[health_link()],
            description=f"Housekeeping parameters whose latest value is {'warning' if level == 1 else 'critical'} "
                        "(queqiao_parameter_limit_state). Click for the spacecraft's health dashboard."))
    d = d.with_panel(stat(ids, "Limit transitions (time range)", [Query(
        f"sum by (spacecraft) (increase({metric('queqiao_alarms_total')}{{state!=\"nominal\"}}[$__range]))"
        f" or {zero_per_spacecraft()}", sc_legend)], width=8, graph=False, steps=[(None, GREEN), (1, YELLOW)],
        decimals=0, description="Transitions of any parameter into warning or critical within the time range."))
    d = d.with_row(row(ids, "Time"))
    d = d.with_panel(stat(ids, "Onboard time (UTC)", [Query(
        f"{metric('queqiao_spacecraft_onboard_time_seconds')} * 1000", sc_legend)], unit=units.DatetimeISO,
        width=10, graph=False, color_mode=common.BigValueColorMode.NONE,
        description="Latest onboard time per spacecraft (CUC time of the latest packet)."))
    d = d.with_panel(stat(ids, "Onboard minus ground receipt", [Query(
        f"{metric('queqiao_spacecraft_onboard_time_seconds')} - {LAST_FRAME}", sc_legend)], unit=units.Seconds,
        width=7, graph=False, color_mode=common.BigValueColorMode.NONE,
        description="Onboard time of the latest packet minus the ground time of the latest frame: about minus "
                    "the light time (plus packet age) when the onboard clock is right."))
    d = d.with_panel(stat(ids, "One-way light time", [Query(metric("queqiao_light_time_seconds"), sc_legend)],
                          unit=units.Seconds, width=7, graph=False, color_mode=common.BigValueColorMode.NONE,
                          description="One-way light time for spacecraft far enough for it to matter."))
    return d


# --------------------------------------------------------------------------- per-spacecraft health


def parameter_description(info: ParameterInfo) -> str:
    parts = [f"{info.description}.", f"{info.packet}.{info.path} ({info.data_type}); {info.calibration.describe()}."]
    if info.limits is not None:
        parts.append(f"Limits: {info.limits.describe()}.")
    return " ".join(parts)


def parameter_panel(ids: PanelIds, info: ParameterInfo) -> stat_b.Panel:
    expr = (f'{metric("queqiao_parameter_value")}{{spacecraft="$spacecraft", subsystem="{info.subsystem}", '
            f'parameter="{info.name}"}}')
    title = f"{info.name} ({info.unit})" if info.unit and info.unit != "state" else info.name
    calibration = info.calibration
    if isinstance(calibration, States):
        limits = info.limits if isinstance(info.limits, StateLimits) else None
        return stat(ids, title, [Query(expr)], mappings=state_mappings(calibration, limits), steps=[(None, BLUE)],
                    description=parameter_description(info), graph=False, instant=False)
    steps = limit_steps(info.limits) if isinstance(info.limits, Limits) else [(None, GREEN)]
    return stat(ids, title, [Query(expr)], unit=grafana_unit(info.unit), steps=steps,
                description=parameter_description(info))


def health(reg: Registry, sc: Spacecraft) -> dash_b.Dashboard:
    ids = PanelIds()
    d = _dashboard(f"{HEALTH_PREFIX}{sc.name}", f"Queqiao / Health / {sc.name}",
                   f"{sc.description}. Every housekeeping parameter with its unit and limits, a row per subsystem. "
                   "Generated from the mission database by groundstation.dashboards.", [TAG, HEALTH_TAG, sc.name])
    d = d.with_variable(dash_b.CustomVariable("spacecraft").label("Spacecraft").values(sc.name).allow_custom_value(False)
                        .current(dash_m.VariableOption(selected=True, text=sc.name, value=sc.name))
                        .options([dash_m.VariableOption(selected=True, text=sc.name, value=sc.name)]))
    d = d.link(dash_b.DashboardLink("Health").type(dash_m.DashboardLinkType.DASHBOARDS).tags([HEALTH_TAG])
               .as_dropdown(True).keep_time(True))
    sel = '{spacecraft="$spacecraft"}'
    d = d.with_row(row(ids, "Contact"))
    d = d.with_panel(stat(ids, "Last frame age", [Query(f"time() - {LAST_FRAME}{sel}")], unit=units.Seconds,
                          steps=[(None, GREEN), (60, YELLOW), (300, RED)], graph=False, decimals=0,
                          description="Seconds since the last good frame from this spacecraft."))
    d = d.with_panel(stat(ids, "Frame rate", [Query(
        f"sum(rate({metric('queqiao_frames_total')}{sel}[$__rate_interval]))")], unit="fps",
        description="Good frames per second (all virtual channels)."))
    d = d.with_panel(stat(ids, "Packet rate", [Query(
        f"sum(rate({metric('queqiao_packets_total')}{sel}[$__rate_interval]))")], unit=units.PacketsPerSecond,
        description="Space packets per second."))
    d = d.with_panel(stat(ids, "Parameters in warning", [Query(
        f"count({metric('queqiao_parameter_limit_state')}{sel} == 1) or vector(0)")],
        steps=[(None, GREEN), (1, YELLOW)], graph=False, decimals=0))
    d = d.with_panel(stat(ids, "Parameters in critical", [Query(
        f"count({metric('queqiao_parameter_limit_state')}{sel} == 2) or vector(0)")],
        steps=[(None, GREEN), (1, RED)], graph=False, decimals=0))
    d = d.with_panel(stat(ids, "Packet gaps (time range)", [Query(
        f"sum(increase({metric('queqiao_packet_gaps_total')}{sel}[$__range])) or vector(0)")],
        steps=[(None, GREEN), (1, YELLOW)], graph=False, decimals=0))
    d = d.with_row(row(ids, "Events"))
    d = d.with_panel(timeseries(ids, "Events by severity", [Query(
        f"sum by (severity) (increase({metric('queqiao_events_total')}{sel}[$__rate_interval]))", "{{severity}}")],
        width=12, description="Onboard events (PUS 5) and the ground's own (limit transitions, link up/down, "
                              "bursts of rejected frames, command outcomes); the list: `groundstation events`."))
    d = d.with_panel(timeseries(ids, "Events by name", [Query(
        f"sum by (event) (increase({metric('queqiao_events_total')}{sel}[$__rate_interval]))", "{{event}}")],
        width=12, description="Events per name: every declared event (at 0 until it happens) and the ground's own."))
    by_subsystem: dict[str, list[ParameterInfo]] = {}
    for info in reg.parameters(sc):
        by_subsystem.setdefault(info.subsystem, []).append(info)
    for subsystem, infos in by_subsystem.items():
        d = d.with_row(row(ids, f"{subsystem} ({len(infos)} parameters)"))
        for info in infos:
            d = d.with_panel(parameter_panel(ids, info))
    return d


# --------------------------------------------------------------------------- ground station


def ground_station() -> dash_b.Dashboard:
    ids = PanelIds()
    d = _dashboard("queqiao-groundstation", "Queqiao / Ground station",
                   "The daemon itself: links, chain stages, export latency, archive, MQTT and commanding. "
                   "Generated by groundstation.dashboards.", [TAG, "groundstation"])
    link = "{{link}}"
    d = d.with_row(row(ids, "Links"))
    d = d.with_panel(stat(ids, "Link up", [Query(metric("queqiao_link_up"), link)], width=6, graph=False,
                          steps=[(None, RED), (1, GREEN)],
                          mappings=[dash_m.ValueMap(options={
                              "0": dash_m.ValueMappingResult(text="DOWN", color=RED, index=0),
                              "1": dash_m.ValueMappingResult(text="UP", color=GREEN, index=1)})]))
    d = d.with_panel(stat(ids, "Last frame age per link", [Query(
        f"time() - {metric('queqiao_link_last_frame_timestamp_seconds')}", link)], unit=units.Seconds, width=6,
        graph=False, steps=[(None, GREEN), (60, YELLOW), (300, RED)], decimals=0))
    d = d.with_panel(stat(ids, "Bytes received (time range)", [Query(
        f"increase({metric('queqiao_link_bytes_received_total')}[$__range])", link)], unit=units.BytesSI, width=6,
        graph=False, color_mode=common.BigValueColorMode.NONE))
    d = d.with_panel(stat(ids, "Frames received (time range)", [Query(
        f"increase({metric('queqiao_frames_received_total')}[$__range])", link)], width=6, graph=False,
        color_mode=common.BigValueColorMode.NONE, decimals=0))
    d = d.with_panel(timeseries(ids, "Link throughput", [Query(
        f"rate({metric('queqiao_link_bytes_received_total')}[$__rate_interval])", link)], unit=units.BytesPerSecondSI,
        description="Bytes per second received on each link."))
    d = d.with_panel(timeseries(ids, "Frames received", [Query(
        f"rate({metric('queqiao_frames_received_total')}[$__rate_interval])", link)], unit="fps",
        description="Frames per second received on each link, good or bad."))
    d = d.with_row(row(ids, "Chain"))
    d = d.with_panel(timeseries(ids, "Chain stages", [Query(
        f"sum by (stage, outcome) (rate({metric('queqiao_chain_stage_total')}[$__rate_interval]))",
        "{{stage}} {{outcome}}")], unit="ops", width=16,
        description="Items through each named stage of the frame and packet chain, by outcome."))
    bucket = metric(f"{LATENCY_NAME}_bucket")
    d = d.with_panel(timeseries(ids, "Export latency", [
        Query(f"histogram_quantile({q}, sum by (le) (rate({bucket}[$__rate_interval])))", f"p{round(q * 100)}")
        for q in (0.5, 0.9, 0.99)
    ] + [Query(f"sum(rate({metric(LATENCY_NAME + '_sum')}[$__rate_interval])) / "
               f"sum(rate({metric(LATENCY_NAME + '_count')}[$__rate_interval]))", "mean")],
        unit=units.Seconds, width=8,
        description="Ground receipt to export (Prometheus/MQTT), from the queqiao_export_latency_seconds histogram."))
    d = d.with_row(row(ids, "Reed-Solomon"))
    d = d.with_panel(timeseries(ids, "RS codewords", [Query(
        f"sum by (spacecraft, result) (rate({metric('queqiao_rs_codewords_total')}[$__rate_interval])) or vector(0)",
        "{{spacecraft}} {{result}}")], unit="ops", width=12,
        description="Reed-Solomon codewords per second, clean, corrected or uncorrectable (uncorrectable ones "
                    "are archived and never decoded)."))
    d = d.with_panel(timeseries(ids, "RS symbols corrected", [Query(
        f"sum by (spacecraft) (rate({metric('queqiao_rs_corrected_symbols_total')}[$__rate_interval])) or vector(0)",
        "{{spacecraft}}")], unit="ops", width=12,
        description="Symbols the ground corrected per second: the channel's errors that cost nothing yet."))
    d = d.with_row(row(ids, "Archive"))
    d = d.with_panel(stat(ids, "Archive size", [Query(metric("queqiao_archive_bytes"))], unit=units.BytesSI,
                          width=8, color_mode=common.BigValueColorMode.NONE))
    d = d.with_panel(stat(ids, "Archive segments", [Query(metric("queqiao_archive_segments"))], width=8,
                          color_mode=common.BigValueColorMode.NONE, decimals=0))
    d = d.with_panel(stat(ids, "Archive appends", [Query(
        f"rate({metric('queqiao_archive_records_total')}[$__rate_interval])")], unit="fps", width=8,
        color_mode=common.BigValueColorMode.NONE, description="Frames appended to the raw archive per second."))
    d = d.with_row(row(ids, "MQTT"))
    d = d.with_panel(stat(ids, "MQTT broker", [Query(f"max({metric('queqiao_mqtt_connected')}) or vector(-1)")],
                          width=8, graph=False, steps=[(None, RED), (1, GREEN)],
                          description="Connected, disconnected, or \"not reported\" when MQTT is disabled.",
                          mappings=[dash_m.ValueMap(options={
                              "-1": dash_m.ValueMappingResult(text="not reported", color=GREY, index=0),
                              "0": dash_m.ValueMappingResult(text="DISCONNECTED", color=RED, index=1),
                              "1": dash_m.ValueMappingResult(text="CONNECTED", color=GREEN, index=2)})]))
    d = d.with_panel(timeseries(ids, "MQTT messages", [
        Query(f"sum(rate({metric('queqiao_mqtt_messages_published_total')}[$__rate_interval])) or vector(0)",
              "published"),
        Query(f"sum(rate({metric('queqiao_mqtt_messages_dropped_total')}[$__rate_interval])) or vector(0)",
              "dropped")], unit="mps", width=16,
        description="Messages per second published to the broker, and dropped while it was away."))
    d = d.with_row(row(ids, "Network merge"))
    per_site = "{{site}} {{spacecraft}}"
    d = d.with_panel(timeseries(ids, "Station carrying the pass", [Query(
        f"sum by (site, spacecraft) (rate({metric('queqiao_merge_frames_chosen_total')}[$__rate_interval]))"
        " or vector(0)",
        per_site)], unit="fps", width=12,
        description="Frames per second the merge chose from each site: which station carried each part of a pass "
                    "(0 on a daemon that is not a merge)."))
    d = d.with_panel(timeseries(ids, "Gaps filled and duplicates dropped", [
        Query(f"sum by (site, spacecraft) (rate({metric('queqiao_merge_gaps_filled_total')}[$__rate_interval]))"
              " or vector(0)",
              "filled by {{site}} {{spacecraft}}"),
        Query(f"sum by (site, spacecraft) (rate({metric('queqiao_merge_duplicates_dropped_total')}"
              "[$__rate_interval])) or vector(0)", "dropped from {{site}} {{spacecraft}}")], unit="fps", width=12,
        description="Frames a site delivered that another missed, and a site's copies dropped for a better one."))
    d = d.with_panel(timeseries(ids, "Merge lateness per site", [Query(
        f"{metric('queqiao_merge_lateness_seconds')} or vector(0)", per_site)], unit=units.Seconds, width=12,
        description="Merge arrival minus the site's ground receipt time, for the last frame of each site."))
    d = d.with_panel(timeseries(ids, "Merge refusals", [Query(
        f"sum by (site, reason) (rate({metric('queqiao_merge_rejected_total')}[$__rate_interval])) or vector(0)",
        "{{site}} {{reason}}")], unit="ops", width=12,
        description="Messages refused: garbage, unknown spacecraft, an old pass replayed."))
    d = d.with_row(row(ids, "Commanding"))
    commands = metric("queqiao_commands_total")
    d = d.with_panel(stat(ids, "Commands by result (time range)", [Query(
        f"sum by (result) (increase({commands}[$__range])) or label_replace(vector(0), \"result\", \"none\", \"\", \"\")",
        "{{result}}")], width=8, graph=False, color_mode=common.BigValueColorMode.NONE, decimals=0,
        description="Telecommands by final result within the time range (\"none\" while none were sent)."))
    d = d.with_panel(timeseries(ids, "Commands", [Query(
        f"sum by (spacecraft, command, result) (increase({commands}[$__rate_interval]))"
        f" or label_replace(vector(0), \"result\", \"none\", \"\", \"\")",
        "{{spacecraft}} {{command}} {{result}}")], width=16,
        description="Telecommands reaching a final result, per spacecraft, command and result."))
    return d


# --------------------------------------------------------------------------- files


def render(builder: dash_b.Dashboard) -> str:
    # Sorted keys and a final newline: stable files, small diffs when the mission database changes.
    return json.dumps(builder.build(), cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate(reg: Registry | None = None) -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    reg = reg if reg is not None else builtin_registry()
    files = {"fleet-overview.json": render(fleet_overview(reg)), "ground-station.json": render(ground_station())}
    for sc in reg:
        files[f"{HEALTH_PREFIX}{sc.name}.json"] = render(health(reg, sc))
    return files


def _ours(directory: Path) -> set[str]:
    """Generated files already in the directory (anything else there is left alone)."""
    names = {"fleet-overview.json", "ground-station.json"}
    return {p.name for p in directory.glob("*.json") if p.name in names or p.name.startswith(HEALTH_PREFIX)}


def write(directory: Path, files: dict[str, str]) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in sorted(_ours(directory) - set(files)):
        (directory / stale).unlink()  # a spacecraft that left the mission database
    changed = []
    for name, text in files.items():
        path = directory / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(name)
    return changed


def check(directory: Path, files: dict[str, str]) -> list[str]:
    """Problems that make the committed dashboards stale (empty when they are current)."""
    problems = [f"{name}: missing" for name in sorted(set(files) - _ours(directory))]
    problems += [f"{name}: no longer generated" for name in sorted(_ours(directory) - set(files))]
    problems += [f"{name}: differs from the generator's output" for name, text in sorted(files.items())
                 if (directory / name).exists() and (directory / name).read_text() != text]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m groundstation.dashboards", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", metavar="DIR", type=Path, help="write the dashboards into DIR")
    mode.add_argument("--check", metavar="DIR", type=Path, nargs="?", const=DEFAULT_DIR,
                      help=f"exit 1 if the dashboards in DIR (default {DEFAULT_DIR}) are stale")
    parser.add_argument("--missions", choices=("builtin", "all"), default="builtin",
                        help="builtin: Queqiao's own missions (what is committed); all: also entry points and "
                             "QUEQIAO_MISSION_PATH (for a station with missions of its own)")
    args = parser.parse_args(argv)
    files = generate(builtin_registry() if args.missions == "builtin" else registry())
    if args.write is not None:
        changed = write(args.write, files)
        print(f"{len(files)} dashboards in {args.write}; {len(changed)} written: {', '.join(changed) or 'none'}")
        return 0
    problems = check(args.check, files)
    if problems:
        print(f"dashboards in {args.check} are stale (regenerate with "
              f"`python -m groundstation.dashboards --write {args.check}`):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(f"{len(files)} dashboards in {args.check} are current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
