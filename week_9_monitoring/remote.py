"""DVC remotes for this week: the local default, an S3 remote from the environment, and checks.

    python remote.py show              # the remotes DVC knows, and the default
    python remote.py use-s3            # add the S3 remote from DVC_S3_URL (+ AWS_ENDPOINT_URL)
    python remote.py check [-r s3]     # is the remote reachable? says what to set when not
    python remote.py push  [-r s3] [targets]   # check, then `dvc push` (all, or stages/paths)
    python remote.py pull  [-r s3] [targets]   # check, then `dvc pull`

The committed .dvc/config names only the local directory remote (dvc-remote/, next to this
file). The S3 remote is written to .dvc/config.local, which git ignores: your bucket, endpoint
and keys never land in a commit. Credentials are read by boto3 from the usual places
(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role); see .env.example.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from errors import CourseError, run_cli
from source import WEEK_DIR

S3_REMOTE = "s3"


def dvc(*args: str, cwd: Path = WEEK_DIR) -> str:
    """Run a dvc command in the week folder; its stdout, or a CourseError with its message."""
    executable = Path(sys.executable).with_name("dvc")  # the dvc of this virtualenv
    command = [str(executable) if executable.exists() else "dvc", *args]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise CourseError(f"`dvc {' '.join(args)}` failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def remotes(cwd: Path = WEEK_DIR) -> dict[str, dict[str, str]]:
    """Every remote DVC knows (committed and local config), as {name: {option: value}}."""
    found: dict[str, dict[str, str]] = {}
    for line in dvc("config", "--list", cwd=cwd).splitlines():
        key, _, value = line.partition("=")
        if key.startswith("remote."):
            _, name, option = key.split(".", 2)
            found.setdefault(name, {})[option] = value
    return found


def default_remote(cwd: Path = WEEK_DIR) -> str:
    """The name of the default remote."""
    name = dvc("remote", "default", cwd=cwd).strip()
    if not name:
        raise CourseError("no default DVC remote: run `dvc remote default local` (or `python remote.py use-s3`)")
    return name


def use_s3(cwd: Path = WEEK_DIR) -> str:
    """Add (or update) the S3 remote from DVC_S3_URL and AWS_ENDPOINT_URL, in .dvc/config.local."""
    url = os.environ.get("DVC_S3_URL", "")
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise CourseError(
            f"DVC_S3_URL is {url!r}: set it to your bucket and a prefix, e.g. "
            "DVC_S3_URL=s3://my-bucket/mlops-basics (see .env.example)"
        )
    dvc("remote", "add", "--local", "--force", S3_REMOTE, url, cwd=cwd)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:  # MinIO, a local emulator, or another S3-compatible store
        dvc("remote", "modify", "--local", S3_REMOTE, "endpointurl", endpoint, cwd=cwd)
    return url


def check_local(url: str, cwd: Path) -> str:
    """A local remote is usable when its folder exists or can be created."""
    path = (cwd / ".dvc" / url).resolve() if not Path(url).is_absolute() else Path(url)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CourseError(
            f"the local DVC remote {path} cannot be created ({error.strerror}): point it elsewhere with "
            "`dvc remote modify --local local url /a/writable/folder`"
        ) from error
    return f"local folder {path}"


def check_s3(options: dict[str, str]) -> str:
    """An S3 remote is usable when its bucket answers a HEAD request with our credentials."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    parsed = urlparse(options["url"])
    endpoint = options.get("endpointurl") or os.environ.get("AWS_ENDPOINT_URL") or None
    where = endpoint or "AWS S3"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 1}),
    )
    try:
        client.head_bucket(Bucket=parsed.netloc)
    except NoCredentialsError as error:
        raise CourseError(
            "no AWS credentials for the S3 remote: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE), see .env.example"
        ) from error
    except EndpointConnectionError as error:
        raise CourseError(
            f"cannot reach S3 at {where}: check AWS_ENDPOINT_URL (unset it for AWS itself) and your network"
        ) from error
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket"):
            raise CourseError(
                f"bucket {parsed.netloc!r} does not exist at {where}: create it, or set DVC_S3_URL to "
                "your bucket and run `python remote.py use-s3` again"
            ) from error
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise CourseError(
                f"S3 at {where} refused our credentials for bucket {parsed.netloc!r} ({code}): check "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy"
            ) from error
        raise CourseError(f"S3 at {where} answered {code} for bucket {parsed.netloc!r}") from error
    except BotoCoreError as error:  # timeouts, bad endpoint URLs, ...
        raise CourseError(f"cannot use S3 at {where} ({error}): check AWS_ENDPOINT_URL and your network") from error
    return f"bucket {parsed.netloc} at {where}"


def check(name: str | None = None, cwd: Path = WEEK_DIR) -> str:
    """Check that remote `name` (default: the default remote) is configured and reachable."""
    name = name or default_remote(cwd)
    known = remotes(cwd)
    if name not in known:
        hint = "run `python remote.py use-s3` first" if name == S3_REMOTE else "see `python remote.py show`"
        raise CourseError(f"no DVC remote named {name!r} (known: {', '.join(sorted(known)) or 'none'}): {hint}")
    url = known[name]["url"]
    if url.startswith("s3://"):
        return check_s3(known[name])
    if "://" in url:
        raise CourseError(f"remote {name!r} uses {url.split('://')[0]}://, which this course does not check")
    return check_local(url, cwd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", choices=["show", "use-s3", "check", "push", "pull"])
    parser.add_argument("-r", "--remote", default=None, help="remote name (default: DVC's default remote)")
    parser.add_argument("targets", nargs="*", help="push/pull only these stages or paths (default: all)")
    args = parser.parse_intermixed_args()  # lets -r come before or after the targets
    if args.command == "show":
        default = default_remote()
        for name, options in remotes().items():
            print(f"{'*' if name == default else ' '} {name}: {options['url']}")
    elif args.command == "use-s3":
        print(f"remote {S3_REMOTE!r} -> {use_s3()} (in .dvc/config.local); push with `python remote.py push -r s3`")
    elif args.command == "check":
        print(f"ok: {check(args.remote)}")
    else:
        print(f"{args.command}: {check(args.remote)}")
        extra = ["-r", args.remote] if args.remote else []
        print(dvc(args.command, *extra, *args.targets), end="")


if __name__ == "__main__":
    run_cli(main)
