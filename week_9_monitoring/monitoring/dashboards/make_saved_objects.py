"""Writes monitoring/dashboards/opensearch-saved-objects.ndjson: the prediction dashboard for OpenSearch Dashboards 2.x.

    python monitoring/dashboards/make_saved_objects.py          # after changing a visualisation or event_index.MAPPING

Import the file in Dashboards (Dashboards Management > Saved objects > Import), or with
    curl -X POST "http://localhost:5601/api/saved_objects/_import?overwrite=true" \\
         -H "osd-xsrf: true" --form file=@monitoring/dashboards/opensearch-saved-objects.ndjson

It holds what an export from Dashboards holds, one object a line and a summary line last:
an index pattern for predictions-* (time field: timestamp), four visualisations (predictions
over time split by label, label distribution, score histogram, latency percentiles) and a
dashboard with the four. The index pattern's fields come from event_index.MAPPING, so the two
cannot disagree; tests/test_saved_objects.py checks the committed file is what this writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

WEEK_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(WEEK_DIR))  # run as a script from anywhere: monitoring/ is a package of the week folder

from monitoring.event_index import INDEX_PATTERN, MAPPING  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "opensearch-saved-objects.ndjson"
UPDATED_AT = "2026-01-01T00:00:00.000Z"  # fixed, so that regenerating an unchanged file changes nothing
INDEX_PATTERN_ID = "predictions-index-pattern"
DASHBOARD_ID = "predictions-dashboard"
# The migration versions Dashboards 2.x stamps on these types: import runs no migration on them.
MIGRATION = {"index-pattern": "7.6.0", "visualization": "7.10.0", "dashboard": "7.9.3"}

# OpenSearch field type -> Dashboards field type, and whether it can be aggregated.
DASHBOARDS_TYPES = {
    "date": ("date", True),
    "keyword": ("string", True),
    "text": ("string", False),
    "float": ("number", True),
    "integer": ("number", True),
}


def mapped_fields(properties: dict, prefix: str = "") -> dict[str, str]:
    """Every leaf field of a mapping as {dotted name: OpenSearch type}, sub-fields (text.keyword) included."""
    fields = {}
    for name, spec in properties.items():
        if "properties" in spec:  # an object: its fields are probabilities.acceptable, ...
            fields.update(mapped_fields(spec["properties"], f"{prefix}{name}."))
            continue
        fields[prefix + name] = spec["type"]
        for sub_name, sub_spec in spec.get("fields", {}).items():
            fields[f"{prefix}{name}.{sub_name}"] = sub_spec["type"]
    return fields


def index_pattern_fields() -> list[dict]:
    """The `fields` list Dashboards stores for an index pattern: meta fields, then the mapping's."""
    fields = [
        {"name": "_id", "type": "string", "esTypes": ["_id"], "searchable": True, "aggregatable": True},
        {"name": "_index", "type": "string", "esTypes": ["_index"], "searchable": True, "aggregatable": True},
        {"name": "_score", "type": "number", "searchable": False, "aggregatable": False},
        {"name": "_source", "type": "_source", "esTypes": ["_source"], "searchable": False, "aggregatable": False},
    ]
    for field in fields:
        field.update(count=0, scripted=False, readFromDocValues=False)
    mapped = mapped_fields(MAPPING["properties"])
    for name, opensearch_type in mapped.items():
        dashboards_type, aggregatable = DASHBOARDS_TYPES[opensearch_type]
        field = {
            "count": 0,
            "name": name,
            "type": dashboards_type,
            "esTypes": [opensearch_type],
            "scripted": False,
            "searchable": True,
            "aggregatable": aggregatable,
            "readFromDocValues": aggregatable,
        }
        parent = name.rpartition(".")[0]
        if mapped.get(parent) == "text":  # text.keyword: the exact copy of a text field
            field["subType"] = {"multi": {"parent": parent}}
        fields.append(field)
    return fields


def count_metric() -> dict:
    return {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}}


def over_time(agg_id: str) -> dict:
    """A date histogram on the event time, the interval chosen by Dashboards from the time range."""
    return {
        "id": agg_id,
        "enabled": True,
        "type": "date_histogram",
        "schema": "segment",
        "params": {
            "field": "timestamp",
            "useNormalizedOpenSearchInterval": True,
            "scaleMetricValues": False,
            "interval": "auto",
            "drop_partials": False,
            "min_doc_count": 1,
            "extended_bounds": {},
        },
    }


def by_label(agg_id: str, schema: str) -> dict:
    return {
        "id": agg_id,
        "enabled": True,
        "type": "terms",
        "schema": schema,
        "params": {
            "field": "label",
            "orderBy": "1",
            "order": "desc",
            "size": 5,
            "otherBucket": False,
            "otherBucketLabel": "Other",
            "missingBucket": False,
            "missingBucketLabel": "Missing",
        },
    }


def xy_params(chart: str, y_title: str) -> dict:
    """The axes and series of a vertical bar ("histogram") or line chart, as the editor saves them."""
    return {
        "type": chart,
        "grid": {"categoryLines": False},
        "categoryAxes": [
            {
                "id": "CategoryAxis-1",
                "type": "category",
                "position": "bottom",
                "show": True,
                "style": {},
                "scale": {"type": "linear"},
                "labels": {"show": True, "filter": True, "truncate": 100},
                "title": {},
            }
        ],
        "valueAxes": [
            {
                "id": "ValueAxis-1",
                "name": "LeftAxis-1",
                "type": "value",
                "position": "left",
                "show": True,
                "style": {},
                "scale": {"type": "linear", "mode": "normal"},
                "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                "title": {"text": y_title},
            }
        ],
        "seriesParams": [
            {
                "show": True,
                "type": chart,
                "mode": "stacked" if chart == "histogram" else "normal",
                "data": {"label": y_title, "id": "1"},
                "valueAxis": "ValueAxis-1",
                "drawLinesBetweenPoints": True,
                "lineWidth": 2,
                "showCircles": True,
            }
        ],
        "addTooltip": True,
        "addLegend": True,
        "legendPosition": "right",
        "times": [],
        "addTimeMarker": False,
        "labels": {"show": False},
        "thresholdLine": {"show": False, "value": 10, "width": 1, "style": "full", "color": "#E7664C"},
    }


VISUALISATIONS = [
    {
        "id": "predictions-over-time",
        "title": "Predictions over time, by label",
        "type": "histogram",
        "aggs": [count_metric(), over_time("2"), by_label("3", "group")],
        "params": xy_params("histogram", "Predictions"),
    },
    {
        "id": "predictions-label-distribution",
        "title": "Label distribution",
        "type": "pie",
        "aggs": [count_metric(), by_label("2", "segment")],
        "params": {
            "type": "pie",
            "addTooltip": True,
            "addLegend": True,
            "legendPosition": "right",
            "isDonut": True,
            "labels": {"show": True, "values": True, "last_level": True, "truncate": 100},
        },
    },
    {
        "id": "predictions-score-histogram",
        "title": "Score (probability of the predicted label)",
        "type": "histogram",
        "aggs": [
            count_metric(),
            {
                "id": "2",
                "enabled": True,
                "type": "histogram",
                "schema": "segment",
                # The score of the predicted label is in [0.5, 1]: a pile near 0.5 means an unsure model.
                "params": {
                    "field": "score",
                    "interval": 0.05,
                    "min_doc_count": False,
                    "has_extended_bounds": True,
                    "extended_bounds": {"min": 0.5, "max": 1},
                },
            },
            by_label("3", "group"),
        ],
        "params": xy_params("histogram", "Predictions"),
    },
    {
        "id": "predictions-latency-percentiles",
        "title": "Model latency percentiles (ms)",
        "type": "line",
        "aggs": [
            {
                "id": "1",
                "enabled": True,
                "type": "percentiles",
                "schema": "metric",
                "params": {"field": "latency_ms", "percents": [50, 95, 99]},
            },
            over_time("2"),
        ],
        "params": xy_params("line", "Latency (ms)"),
    },
]


def index_pattern() -> dict:
    return {
        "attributes": {
            "title": INDEX_PATTERN,
            "timeFieldName": "timestamp",
            "fields": json.dumps(index_pattern_fields(), separators=(",", ":")),
        },
        "id": INDEX_PATTERN_ID,
        "migrationVersion": {"index-pattern": MIGRATION["index-pattern"]},
        "references": [],
        "type": "index-pattern",
        "updated_at": UPDATED_AT,
    }


def visualisation(spec: dict) -> dict:
    vis_state = {"title": spec["title"], "type": spec["type"], "aggs": spec["aggs"], "params": spec["params"]}
    search_source = {
        "query": {"query": "", "language": "kuery"},
        "filter": [],
        # The index pattern is named by reference, so its id can change on import without breaking this.
        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
    }
    return {
        "attributes": {
            "title": spec["title"],
            "description": "",
            "version": 1,
            "uiStateJSON": "{}",
            "visState": json.dumps(vis_state, separators=(",", ":")),
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(search_source, separators=(",", ":"))},
        },
        "id": spec["id"],
        "migrationVersion": {"visualization": MIGRATION["visualization"]},
        "references": [
            {"id": INDEX_PATTERN_ID, "name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern"}
        ],
        "type": "visualization",
        "updated_at": UPDATED_AT,
    }


def dashboard() -> dict:
    """The four visualisations on a 2 x 2 grid (Dashboards' grid is 48 columns wide)."""
    panels = []
    for number in range(len(VISUALISATIONS)):
        panels.append(
            {
                "version": "2.11.0",
                "gridData": {"x": 24 * (number % 2), "y": 15 * (number // 2), "w": 24, "h": 15, "i": str(number + 1)},
                "panelIndex": str(number + 1),
                "embeddableConfig": {},
                "panelRefName": f"panel_{number}",
            }
        )
    return {
        "attributes": {
            "title": "CoLA predictions",
            "description": "Prediction events of the CoLA classifier (week 9): volume, labels, scores, latency",
            "hits": 0,
            "version": 1,
            "panelsJSON": json.dumps(panels, separators=(",", ":")),
            "optionsJSON": json.dumps({"hidePanelTitles": False, "useMargins": True}, separators=(",", ":")),
            "timeRestore": True,
            "timeFrom": "now-24h",
            "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 30000},
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": json.dumps(
                    {"query": {"query": "", "language": "kuery"}, "filter": []}, separators=(",", ":")
                )
            },
        },
        "id": DASHBOARD_ID,
        "migrationVersion": {"dashboard": MIGRATION["dashboard"]},
        "references": [
            {"id": spec["id"], "name": f"panel_{number}", "type": "visualization"}
            for number, spec in enumerate(VISUALISATIONS)
        ],
        "type": "dashboard",
        "updated_at": UPDATED_AT,
    }


def saved_objects() -> list[dict]:
    return [index_pattern(), *(visualisation(spec) for spec in VISUALISATIONS), dashboard()]


def render() -> str:
    """The ndjson text: one object a line, then the export summary line Dashboards writes."""
    objects = saved_objects()
    summary = {"exportedCount": len(objects), "missingRefCount": 0, "missingReferences": []}
    return "".join(json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n" for obj in [*objects, summary])


def main() -> None:
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(WEEK_DIR)} ({len(saved_objects())} saved objects)")


if __name__ == "__main__":
    main()
