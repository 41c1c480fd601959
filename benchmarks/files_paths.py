"""The files group (`--scenarios files`): a 20 MB attachment uploaded and downloaded
through `vigil serve`, beside a plain aiohttp server streaming the same file to disk and
back (`python -m benchmarks.floor files`).

One database (one seeded incident), one stand-in, one `vigil serve`, one key-holder
signed in. Each run uploads `--file-mb` MB of random bytes behind a PDF header (what a
scanner produces is as incompressible) as the incident page's form does (the CSRF token
first), then downloads it and checks it is the same file. The same bytes go to the floor.
Sequential, one user: what is timed is one person's upload and download. The servers'
resident memory is read before and after (`VmRSS`, `VmHWM`): the growth of the peak over
the start shows whether the file was held whole.

Then the same runs with the files in an S3 bucket (`VIGIL_FILES_URL=s3://...`): `vigil
serve` is restarted on the same database against a local S3 stand-in (moto's server, a
child process on 127.0.0.1; never AWS), as `s3_file_upload` and `s3_file_download`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiobotocore.session import get_session

from benchmarks.database import benchmark_database
from benchmarks.deployment import (
    COMMAND,
    PUBLIC_URL,
    keyholders,
    prepare_database,
    serve_environment,
    simulator,
    start_standin,
    vigil_environment,
)
from benchmarks.load import Measured
from benchmarks.options import Options
from benchmarks.processes import (
    ServerProcess,
    cpu_seconds,
    floor_process,
    free_port,
    memory_mb,
    vigil_process,
)
from benchmarks.seed import seed_incidents
from benchmarks.web_paths import sign_in
from store.crypto import generate_key
from testing.school import TEAM_ID, DemoStaff, fictional_pupils

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
S3_BUCKET = "vigil-bench"
S3_CREDENTIALS = {  # made up: the stand-in takes any
    "AWS_ACCESS_KEY_ID": "vigil-bench",
    "AWS_SECRET_ACCESS_KEY": "vigil-bench",
    "AWS_REGION": "eu-west-2",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
TIMEOUT = aiohttp.ClientTimeout(total=300)


def payload(megabytes: float) -> bytes:
    """A PDF header and random bytes: `megabytes` MB that do not compress."""
    size = int(megabytes * 1024 * 1024)
    head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    return head + os.urandom(size - len(head))


def _form(data: bytes, csrf: str | None) -> aiohttp.FormData:
    form = aiohttp.FormData(quote_fields=False)
    if csrf is not None:
        form.add_field("csrf", csrf)
    form.add_field("file", data, filename="scan.pdf", content_type="application/pdf")
    return form


async def _timed_download(http: aiohttp.ClientSession, url: str, cookie: str) -> tuple[float, str]:
    started = time.perf_counter()
    digest = hashlib.sha256()
    async with http.get(url, headers={"Cookie": cookie}) as response:
        if response.status != 200:
            raise RuntimeError(f"download answered {response.status}")
        async for block in response.content.iter_chunked(256 * 1024):
            digest.update(block)
    return time.perf_counter() - started, digest.hexdigest()


async def _vigil_runs(
    http: aiohttp.ClientSession, base: str, cookie: str, data: bytes, runs: int, pid: int
) -> tuple[Measured, Measured]:
    expected = hashlib.sha256(data).hexdigest()
    up: list[float] = []
    down: list[float] = []
    errors: list[str] = []
    cpu_up = cpu_down = 0.0
    wall_up = wall_down = 0.0
    for _ in range(runs):
        async with http.get(f"{base}/incidents/1", headers={"Cookie": cookie}) as page:
            found = CSRF.search(await page.text())
        if not found:
            errors.append("no CSRF token on the incident page")
            continue
        cpu, started = cpu_seconds(pid), time.perf_counter()
        async with http.post(
            f"{base}/incidents/1/files",
            data=_form(data, found.group(1)),
            headers={"Cookie": cookie},
            allow_redirects=False,
        ) as response:
            await response.read()
            location = response.headers.get("Location", "")
        took = time.perf_counter() - started
        cpu_up += cpu_seconds(pid) - cpu
        wall_up += took
        file_id = location.rsplit("#file-", 1)[-1]
        if response.status != 303 or not file_id.isdigit():
            errors.append(f"upload answered {response.status}")
            continue
        up.append(took)
        cpu = cpu_seconds(pid)
        took, digest = await _timed_download(http, f"{base}/incidents/1/files/{file_id}", cookie)
        cpu_down += cpu_seconds(pid) - cpu
        wall_down += took
        if digest != expected:
            errors.append("the downloaded file differs from the upload")
            continue
        down.append(took)
    return (
        Measured(up, wall_up, errors, {"bytes": len(data)}, cpu_s=cpu_up),
        Measured(down, wall_down, list(errors), {"bytes": len(data)}, cpu_s=cpu_down),
    )


async def _floor_runs(
    http: aiohttp.ClientSession, base: str, data: bytes, runs: int, pid: int
) -> tuple[Measured, Measured]:
    expected = hashlib.sha256(data).hexdigest()
    up: list[float] = []
    down: list[float] = []
    errors: list[str] = []
    cpu_up = cpu_down = 0.0
    for _ in range(runs):
        cpu, started = cpu_seconds(pid), time.perf_counter()
        async with http.post(f"{base}/upload", data=_form(data, None)) as response:
            name = (await response.text()).strip()
        up.append(time.perf_counter() - started)
        cpu_up += cpu_seconds(pid) - cpu
        cpu = cpu_seconds(pid)
        took, digest = await _timed_download(http, f"{base}/files/{name}", "")
        cpu_down += cpu_seconds(pid) - cpu
        if digest != expected:
            errors.append("the floor's download differs")
        down.append(took)
    return (
        Measured(up, sum(up), errors, {"bytes": len(data)}, cpu_s=cpu_up),
        Measured(down, sum(down), list(errors), {"bytes": len(data)}, cpu_s=cpu_down),
    )


async def run_group(
    options: Options, say: Callable[[str], None], raw: dict[str, Any], staff: tuple[DemoStaff, ...]
) -> str:
    """Serve, sign in, upload and download beside the floor; fills `raw`; the backend."""
    data = payload(options.file_mb)
    async with (
        benchmark_database(options.database) as database,
        contextlib.AsyncExitStack() as stack,
    ):
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-bench-")))
        standin = await start_standin(stack, staff)
        data_key = generate_key()
        settings = vigil_environment(database.url, standin, data_key)
        settings["VIGIL_MAX_UPLOAD_MB"] = str(max(25.0, options.file_mb + 1))
        env = serve_environment(workdir, settings)
        say(f"files: database {database.backend}; vigil db upgrade")
        await prepare_database(env, workdir, staff, fictional_pupils(50))
        await seed_incidents(database.url, team_id=TEAM_ID, count=1, data_key=data_key)
        vigil = vigil_process(env=env, cwd=workdir)
        await vigil.start()
        stack.push_async_callback(vigil.stop)
        sim = simulator(standin, vigil.url)
        stack.push_async_callback(sim.close)
        signed = await sign_in(
            sim,
            user_id=keyholders(staff)[0],
            command=COMMAND,
            public_url=PUBLIC_URL,
            server_url=vigil.url,
        )
        floor_dir = workdir / "floor-files"
        floor_dir.mkdir()
        floor = floor_process("files", [f"--directory={floor_dir}"], cwd=workdir)
        await floor.start()
        stack.push_async_callback(floor.stop)
        vigil_before, floor_before = memory_mb(vigil.pid), memory_mb(floor.pid)
        mb = f"{options.file_mb:g} MB"
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            say(f"files: floor, {options.file_runs} × upload and download of {mb}")
            raw["floor_file_upload"], raw["floor_file_download"] = await _floor_runs(
                http, floor.url, data, options.file_runs, floor.pid
            )
            say(f"files: vigil, {options.file_runs} × upload and download of {mb}")
            raw["file_upload"], raw["file_download"] = await _vigil_runs(
                http, vigil.url, signed.cookie, data, options.file_runs, vigil.pid
            )
        vigil_after, floor_after = memory_mb(vigil.pid), memory_mb(floor.pid)
        await vigil.stop()  # one server per database: the S3 variant takes its place
        s3 = await _s3_standin(stack, workdir)
        s3_env = {
            **env,
            **S3_CREDENTIALS,
            "VIGIL_FILES_URL": f"s3://{S3_BUCKET}/files",
            "VIGIL_S3_ENDPOINT_URL": s3.url,
        }
        vigil_s3 = vigil_process(env=s3_env, cwd=workdir)
        await vigil_s3.start()
        stack.push_async_callback(vigil_s3.stop)
        s3_before = memory_mb(vigil_s3.pid)
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            say(f"files: vigil with an S3 store, {options.file_runs} × upload and download of {mb}")
            raw["s3_file_upload"], raw["s3_file_download"] = await _vigil_runs(
                http, vigil_s3.url, signed.cookie, data, options.file_runs, vigil_s3.pid
            )
        s3_after = memory_mb(vigil_s3.pid)
        raw["files"] = {
            "file_mb": options.file_mb,
            "runs": options.file_runs,
            "vigil_memory": {"before": vigil_before, "after": vigil_after},
            "floor_memory": {"before": floor_before, "after": floor_after},
            "vigil_peak_growth_mb": round(vigil_after["peak_mb"] - vigil_before["rss_mb"], 1),
            "floor_peak_growth_mb": round(floor_after["peak_mb"] - floor_before["rss_mb"], 1),
            "vigil_s3_memory": {"before": s3_before, "after": s3_after},
            "vigil_s3_peak_growth_mb": round(s3_after["peak_mb"] - s3_before["rss_mb"], 1),
            "checks": {
                "files_round_trip_intact": not raw["file_upload"].errors
                and len(raw["file_download"].latencies) == options.file_runs,
                "files_s3_round_trip_intact": not raw["s3_file_upload"].errors
                and len(raw["s3_file_download"].latencies) == options.file_runs,
            },
        }
        return database.backend


async def _s3_standin(stack: contextlib.AsyncExitStack, workdir: Path) -> ServerProcess:
    """moto's S3 server as a child process on 127.0.0.1, with the benchmark's bucket."""
    port = free_port()
    moto = ServerProcess(
        name="moto-s3",
        argv=[sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={},
        cwd=workdir,
        port=port,
        health_path="/moto-api/",
    )
    await moto.start()
    stack.push_async_callback(moto.stop)
    async with get_session().create_client(
        "s3",
        endpoint_url=moto.url,
        region_name=S3_CREDENTIALS["AWS_REGION"],
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    ) as client:
        await client.create_bucket(
            Bucket=S3_BUCKET,
            CreateBucketConfiguration={"LocationConstraint": S3_CREDENTIALS["AWS_REGION"]},
        )
    return moto


def files_lines(report: dict[str, Any]) -> list[str]:
    """The files group's memory, for the printed table."""
    files = report["files"]
    vigil, floor = files["vigil_memory"], files["floor_memory"]
    lines = [
        f"Files: {files['runs']} × {files['file_mb']:g} MB up and down, one user. Server "
        f"memory (MB): vigil RSS {vigil['before']['rss_mb']} before → peak "
        f"{vigil['after']['peak_mb']} (peak growth {files['vigil_peak_growth_mb']:+}); floor "
        f"RSS {floor['before']['rss_mb']} → peak {floor['after']['peak_mb']} (peak growth "
        f"{files['floor_peak_growth_mb']:+}).",
    ]
    if "vigil_s3_memory" in files:
        s3 = files["vigil_s3_memory"]
        lines.append(
            f"With an S3 store (moto on 127.0.0.1): vigil RSS {s3['before']['rss_mb']} before "
            f"→ peak {s3['after']['peak_mb']} (peak growth {files['vigil_s3_peak_growth_mb']:+})."
        )
    return lines
