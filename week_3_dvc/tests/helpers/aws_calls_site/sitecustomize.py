"""Started by Python in the course commands the tests run (on PYTHONPATH only while pytest records).

It installs tests/helpers/aws_calls.py's botocore handler, so the AWS calls of `python remote.py`,
`dvc pull` or `python deploy_lambda.py` are recorded like those made inside pytest.
"""

import importlib.util
import os
from pathlib import Path

if os.environ.get("MLOPS_AWS_CALL_LOG"):
    _spec = importlib.util.spec_from_file_location(
        "mlops_aws_calls", Path(__file__).resolve().parents[1] / "aws_calls.py"
    )
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    _module.install_in_child_process()
