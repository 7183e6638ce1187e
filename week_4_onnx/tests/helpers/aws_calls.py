"""Record every AWS API call the course's code makes while the week's tests run (a pytest plugin).

The moto stand-ins allow every call; real AWS checks each one against the caller's IAM policies.
So while the S3, ECR and Lambda tests run, each call the course's code makes (remote.py, dvc,
build_image.py, push_image.py, deploy_lambda.py) is written as one JSON line: the service, the
operation, its parameters, the region and the command that made it. test_iam.py then evaluates
every recorded call against the week's IAM policies (tests/helpers/iam_check.py).

How: botocore emits `provide-client-params.<service>.<operation>` before every call, with the
call's parameters; a handler is registered on every botocore session (aiobotocore's too, which
DVC's S3 uses). The course's commands run as child processes (python remote.py, dvc pull): they
inherit MLOPS_AWS_CALL_LOG and a PYTHONPATH entry whose sitecustomize.py installs the same handler.
In the pytest process itself only calls made from a course module are recorded, not the tests'
own set-up calls (creating the bucket, reading the function back).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

LOG_VARIABLE = "MLOPS_AWS_CALL_LOG"  # the JSON-lines file the calls go to
PYTEST_PID_VARIABLE = "MLOPS_AWS_CALL_PYTEST_PID"  # calls in this process are filtered by their caller
COMMAND_VARIABLE = "MLOPS_AWS_CALL_COMMAND"  # the course command a child process runs for (dvc under remote.py)
SITE_DIR = Path(__file__).resolve().parent / "aws_calls_site"  # holds the children's sitecustomize.py
MARKER = "after_recorded_aws_calls"  # tests that read the log run after every other test
# Parameters that carry payloads, not names: left out of the log.
PAYLOADS = {"Body", "ZipFile", "Payload"}


def course_caller() -> str | None:
    """The course module (a .py file directly in a week folder, not a test) on the call stack, if any."""
    frame = sys._getframe(1)
    found = None
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.parent.name.startswith("week_") and path.suffix == ".py":
            found = path.name  # keep going: the outermost course module is the command
        frame = frame.f_back
    return found


def command_of_this_process() -> str:
    """The course command this process runs for: inherited from a parent course command, or its own argv."""
    inherited = os.environ.get(COMMAND_VARIABLE)
    if inherited:
        return inherited
    argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else ["python"]
    return " ".join(argv)


def plain(value: Any) -> Any:
    """Parameters as JSON: bytes and other objects become short strings."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items() if key not in PAYLOADS}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)[:80]


def record(params: dict, model: Any, context: dict, **_: Any) -> None:
    """The botocore handler: append one JSON line for a call the course's code makes."""
    log = os.environ.get(LOG_VARIABLE)
    if not log:
        return
    if str(os.getpid()) == os.environ.get(PYTEST_PID_VARIABLE):
        caller = course_caller()
        if caller is None:
            return  # the test's own set-up or check, not the course's code
        command = caller
    else:
        command = command_of_this_process()
    line = json.dumps(
        {
            "service": model.service_model.service_name,  # botocore's name, e.g. s3, ecr, apigatewayv2
            "operation": model.name,
            "http": {"method": model.http.get("method"), "uri": model.http.get("requestUri")},
            "params": plain(params),
            "region": context.get("client_region"),
            "command": command,
            "dvc_s3_url": os.environ.get("DVC_S3_URL"),
        }
    )
    # One write of one line in append mode: lines from parallel processes do not interleave.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def install() -> None:
    """Register `record` on every botocore session created from now on (boto3's and aiobotocore's)."""
    if "botocore.session" not in sys.modules:
        import botocore.session  # noqa: F401
    # From sys.modules: while botocore.session is still being imported, it is not yet an attribute of botocore.
    session_class = sys.modules["botocore.session"].Session
    if getattr(session_class, "_mlops_records_calls", False):
        return
    original_init = session_class.__init__

    def init_and_record(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.register("provide-client-params", record)

    session_class.__init__ = init_and_record
    session_class._mlops_records_calls = True


class InstallOnImport(importlib.abc.MetaPathFinder):
    """Installs the recorder right after botocore.session is imported, so a command that never
    uses AWS (most of the tests' subprocesses) does not pay a second for importing botocore."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "botocore.session":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            original = spec.loader.exec_module

            def exec_then_install(module: Any) -> None:
                original(module)
                sys.modules[name] = module
                install()

            spec.loader.exec_module = exec_then_install
        return spec


def install_in_child_process() -> None:
    """For sitecustomize.py: remember the course command, record once botocore is imported."""
    if COMMAND_VARIABLE not in os.environ:
        os.environ[COMMAND_VARIABLE] = command_of_this_process()  # dvc, started by remote.py, inherits it
    if "botocore.session" in sys.modules:
        install()
    else:
        sys.meta_path.insert(0, InstallOnImport())


def read_log(path: str | os.PathLike) -> list[dict]:
    """The recorded calls, in the order they were made."""
    text = Path(path).read_text() if Path(path).exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ----------------------------------------------------------------------------- the pytest plugin


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", f"{MARKER}: runs after every other test, to read the recorded AWS calls")
    # MLOPS_AWS_CALL_LOG set by you keeps the calls for a later `pytest tests/test_iam.py` (appended to);
    # by default each session records into a new file of its own.
    if not os.environ.get(LOG_VARIABLE):
        log = Path(tempfile.mkdtemp(prefix="aws-calls-")) / "calls.jsonl"
        log.touch()
        os.environ[LOG_VARIABLE] = str(log)
    os.environ[PYTEST_PID_VARIABLE] = str(os.getpid())
    if str(SITE_DIR) not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE_DIR), os.environ.get("PYTHONPATH")]))
    install()


def pytest_unconfigure(config: Any) -> None:
    """Remove the session's own log (not one you named in MLOPS_AWS_CALL_LOG)."""
    log = Path(os.environ.get(LOG_VARIABLE, ""))
    if (
        log.name == "calls.jsonl"
        and log.parent.name.startswith("aws-calls-")
        and os.environ.get(PYTEST_PID_VARIABLE) == str(os.getpid())
    ):
        shutil.rmtree(log.parent, ignore_errors=True)


def pytest_collection_modifyitems(items: list) -> None:
    """Tests marked `after_recorded_aws_calls` run last, once the S3, ECR and Lambda tests have called."""
    items.sort(key=lambda item: item.get_closest_marker(MARKER) is not None)  # a stable sort keeps the rest's order


def recorded_calls() -> list[dict]:
    """Every call recorded so far in this pytest session."""
    return read_log(os.environ[LOG_VARIABLE])
