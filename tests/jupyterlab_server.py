"""Start a real JupyterLab on loopback for end-to-end tests, and stop it whatever happens.

Random port and token, a temporary root and workspaces folder (so no earlier session's notebooks are
reopened), kernels cleaned up through the REST API before the server is stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabServer:
    url: str          # http://127.0.0.1:PORT
    token: str
    root: Path        # the server's root_dir (copy notebooks here)
    process: subprocess.Popen

    def api(self, path: str, method: str = "GET", body: dict | None = None):
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            data = resp.read()
            return json.loads(data) if data else None

    def lab_url(self, notebook: str) -> str:
        return f"{self.url}/lab/tree/{notebook}?token={self.token}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    return str(exe) if exe.exists() else name


@contextlib.contextmanager
def jupyter_lab(startup_timeout: float = 60.0) -> Iterator[LabServer]:
    """Run ``jupyter lab`` on 127.0.0.1 with a random port/token in temporary folders; always stopped."""
    tmp = Path(tempfile.mkdtemp(prefix="liqlab-lab-"))
    root, workspaces, runtime = tmp / "root", tmp / "workspaces", tmp / "runtime"
    for p in (root, workspaces, runtime):
        p.mkdir()
    port, token = free_port(), secrets.token_hex(16)
    cmd = [
        _bin("jupyter-lab"), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--LabApp.workspaces_dir={workspaces}", "--ServerApp.port_retries=0",
        "--LabServerApp.open_browser=False", "--ServerApp.disable_check_xsrf=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_PLATFORM_DIRS="1")
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, proc)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early:\n{(tmp / 'server.log').read_text()[-2000:]}")
            try:
                server.api("/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not answer in {startup_timeout:.0f} s") from None
                time.sleep(0.3)
        yield server
    finally:
        with contextlib.suppress(Exception):
            for s in server.api("/api/sessions") or []:
                server.api(f"/api/sessions/{s['id']}", method="DELETE")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def labextensions() -> str:
    """Output of ``jupyter labextension list`` (stdout and stderr; the list goes to stderr)."""
    res = subprocess.run([_bin("jupyter"), "labextension", "list"], capture_output=True, text=True, timeout=120)
    return res.stdout + res.stderr
