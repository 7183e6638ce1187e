"""docker-compose.yml, read without running it (no container engine can pull images here): it is a valid
Compose file, every image is pinned, every port is on loopback, every file it mounts exists, and the
pieces point at each other: the API's events file is what the shipper follows, Prometheus scrapes the
API service, Grafana loads the committed dashboard from the compose Prometheus.

The live half (a real API scraped by a real Prometheus) is tests/test_prometheus.py.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import distribution, packages_distributions
from pathlib import Path, PurePosixPath

import pytest
import yaml
from packaging.requirements import Requirement

from source import WEEK_DIR

COMPOSE_FILE = WEEK_DIR / "docker-compose.yml"
COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES = COMPOSE["services"]
PROMETHEUS_YML = WEEK_DIR / "monitoring" / "prometheus.yml"
GRAFANA = WEEK_DIR / "monitoring" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "cola.json"
SAVED_OBJECTS = WEEK_DIR / "monitoring" / "dashboards" / "opensearch-saved-objects.ndjson"
PROMTOOL = "/usr/bin/promtool"


def mounts(service: str) -> list[tuple[str, str]]:
    """(source, target) of each volume of `service`, short syntax: a path or a named volume, then where."""
    return [tuple(entry.split(":")[:2]) for entry in SERVICES[service].get("volumes", [])]


def host_path(service: str, container_path: str) -> Path:
    """The file of the week that `service` sees at `container_path`, through its bind mounts."""
    wanted = PurePosixPath(container_path)
    for source, target in mounts(service):
        if source.startswith(".") and (wanted == PurePosixPath(target) or PurePosixPath(target) in wanted.parents):
            return WEEK_DIR / source / wanted.relative_to(target)
    raise AssertionError(f"{service} mounts nothing from the week at {container_path}")


def container_port(service: str) -> int:
    """The port inside the container that `service` publishes (127.0.0.1:HOST:CONTAINER)."""
    (mapping,) = SERVICES[service]["ports"]
    return int(mapping.rsplit(":", 1)[1])


def command_text(service: str) -> str:
    command = SERVICES[service]["command"]
    return " ".join(command) if isinstance(command, list) else command


def check_compose(path: Path) -> subprocess.CompletedProcess:
    """check-jsonschema with the Compose Specification schema it ships (no network needed)."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


# ----------------------------------------------------------------------------- the file as a whole


def test_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    result = check_compose(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    # The validator does reject a mistake: a misspelt key in a copy of the file.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("mem_limit:", "memory_limit:", 1))
    assert check_compose(broken).returncode != 0


def test_the_stack_has_the_api_and_its_monitoring() -> None:
    assert set(SERVICES) == {
        "api", "shipper", "opensearch", "opensearch-dashboards", "dashboards-loader", "prometheus", "grafana",
    }  # fmt: skip


def test_every_pulled_image_is_pinned_to_a_version() -> None:
    for name, service in SERVICES.items():
        if "build" in service:  # built here from the week's Dockerfile
            continue
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert re.fullmatch(r"v?\d+\.\d+\.\d+[\w.-]*", tag), f"{name}: {image} is not pinned to a version (x.y.z)"


def test_every_published_port_is_on_loopback() -> None:
    published = {name: service.get("ports", []) for name, service in SERVICES.items()}
    for name, ports in published.items():
        for port in ports:
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name} publishes {port!r} beyond loopback"
    assert {name for name, ports in published.items() if ports} == {
        "api", "opensearch", "opensearch-dashboards", "prometheus", "grafana",
    }  # fmt: skip


def test_every_mounted_file_exists_and_every_volume_is_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    used = set()
    for name in SERVICES:
        for source, target in mounts(name):
            if source.startswith("."):
                assert (WEEK_DIR / source).exists(), f"{name} mounts {source}, which is not in the week"
            else:
                assert source in declared, f"{name} mounts volume {source!r}, not declared under volumes:"
                used.add(source)
            assert target.startswith("/"), f"{name}: {target} is not an absolute path in the container"
    assert used == declared, f"declared but unused volumes: {declared - used}"


def test_no_secret_in_the_file() -> None:
    for name, service in SERVICES.items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: write environment as NAME: value"
        for variable in environment:
            assert not re.search(r"KEY|SECRET|TOKEN|PASSWORD", variable), f"{name} sets {variable} in the file"
    assert not re.search(r"(?i)password\s*[:=]\s*\S", COMPOSE_FILE.read_text())


def test_services_wait_only_on_services_that_report_health() -> None:
    dockerfile_has_healthcheck = "HEALTHCHECK" in (WEEK_DIR / "Dockerfile").read_text()
    for name, service in SERVICES.items():
        for other, condition in (service.get("depends_on") or {}).items():
            assert other in SERVICES, f"{name} depends on {other}, which is not a service"
            assert condition["condition"] == "service_healthy", f"{name} should wait until {other} is healthy"
            healthy = "healthcheck" in SERVICES[other] or ("build" in SERVICES[other] and dockerfile_has_healthcheck)
            assert healthy, f"{name} waits for {other} to be healthy, but {other} has no healthcheck"
    # Who waits for whom: the order `docker compose up` starts things in.
    assert set(SERVICES["shipper"]["depends_on"]) == {"api", "opensearch"}
    assert set(SERVICES["opensearch-dashboards"]["depends_on"]) == {"opensearch"}
    assert set(SERVICES["dashboards-loader"]["depends_on"]) == {"opensearch-dashboards"}
    assert set(SERVICES["grafana"]["depends_on"]) == {"prometheus"}


# ----------------------------------------------------------------------------- events: API, file, shipper, OpenSearch


def test_the_api_writes_events_where_the_shipper_follows_them() -> None:
    events_file = PurePosixPath(SERVICES["api"]["environment"]["EVENTS_FILE"])
    volume = {target: source for source, target in mounts("api")}[str(events_file.parent)]
    assert (volume, str(events_file.parent)) in mounts("shipper"), (
        "the shipper must see the API's folder at the same path"
    )
    follows = re.findall(r"python -m monitoring\.shipper follow (\S+)", command_text("shipper"))
    assert follows == [str(events_file)]
    assert SERVICES["shipper"]["environment"]["OPENSEARCH_URL"] == f"http://opensearch:{container_port('opensearch')}"


def test_the_image_gives_the_events_folder_to_the_service_user() -> None:
    # A named volume takes the owner of the image's folder; without one it belongs to root and the
    # service (uid 10001) could not append a single event.
    folder = str(PurePosixPath(SERVICES["api"]["environment"]["EVENTS_FILE"]).parent)
    dockerfile = (WEEK_DIR / "Dockerfile").read_text()
    user = re.search(r"^USER (\S+)", dockerfile, re.MULTILINE).group(1)
    run_lines = " ".join(re.findall(r"^RUN (.*)", dockerfile.replace("\\\n", " "), re.MULTILINE))
    assert re.search(rf"mkdir[^&;]*\s{re.escape(folder)}\b", run_lines), f"the Dockerfile should create {folder}"
    assert re.search(rf"chown[^&;]*\s{re.escape(user)}\s+{re.escape(folder)}\b", run_lines), (
        f"the Dockerfile should give {folder} to USER {user}"
    )


def module_file(name: str) -> Path | None:
    """The week's file of a dotted module name (monitoring.shipper -> monitoring/shipper.py), or None."""
    base = WEEK_DIR.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_names(path: Path) -> list[str]:
    """Every dotted name `path` imports: `from a.b import c` gives a, a.b and a.b.c (c may be a module)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    # Importing a.b runs the package a first (its __init__.py).
    return names + [".".join(name.split(".")[:i]) for name in names for i in range(1, name.count(".") + 1)]


def week_modules_imported_by(module: str) -> set[str]:
    """`module` and every module of the week it imports, directly or not (dotted names)."""
    found, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        todo += [imported for imported in imported_names(module_file(name)) if module_file(imported) is not None]
    return found


def third_party_imports(modules: set[str]) -> set[str]:
    """Top-level names imported by `modules` that are neither the week's nor the standard library's."""
    names = {name.split(".")[0] for module in modules for name in imported_names(module_file(module))}
    return {
        name for name in names - {"__future__"} if module_file(name) is None and name not in sys.stdlib_module_names
    }


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_closure(distributions: set[str]) -> dict[str, str]:
    """{normalized name: installed version} of `distributions` and everything they require (no extras)."""
    closure: dict[str, str] = {}
    todo = list(distributions)
    while todo:
        installed = distribution(todo.pop())
        key = normalized(installed.metadata["Name"])
        if key in closure:
            continue
        closure[key] = installed.version
        for text in installed.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return closure


def test_the_shipper_container_has_every_module_it_imports() -> None:
    modules = week_modules_imported_by("monitoring.shipper")
    assert {"monitoring", "monitoring.shipper", "monitoring.event_store", "monitoring.event_index"} <= modules
    assert {"monitoring.prediction_events", "errors"} <= modules
    workdir = PurePosixPath(SERVICES["shipper"]["working_dir"])
    for module in modules:
        path = module_file(module)
        assert host_path("shipper", str(workdir / path.relative_to(WEEK_DIR).as_posix())) == path


def test_the_shipper_installs_exactly_the_pinned_packages_it_needs() -> None:
    pins = dict(re.findall(r"([A-Za-z0-9_.-]+)==(\S+)", command_text("shipper")))
    pinned = {normalized(name): version for name, version in pins.items()}
    imported = third_party_imports(week_modules_imported_by("monitoring.shipper"))
    assert imported == {"opensearchpy", "pydantic", "tqdm"}
    distributions = {dist for name in imported for dist in packages_distributions()[name]}
    # The same versions as this environment, which was installed from the repository's lock file.
    assert pinned == dependency_closure(distributions)


# ----------------------------------------------------------------------------- OpenSearch and its Dashboards


def test_opensearch_is_single_node_and_its_heap_fits_its_memory_limit() -> None:
    opensearch = SERVICES["opensearch"]
    assert opensearch["environment"]["discovery.type"] == "single-node"
    heap = re.search(r"-Xmx(\d+)m", opensearch["environment"]["OPENSEARCH_JAVA_OPTS"]).group(1)
    limit = opensearch["mem_limit"]
    assert limit.endswith("g") and int(heap) * 2 <= int(limit[:-1]) * 1024, f"heap {heap} MB, limit {limit}"
    tags = {SERVICES[name]["image"].rpartition(":")[2] for name in ("opensearch", "opensearch-dashboards")}
    assert len(tags) == 1, "OpenSearch Dashboards must run the same version as OpenSearch"


def test_security_is_off_only_with_a_comment_that_says_local_use_only() -> None:
    for line in COMPOSE_FILE.read_text().splitlines():
        if re.search(r"DISABLE_SECURITY\w*:\s*\"?true", line):
            assert "LOCAL USE ONLY" in line, f"say why security is off, on the line itself: {line.strip()}"
    assert SERVICES["opensearch-dashboards"]["environment"]["OPENSEARCH_HOSTS"] == '["http://opensearch:9200"]'


def test_the_loader_imports_the_committed_saved_objects_once_dashboards_is_healthy() -> None:
    command = command_text("dashboards-loader")
    port = container_port("opensearch-dashboards")
    assert f"'http://opensearch-dashboards:{port}/api/saved_objects/_import?overwrite=true'" in command
    assert "-H 'osd-xsrf: true'" in command  # Dashboards refuses a write without it
    (uploaded,) = re.findall(r"--form file=@([^\s)]+)", command)
    assert host_path("dashboards-loader", uploaded) == SAVED_OBJECTS
    assert SAVED_OBJECTS.is_file()
    assert '"success":true' in command  # a 200 answer can still report objects that failed
    assert SERVICES["dashboards-loader"]["restart"] == "no"


# ----------------------------------------------------------------------------- Prometheus


def test_promtool_accepts_the_committed_config_and_rejects_a_broken_one(tmp_path: Path) -> None:
    if shutil.which(PROMTOOL) is None:
        pytest.skip(f"{PROMTOOL} is not installed: `apt-get install prometheus` (CI installs it)")
    result = subprocess.run([PROMTOOL, "check", "config", str(PROMETHEUS_YML)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "prometheus.yml"
    broken.write_text(PROMETHEUS_YML.read_text().replace("scrape_interval: 5s", "scrape_interval: five seconds"))
    assert subprocess.run([PROMTOOL, "check", "config", str(broken)], capture_output=True).returncode != 0


def test_prometheus_scrapes_the_api_service_with_the_committed_config() -> None:
    command = SERVICES["prometheus"]["command"]
    (config_path,) = [arg.split("=", 1)[1] for arg in command if arg.startswith("--config.file=")]
    assert host_path("prometheus", config_path) == PROMETHEUS_YML
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "cola-api"
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": [f"api:{container_port('api')}"]}]
    assert re.search(r"^EXPOSE 8000$", (WEEK_DIR / "Dockerfile").read_text(), re.MULTILINE)
    assert container_port("api") == 8000


# ----------------------------------------------------------------------------- Grafana


def grafana_provisioning(kind: str, name: str) -> dict:
    """A provisioning file as Grafana reads it, through the compose mount of the provisioning folder."""
    return yaml.safe_load(host_path("grafana", f"/etc/grafana/provisioning/{kind}/{name}").read_text())


def test_grafana_provisions_the_committed_dashboard() -> None:
    assert host_path("grafana", "/etc/grafana/provisioning") == GRAFANA / "provisioning"
    (provider,) = grafana_provisioning("dashboards", "cola.yml")["providers"]
    assert provider["type"] == "file"
    assert host_path("grafana", provider["options"]["path"]) == DASHBOARD.parent
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path("grafana", home) == DASHBOARD
    # Only dashboards in that folder: Grafana would try to load any other JSON file there too.
    assert sorted(p.name for p in DASHBOARD.parent.iterdir()) == ["cola.json"]


def test_grafana_reads_the_compose_prometheus_with_the_uid_the_dashboard_names() -> None:
    (source,) = grafana_provisioning("datasources", "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == f"http://prometheus:{container_port('prometheus')}"
    # $__rate_interval is computed from this: it must be the scrape interval.
    scrape_interval = yaml.safe_load(PROMETHEUS_YML.read_text())["global"]["scrape_interval"]
    assert source["jsonData"]["timeInterval"] == scrape_interval
    dashboard = json.loads(DASHBOARD.read_text())
    named = [panel["datasource"] for panel in dashboard["panels"]]
    named += [target["datasource"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert named and all(ref == {"type": "prometheus", "uid": source["uid"]} for ref in named)


def test_the_dashboard_is_laid_out_on_grafanas_grid() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels), "panel ids must be unique"
    cells = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, f"{panel['title']} is wider than the 24 columns"
        area = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(set(refs)) == len(refs), f"{panel['title']}: each query needs its own refId"
        assert all(target["expr"].strip() for target in panel["targets"])
    assert {panel["type"] for panel in panels} <= {"timeseries", "heatmap", "stat"}


@pytest.mark.parametrize("service", ["shipper", "dashboards-loader"])
def test_the_shell_scripts_parse(service: str) -> None:
    # `sh -c SCRIPT`: a quote out of place would only show at `docker compose up`. sh -n parses, runs nothing.
    shell, flag, script = SERVICES[service]["command"]
    assert (shell, flag) == ("sh", "-c")
    script = script.replace("$$", "$")  # Compose's escape for a literal $
    result = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert subprocess.run(["sh", "-n", "-c", script + " '"], capture_output=True).returncode != 0
