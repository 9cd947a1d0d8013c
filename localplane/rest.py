"""A small JSON client for the Kubernetes API, for harness code that makes many plain calls.

The kubernetes package turns every answer into model objects and back; the HA harness (the kubelet
stand-in, the load generator) only needs JSON in and out, from several threads at once, with short
timeouts and without retries, so that an unreachable API server shows up as exactly that.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

__all__ = ["Answer", "Rest", "Unreachable"]


class Unreachable(ConnectionError):
    """No HTTP answer at all: refused, reset or timed out."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("message", self.body))
        return str(self.body)


@dataclass
class Rest:
    """HTTPS to ``server`` trusting ``ca_file``, as a client certificate (``cert_file``/``key_file``)."""

    server: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    timeout: float = 10.0
    _pool: urllib3.PoolManager = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=16,
            cert_reqs="CERT_REQUIRED",
            ca_certs=str(self.ca_file),
            cert_file=str(self.cert_file),
            key_file=str(self.key_file),
            retries=False,
        )

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        try:
            response = self._pool.request(
                method,
                self.server + path,
                body=data,
                headers=headers,
                timeout=urllib3.Timeout(total=timeout or self.timeout),
            )
        except urllib3.exceptions.HTTPError as exc:
            raise Unreachable(f"{method} {path}: {exc}") from None
        text = response.data.decode(errors="replace")
        try:
            parsed: Any = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return Answer(response.status, parsed)

    def get(self, path: str) -> Answer:
        return self.call("GET", path)

    def post(self, path: str, body: Any) -> Answer:
        return self.call("POST", path, body)

    def put(self, path: str, body: Any) -> Answer:
        return self.call("PUT", path, body)

    def merge_patch(self, path: str, body: Any) -> Answer:
        return self.call("PATCH", path, body, content_type="application/merge-patch+json")

    def strategic_patch(self, path: str, body: Any) -> Answer:
        return self.call("PATCH", path, body, content_type="application/strategic-merge-patch+json")

    def delete(self, path: str, body: Any = None) -> Answer:
        return self.call("DELETE", path, body)

    def watch(self, path: str, resource_version: str, seconds: int = 60) -> Iterator[dict[str, Any]]:
        """The events of a watch on the collection ``path`` from ``resource_version``, for at most
        ``seconds``; ends when the server ends it. An ``ERROR`` event (such as 410 Gone) is yielded
        like any other."""
        separator = "&" if "?" in path else "?"
        query = (
            f"{separator}watch=1&allowWatchBookmarks=true&resourceVersion={resource_version}&timeoutSeconds={seconds}"
        )
        try:
            response = self._pool.request(
                "GET",
                self.server + path + query,
                headers={"Accept": "application/json"},
                preload_content=False,
                timeout=urllib3.Timeout(connect=self.timeout, read=seconds + 10),
            )
        except urllib3.exceptions.HTTPError as exc:
            raise Unreachable(f"watch {path}: {exc}") from None
        try:
            if response.status != 200:
                yield {"type": "ERROR", "object": {"code": response.status, "message": response.data.decode()}}
                return
            buffer = b""
            for chunk in response.stream(65536):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        except (urllib3.exceptions.HTTPError, ValueError) as exc:
            raise Unreachable(f"watch {path}: {exc}") from None
        finally:
            response.release_conn()
