"""monitoring/dashboards/opensearch-saved-objects.ndjson: well formed, self-contained, consistent with the mapping."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from helpers.opensearch_server import OpenSearchServer
from helpers.sample_events import make_events
from monitoring.dashboards.make_saved_objects import OUTPUT, render
from monitoring.event_index import INDEX_PATTERN, MAPPING
from monitoring.event_store import connect, ship_events

# What each aggregation needs of its field.
NUMERIC = {"float", "integer"}
NEEDS = {"date_histogram": {"date"}, "terms": {"keyword"}, "histogram": NUMERIC, "percentiles": NUMERIC}


def leaf_types(properties: dict, prefix: str = "") -> dict[str, str]:
    """{dotted field name: type} for every field of a mapping, multi-fields (text.keyword) included."""
    types = {}
    for name, spec in properties.items():
        if "properties" in spec:
            types.update(leaf_types(spec["properties"], f"{prefix}{name}."))
        else:
            types[prefix + name] = spec["type"]
            types.update({f"{prefix}{name}.{sub}": s["type"] for sub, s in spec.get("fields", {}).items()})
    return types


FIELDS = leaf_types(MAPPING["properties"])


@pytest.fixture(scope="module")
def lines() -> list[dict]:
    return [json.loads(line) for line in Path(OUTPUT).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def objects(lines: list[dict]) -> list[dict]:
    return lines[:-1]


def of_type(objects: list[dict], kind: str) -> list[dict]:
    return [obj for obj in objects if obj["type"] == kind]


def test_the_committed_file_is_what_the_script_writes() -> None:
    assert Path(OUTPUT).read_text(encoding="utf-8") == render(), (
        "run: python monitoring/dashboards/make_saved_objects.py"
    )


def test_it_is_an_export_one_object_a_line_with_the_summary_last(lines: list[dict], objects: list[dict]) -> None:
    assert lines[-1] == {"exportedCount": len(objects), "missingRefCount": 0, "missingReferences": []}
    assert Counter(obj["type"] for obj in objects) == {"index-pattern": 1, "visualization": 4, "dashboard": 1}
    assert len({(obj["type"], obj["id"]) for obj in objects}) == len(objects)
    for obj in objects:
        assert {"id", "type", "attributes", "references", "migrationVersion"} <= obj.keys()


def test_every_reference_resolves_to_an_object_in_the_file(objects: list[dict]) -> None:
    present = {(obj["type"], obj["id"]) for obj in objects}
    for obj in objects:
        for reference in obj["references"]:
            assert (reference["type"], reference["id"]) in present, f"{obj['id']} -> {reference}"

    for vis in of_type(objects, "visualization"):
        source = json.loads(vis["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert source["indexRefName"] in {ref["name"] for ref in vis["references"] if ref["type"] == "index-pattern"}

    (dashboard,) = of_type(objects, "dashboard")
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    by_name = {ref["name"]: ref["id"] for ref in dashboard["references"]}
    assert {by_name[panel["panelRefName"]] for panel in panels} == {v["id"] for v in of_type(objects, "visualization")}


def test_the_index_pattern_is_the_templates_with_its_fields(objects: list[dict]) -> None:
    (pattern,) = of_type(objects, "index-pattern")
    assert pattern["attributes"]["title"] == INDEX_PATTERN
    assert FIELDS[pattern["attributes"]["timeFieldName"]] == "date"
    fields = {field["name"]: field for field in json.loads(pattern["attributes"]["fields"])}
    assert {name for name in fields if not name.startswith("_")} == set(FIELDS)
    for name, opensearch_type in FIELDS.items():
        assert fields[name]["esTypes"] == [opensearch_type]
        assert fields[name]["aggregatable"] == (opensearch_type != "text")


def aggregations(vis: dict) -> list[dict]:
    return json.loads(vis["attributes"]["visState"])["aggs"]


def test_every_field_a_visualisation_uses_is_mapped_with_a_type_it_can_aggregate(objects: list[dict]) -> None:
    used = set()
    for vis in of_type(objects, "visualization"):
        for agg in aggregations(vis):
            if agg["type"] == "count":
                continue
            field = agg["params"]["field"]
            assert FIELDS.get(field) in NEEDS[agg["type"]], f"{vis['id']}: {agg['type']} on {field}"
            used.add((agg["type"], field))
    # The four visualisations the dashboard promises.
    assert {("date_histogram", "timestamp"), ("terms", "label"), ("histogram", "score")} <= used
    assert ("percentiles", "latency_ms") in used


def test_the_aggregations_run_on_real_events(objects: list[dict]) -> None:
    """Each visualisation's aggregations, as OpenSearch queries, answer with data from shipped events."""
    with OpenSearchServer() as server:
        client = connect(server.url)
        ship_events(client, make_events(50))
        client.indices.refresh(index=INDEX_PATTERN)
        for vis in of_type(objects, "visualization"):
            for agg in aggregations(vis):
                params = agg["params"]
                query = {
                    "count": None,
                    "date_histogram": {"date_histogram": {"field": params.get("field"), "fixed_interval": "1h"}},
                    "terms": {"terms": {"field": params.get("field"), "size": params.get("size")}},
                    "histogram": {"histogram": {"field": params.get("field"), "interval": params.get("interval")}},
                    "percentiles": {"percentiles": {"field": params.get("field"), "percents": params.get("percents")}},
                }[agg["type"]]
                if query is None:
                    continue
                answer = client.search(index=INDEX_PATTERN, body={"size": 0, "aggs": {"a": query}})["aggregations"]
                result = answer["a"]
                assert result.get("buckets") or all(v is not None for v in result["values"].values()), vis["id"]
