"""A real S3-compatible server on loopback for the tests: moto's standalone server.

It runs in its own process (``python -m moto.server``), so memory measured in the test
process is chachaml's alone and moto's global state stays out of it. Signature checking
is switched on (moto's auth mode) once an IAM user with S3 rights and a bucket exist, so
wrong credentials are refused the way AWS and MinIO refuse them.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chachaml.settings import S3Settings
from tests.support.services import unavailable
from tests.support.waiting import wait_for

BUCKET = "chachaml-test"
REGION = "us-east-1"
S3_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


@dataclass(frozen=True)
class S3Server:
    """Where the server listens and the credentials it accepts."""

    endpoint: str
    access_key_id: str
    secret_access_key: str

    def settings(self, **changes: Any) -> S3Settings:
        """Settings that reach this server (with ``changes``, e.g. a wrong secret)."""
        values: dict[str, Any] = {
            "endpoint": self.endpoint,
            "region": REGION,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
        }
        return S3Settings(**(values | changes))

    def fresh_root(self) -> str:
        """An artifact root under a prefix no other test uses."""
        return f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}"

    def boto(self) -> Any:
        """A boto3 S3 client with the good credentials, to look at objects from outside."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )


def _require_auth(endpoint: str) -> None:
    """From now on every request must be signed by a known IAM key."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(endpoint: str, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        return True  # exited: stop waiting, the caller says why
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=1):
            return True
    except (urllib.error.URLError, OSError):
        return False


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes], log: str) -> None:
    try:
        wait_for(lambda: _answers(endpoint, process), 30, "moto_server to answer")
    except AssertionError:
        unavailable(f"moto_server did not answer within 30s; see {log}")
    if process.poll() is not None:
        unavailable(f"moto_server exited with {process.returncode}; see {log}")


@contextmanager
def moto_s3() -> Iterator[S3Server]:
    """Start moto on a free 127.0.0.1 port with a bucket and an IAM user; stop it after."""
    try:
        import boto3
        import moto.server  # noqa: F401
    except ImportError as exc:
        unavailable(f"moto[server] is not installed: {exc}")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(endpoint, process, log.name)
        anonymous: dict[str, Any] = {
            "endpoint_url": endpoint,
            "region_name": REGION,
            "aws_access_key_id": "setup",
            "aws_secret_access_key": "setup",
        }
        iam = boto3.client("iam", **anonymous)
        iam.create_user(UserName="chachaml")
        iam.put_user_policy(
            UserName="chachaml", PolicyName="s3", PolicyDocument=json.dumps(S3_POLICY)
        )
        key = iam.create_access_key(UserName="chachaml")["AccessKey"]
        boto3.client("s3", **anonymous).create_bucket(Bucket=BUCKET)
        _require_auth(endpoint)
        yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        process.terminate()
        process.wait(timeout=10)
