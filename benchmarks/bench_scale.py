"""`validate` and `chips` on a generated study-size world, against a plain copy of every image chip.

Input: `profiles/scale.yaml`'s world (the demo generator at the study's size: `--chips-per-source` chips of
`--chip-px` pixels for each of the six sources, and a EuroCrops layer of `--parcels` parcels), generated once by
`python -m curation.demo` in a project copy in the work folder and reused while its `DEMO_WORLD.json` matches.

Why a project copy and `python -m`: the stages run as `dvc repro` runs them (their own process, `--params
params.yaml`, the profile's local Dask cluster), in a DVC project whose deps are the scale world, but timed on their
own: `dvc repro` would add its hashing and output caching to the stage's time, and that is reported apart (`dvc
commit` records the lock once; then `dvc status` with nothing changed is timed). The copy holds the working tree's
code (curation/, training/, dvc.yaml, .dvc/config) as it is when the script starts.

Measured per stage: wall time (process start to exit), chips processed (from the stage's reports), peak RSS of
every process of its tree (psutil, polled every 0.1 s; Dask workers are their own processes) and the largest
process's exact peak (`wait4`'s ru_maxrss over the tree). The label cache (`CROPHARMONY_CACHE`, the EuroCrops index
and the label windows validate leaves for chips) starts empty, as for a user's first run on new products.

Baseline, side by side: `shutil.copyfile` of every image file of the world (a source's chip file, or a chip
product's band files) into a scratch folder, median of `--repeats` runs interleaved with the stages (one before
validate, one between, the rest after chips; each copy removed after it), with `os.sync()` untimed before every
timed phase so none pays for the previous one's write-back. Printed: each stage's ms per chip against the copy's
(target at most 3x), peak RSS per process (target under 2 GB), the footprint of a run against its imagery (target at
most 1.2x: everything the run leaves on disk, each inode once: the world, the label cache, the chips output, the
reports and the DVC cache; printed part by part), and `dvc status` (target under 10 s).

Run: `uv run python benchmarks/bench_scale.py [--chips-per-source 1100] [--parcels 1000000] [--json PATH]`
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import json
import os
import re
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil
import yaml
from common import bench_parser, write_result

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "profiles" / "scale.yaml"
MACHINE_SPEED = ROOT.parent / "shared" / "tools" / "machine-speed"
CODE = ("curation", "training", "reference")  # the folders dvc.yaml's stages depend on
FILES = ("dvc.yaml", ".dvcignore", ".dvc/config", "pyproject.toml")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*_cache")
THREADS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "GDAL_NUM_THREADS": "1",
}
"""Every process of the benchmark runs one thread per library: Dask's workers are the parallelism."""
BAND_FILE = re.compile(r"_B(0[1-9]|1[0-2]|8A)(_\d+m)?\.tiff?$", re.IGNORECASE)
WORLD_KEYS = ("seed", "chip_px", "chips_per_source", "cloud_probability", "parcels")
POLL_S = 0.1
DISK_POLL_S = 5.0
MB = 1024 * 1024
TARGET_RATIO = 3.0
TARGET_RSS_MB = 2048.0
TARGET_DISK_RATIO = 1.2
TARGET_STATUS_S = 10.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: sizes, work folder, repeats of the cheap parts, JSON output."""
    parser = bench_parser(
        __doc__, repeats="runs of the copy baseline and of dvc status (medians reported)", seed="demo world seed"
    )
    parser.add_argument("--chips-per-source", type=int, default=1100, help="image chips per source (default 1100)")
    parser.add_argument("--parcels", type=int, default=1_000_000, help="EuroCrops layer size (default 1000000)")
    parser.add_argument("--chip-px", type=int, default=256, help="chip side in pixels (default 256, the study's)")
    parser.add_argument("--workers", type=int, default=None, help="local Dask workers [profile shared.dask.workers]")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "cropharmony-bench-scale",
        help="work folder: the project copy with its world, the cache, the copy scratch (default $TMPDIR/...)",
    )
    parser.add_argument(
        "--machine-speed", action="store_true", help="run ../shared/tools/machine-speed before and after"
    )
    parser.add_argument(
        "--cold", action="store_true", help="empty the page cache before every timed phase (needs root on Linux)"
    )
    args = parser.parse_args(argv)
    if args.chips_per_source < 1 or args.parcels < 1 or args.repeats < 1:
        parser.error("--chips-per-source, --parcels and --repeats must be positive")
    return args


class Proc:
    """One process seen in a measured tree (plain classes: the smoke test loads this script without sys.modules)."""

    def __init__(self, pid: int, kind: str) -> None:
        self.pid = pid
        self.kind = kind  # stage (the command itself), worker (a Dask worker process) or helper
        self.peak_rss_mb = 0.0

    def row(self) -> dict[str, Any]:
        """As a JSON row."""
        return {"pid": self.pid, "kind": self.kind, "peak_rss_mb": self.peak_rss_mb}


class Run:
    """A measured command: wall time, exit status and memory of its process tree."""

    def __init__(
        self, command: list[str], wall_s: float, returncode: int, maxrss_mb: float, tree_peak_mb: float
    ) -> None:
        self.command = command
        self.wall_s = wall_s
        self.returncode = returncode
        self.maxrss_mb = maxrss_mb  # wait4: the largest single process of the tree, exact (not polled)
        self.tree_peak_mb = tree_peak_mb  # polled: the most the whole tree held at once
        self.processes: list[Proc] = []
        self.log = ""

    def peak(self, kind: str) -> float:
        """The largest polled peak among processes of a kind (0 when none was seen)."""
        return max((p.peak_rss_mb for p in self.processes if p.kind == kind), default=0.0)

    def count(self, kind: str) -> int:
        """How many processes of a kind were seen."""
        return sum(1 for p in self.processes if p.kind == kind)


def _kind(process: psutil.Process, root: int) -> str:
    if process.pid == root:
        return "stage"
    try:
        line = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "helper"
    if "resource_tracker" in line:
        return "helper"
    if "forkserver" in line:  # the forkserver (a helper) and the workers it forks share its command line
        try:
            parent = process.parent()
            forked = parent is not None and "forkserver" in " ".join(parent.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            forked = False
        return "worker" if forked else "helper"
    return "worker" if "spawn_main" in line or "multiprocessing-fork" in line else "helper"


def measure(
    command: list[str], cwd: Path, env: dict[str, str], log: Path, every: Callable[[], None] | None = None
) -> Run:
    """Run `command`, polling the RSS of every process in its tree; `every` runs each DISK_POLL_S seconds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    seen: dict[int, Proc] = {}
    tree_peak = 0.0
    with log.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        last_disk = start
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                wall = time.perf_counter() - start
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            total = 0.0
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                for p in [root, *root.children(recursive=True)]:
                    try:
                        rss = p.memory_info().rss / MB
                    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                        continue
                    entry = seen.setdefault(p.pid, Proc(p.pid, _kind(p, proc.pid)))
                    entry.peak_rss_mb = max(entry.peak_rss_mb, rss)
                    total += rss
            tree_peak = max(tree_peak, total)
            if every is not None and time.perf_counter() - last_disk >= DISK_POLL_S:
                every()
                last_disk = time.perf_counter()
            time.sleep(POLL_S)
    text = log.read_text(errors="replace")
    run = Run(command, wall, proc.returncode, usage.ru_maxrss / 1024, tree_peak)
    run.processes = sorted(seen.values(), key=_order)
    run.log = text[-4000:]
    return run


def _order(p: Proc) -> tuple[int, int]:
    return (("stage", "worker", "helper").index(p.kind), p.pid)


def require_ok(run: Run, what: str) -> None:
    """Stop with the command's output when it failed: no number is printed for a failed stage."""
    if run.returncode != 0:
        raise SystemExit(f"{what} failed (exit {run.returncode}): {' '.join(run.command)}\n{run.log}")


class DiskUse:
    """Bytes on disk under folders, each inode counted once (hard links share their blocks)."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, int]] = set()

    def add(self, root: Path, only: Callable[[Path], bool] | None = None) -> tuple[int, int, int]:
        """(disk bytes not counted before, apparent bytes, files) of the files under `root` (that `only` keeps)."""
        disk = apparent = files = 0
        for path in walk(root):
            if only is not None and not only(path):
                continue
            try:
                info = path.lstat()
            except FileNotFoundError:  # a temporary file renamed while we walked
                continue
            files += 1
            apparent += info.st_size
            key = (info.st_dev, info.st_ino)
            if key not in self.seen:
                self.seen.add(key)
                disk += info.st_blocks * 512
        return disk, apparent, files


def walk(root: Path) -> Iterable[Path]:
    """Every regular file under `root` (no links followed), in a stable order."""
    if not root.exists():
        return
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                yield Path(entry.path)


def is_imagery(world: Path) -> Callable[[Path], bool]:
    """Image files of the world: chip files under sentinel2/, band files of the chip products."""

    def keep(path: Path) -> bool:
        relative = path.relative_to(world)
        return relative.parts[0] == "sentinel2" or bool(BAND_FILE.search(path.name))

    return keep


def remove(path: Path) -> None:
    """Remove a file or folder, read-only files included (DVC's hard-link cache protects them)."""
    if path.is_dir() and not path.is_symlink():

        def writable(function: Callable[..., Any], name: str, _: object) -> None:
            Path(name).parent.chmod(stat.S_IRWXU)
            function(name)

        shutil.rmtree(path, onerror=writable)  # Python 3.11: onexc is 3.12's
    elif path.exists() or path.is_symlink():
        path.unlink()


def project_params(args: argparse.Namespace) -> dict[str, Any]:
    """profiles/scale.yaml with the command line's sizes (the default sizes are the profile's own)."""
    params: dict[str, Any] = yaml.safe_load(PROFILE.read_text())
    params["shared"]["chip_px"] = params["demo"]["chip_px"] = args.chip_px
    params["demo"]["chips_per_source"] = args.chips_per_source
    params["demo"]["parcels"] = args.parcels
    params["demo"]["seed"] = args.seed
    if args.workers is not None:
        params["shared"]["dask"]["workers"] = args.workers
    return params


def prepare_project(project: Path, params: dict[str, Any], workdir: Path) -> str:
    """The project copy: this tree's code, the params, a DVC repo without git; keeps its world. Returns cache.type."""
    project.mkdir(parents=True, exist_ok=True)
    for name in CODE:
        remove(project / name)
        shutil.copytree(ROOT / name, project / name, ignore=IGNORE)
    for name in FILES:
        if (ROOT / name).is_file():
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, project / name)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stale in (project / "dvc.lock", project / ".dvc" / "cache"):  # .dvc/tmp stays: its btime keys DVC's state
        remove(stale)
    config = configparser.ConfigParser()
    config.read(project / ".dvc" / "config")
    configured = config.get("cache", "type", fallback=None)
    cache_type = configured or "reflink,hardlink,copy"
    local = f"[core]\n    no_scm = true\n    site_cache_dir = {workdir / 'dvc-site'}\n"
    if not configured:  # DVC's default (reflink, copy) would copy the 8 GB world into its cache once more
        local += f"[cache]\n    type = {cache_type}\n"
    (project / ".dvc" / "config.local").write_text(local)
    return cache_type


def world_matches(world: Path, demo: dict[str, Any]) -> bool:
    """Whether the world in the project was generated with these demo params (its DEMO_WORLD.json)."""
    stamp = world / "DEMO_WORLD.json"
    if not stamp.is_file():
        return False
    built = json.loads(stamp.read_text())
    return all(built.get(key) == demo.get(key) for key in WORLD_KEYS)


def python(module: str) -> list[str]:
    """A stage's command as dvc.yaml has it, with this interpreter."""
    return [sys.executable, "-m", module, "--params", "params.yaml"]


def dvc() -> list[str]:
    """The DVC command of this environment."""
    beside = Path(sys.executable).parent / "dvc"
    return [str(beside)] if beside.is_file() else [sys.executable, "-m", "dvc"]


def environment(project: Path, cache: Path) -> dict[str, str]:
    """The stages' environment: one thread per library, the project's code first, the benchmark's cache."""
    env = dict(os.environ) | THREADS
    env["PYTHONPATH"] = os.pathsep.join([str(project), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["CROPHARMONY_CACHE"] = str(cache)
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def generate(project: Path, world: Path, env: dict[str, str], logs: Path) -> tuple[Run, int]:
    """Write the world with the demo stage; returns its run and the peak disk use of data/ while it ran."""
    remove(world)
    data = world.parent
    peak = [0]

    def sample() -> None:
        peak[0] = max(peak[0], DiskUse().add(data)[0])

    run = measure(python("curation.demo"), project, env, logs / "demo.log", every=sample)
    require_ok(run, "world generation (python -m curation.demo)")
    sample()
    return run, peak[0]


def stage_chips(project: Path, params: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Chips per source that validate and chips report having processed."""
    summary = json.loads((project / params["validate"]["out"] / "summary.json").read_text())
    report = json.loads((project / params["chips"]["report"]).read_text())
    return {
        "validate": {name: int(s["chips"]) for name, s in summary["sources"].items()},
        "chips": {name: int(s["chips"]) for name, s in report["sources"].items()},
    }


def copy_once(files: list[Path], world: Path, scratch: Path) -> float:
    """Seconds to `shutil.copyfile` every file into `scratch` (its folders made first, untimed); removes the copy."""
    remove(scratch)
    targets = [scratch / f.relative_to(world) for f in files]
    for folder in sorted({t.parent for t in targets}):
        folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for source, target in zip(files, targets, strict=True):
        shutil.copyfile(source, target)
    seconds = time.perf_counter() - start
    remove(scratch)
    return seconds


DROP_CACHES = Path("/proc/sys/vm/drop_caches")
COLD = {"on": False}  # --cold: every timed phase starts with an empty page cache (root on Linux)


def settle() -> None:
    """Write back what earlier phases left dirty (untimed), so no phase pays for the previous one's writes.

    With --cold the page cache is then emptied too, so every phase reads the world from disk, as a user's first run
    on new products does; without it, whatever the machine's memory kept of the 9 GB world is read from memory by
    some phases and from disk by others, which moved the stages' wall time by 1.6x between runs.
    """
    os.sync()
    if COLD["on"]:
        DROP_CACHES.write_text("3\n")


def can_drop_caches() -> bool:
    """Whether this process may empty the page cache (root, and a /proc that allows it)."""
    try:
        os.sync()
        DROP_CACHES.write_text("3\n")
    except OSError:
        return False
    return True


def copy_slots(repeats: int) -> tuple[int, int, int]:
    """Copy runs before validate, between the stages and after chips: interleaved, so drift hits both sides."""
    if repeats == 1:
        return (0, 0, 1)
    if repeats == 2:
        return (1, 0, 1)
    return (1, 1, repeats - 2)


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall seconds and result of a short command."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


def dvc_checks(project: Path, env: dict[str, str], repeats: int) -> dict[str, Any]:
    """Record the lock once (`dvc commit`), then time `dvc status` with nothing changed."""
    commit_s, done = timed([*dvc(), "commit", "--force", "demo", "validate", "chips"], project, env)
    if done.returncode != 0:
        raise SystemExit(f"dvc commit failed:\n{done.stdout}{done.stderr}")
    targeted, whole, text = [], [], ""
    for _ in range(repeats):
        seconds, done = timed([*dvc(), "status", "demo", "validate", "chips"], project, env)
        if done.returncode != 0:
            raise SystemExit(f"dvc status failed:\n{done.stdout}{done.stderr}")
        targeted.append(seconds)
        text = done.stdout.strip()
        seconds, full = timed([*dvc(), "status"], project, env)
        whole.append(seconds)
    stale = [line for line in full.stdout.splitlines() if line and not line.startswith((" ", "\t"))]
    return {
        "commit_s": commit_s,
        "status_s": targeted,
        "status_median_s": statistics.median(targeted),
        "status_output": text,
        "up_to_date": "up to date" in text,
        "status_all_s": whole,
        "status_all_median_s": statistics.median(whole),
        "status_all_stages_listed": [s.rstrip(":") for s in stale],
    }


def machine_speed() -> str:
    """../shared/tools/machine-speed's line (empty when the tool is absent)."""
    if not MACHINE_SPEED.is_file():
        return ""
    done = subprocess.run([str(MACHINE_SPEED)], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def stage_row(run: Run, chips: int, copy_ms: float, fastest_ms: float) -> dict[str, Any]:
    """A stage's numbers: wall, per chip, against the copy, memory per process kind."""
    per_chip = run.wall_s * 1000 / chips
    return {
        "wall_s": run.wall_s,
        "ms_per_chip": per_chip,
        "ratio_vs_copy": per_chip / copy_ms,
        "ratio_vs_fastest_copy": per_chip / fastest_ms,
        "maxrss_mb": run.maxrss_mb,
        "stage_peak_mb": run.peak("stage"),
        "worker_peak_mb": run.peak("worker"),
        "workers_seen": run.count("worker"),
        "tree_peak_mb": run.tree_peak_mb,
        "processes": [p.row() for p in run.processes],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Generate (or reuse) the world, run validate and chips, the copy baseline and dvc status; print and return."""
    args = parse_args(argv)
    COLD["on"] = False
    if args.cold:
        if not can_drop_caches():
            raise SystemExit(f"--cold: cannot write {DROP_CACHES} (run as root on Linux, or drop --cold)")
        COLD["on"] = True
    speed_before = machine_speed() if args.machine_speed else ""
    workdir: Path = args.workdir.resolve()
    project, cache, logs = workdir / "project", workdir / "cache", workdir / "logs"
    params = project_params(args)
    world = project / params["demo"]["out"]
    if Path(params["shared"]["raw_root"]) != Path(params["demo"]["out"]):
        raise SystemExit("profiles/scale.yaml: shared.raw_root must be the demo world (demo.out)")
    cache_type = prepare_project(project, params, workdir)
    env = environment(project, cache)
    sources = list(params["shared"]["sources"])
    expected = args.chips_per_source * len(sources)

    generated = None
    peak_disk = 0
    if not world_matches(world, params["demo"]):
        remove(cache)
        env_demo = env | {"CROPHARMONY_CACHE": str(workdir / "cache-demo")}
        generated, peak_disk = generate(project, world, env_demo, logs)
        remove(workdir / "cache-demo")
    usage = DiskUse()
    imagery_disk, imagery_bytes, imagery_files = usage.add(world, is_imagery(world))
    other_disk, other_bytes, other_files = usage.add(world, lambda path: not is_imagery(world)(path))
    world_disk = imagery_disk + other_disk

    files = [f for f in walk(world) if is_imagery(world)(f)]
    scratch = workdir / "copy-scratch"
    before, between, after = copy_slots(args.repeats)
    copy_times: list[float] = []

    def copies(count: int) -> None:
        for _ in range(count):
            settle()
            copy_times.append(copy_once(files, world, scratch))

    remove(cache)  # a first run: the EuroCrops index and the label windows are built by the timed stages
    copies(before)
    settle()
    validate = measure(python("curation.validate"), project, env, logs / "validate.log")
    require_ok(validate, "validate")
    copies(between)
    settle()
    chips = measure(python("curation.chips"), project, env, logs / "chips.log")
    require_ok(chips, "chips")
    copies(after)
    counts = stage_chips(project, params)
    for stage, per_source in counts.items():
        if sum(per_source.values()) != expected or set(per_source) != set(sources):
            raise SystemExit(f"{stage} processed {per_source}, expected {args.chips_per_source} chips per source")
    cache_disk = usage.add(cache)[0]
    chips_disk = usage.add(project / params["chips"]["out"])[0]

    copy_s = statistics.median(copy_times)
    copy_ms = copy_s * 1000 / expected
    fastest_ms = min(copy_times) * 1000 / expected  # a shared disk makes the copy noisy: its best run is the bound

    settle()
    checks = dvc_checks(project, env, args.repeats)
    dvc_cache_disk = usage.add(project / ".dvc" / "cache")[0]
    reports_disk = usage.add(project / "reports")[0]
    footprint = {
        "world": world_disk,
        "label_cache": cache_disk,
        "chips_out": chips_disk,
        "reports": reports_disk,
        "dvc_cache": dvc_cache_disk,
    }
    footprint_disk = sum(footprint.values())
    speed_after = machine_speed() if args.machine_speed else ""

    rows = {
        name: stage_row(run, expected, copy_ms, fastest_ms) for name, run in (("validate", validate), ("chips", chips))
    }
    rss_max = max(max(r["maxrss_mb"], r["worker_peak_mb"], r["stage_peak_mb"]) for r in rows.values())
    result: dict[str, Any] = {
        "chips_per_source": args.chips_per_source,
        "chip_px": args.chip_px,
        "parcels": args.parcels,
        "sources": sources,
        "chips": expected,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "dask": params["shared"]["dask"],
        "link": params["chips"]["link"],
        "threads": THREADS,
        "cold": COLD["on"],
        "machine_speed": {"before": speed_before, "after": speed_after},
        "world": {
            "generated": generated is not None,
            "wall_s": None if generated is None else generated.wall_s,
            "peak_rss_mb": None if generated is None else generated.maxrss_mb,
            "peak_disk_bytes": peak_disk or None,
            "disk_bytes": world_disk,
            "imagery_disk_bytes": imagery_disk,
            "imagery_bytes": imagery_bytes,
            "imagery_files": imagery_files,
            "other_bytes": other_bytes,
            "files": imagery_files + other_files,
            "disk_ratio": world_disk / imagery_disk,
        },
        "stages": rows,
        "chips_processed": counts,
        "copy": {
            "times_s": copy_times,
            "slots": f"{before} before validate, {between} between, {after} after chips",
            "median_s": copy_s,
            "ms_per_chip": copy_ms,
            "fastest_ms_per_chip": fastest_ms,
            "mb_per_s": [imagery_bytes / MB / s for s in copy_times],
            "files": len(files),
            "bytes": imagery_bytes,
        },
        "footprint": {
            "disk_bytes": footprint_disk,
            "parts_disk_bytes": footprint,
            "imagery_disk_bytes": imagery_disk,
            "disk_ratio": footprint_disk / imagery_disk,
        },
        "cache_disk_bytes": cache_disk,
        "chips_out_extra_disk_bytes": chips_disk,
        "dvc": checks | {"cache_type": cache_type, "cache_extra_disk_bytes": dvc_cache_disk},
        "rss_max_mb": rss_max,
        "targets": {
            "ratio_le_3x": all(r["ratio_vs_fastest_copy"] <= TARGET_RATIO for r in rows.values()),
            "rss_lt_2gb": rss_max < TARGET_RSS_MB,
            "disk_le_1_2x": footprint_disk / imagery_disk <= TARGET_DISK_RATIO,
            "dvc_status_lt_10s": checks["status_median_s"] < TARGET_STATUS_S and checks["up_to_date"],
        },
    }
    report(result)
    return write_result(args.json, result)


def report(r: dict[str, Any]) -> None:
    """Print the numbers in the benchmarks' style: the baseline beside every time."""
    gb = 1e9
    w, dvc_ = r["world"], r["dvc"]
    print(
        f"scale: {len(r['sources'])} sources x {r['chips_per_source']:,} chips of {r['chip_px']} px "
        f"({r['chips']:,} chips), EuroCrops layer {r['parcels']:,} parcels, seed {r['seed']}, {r['cpus']} CPUs, "
        f"dask {r['dask']['scheduler']} {r['dask']['workers']} workers x 1 thread, chips.link {r['link']}, "
        + " ".join(f"{k}={v}" for k, v in r["threads"].items() if k in ("OMP_NUM_THREADS", "GDAL_NUM_THREADS"))
    )
    if r["machine_speed"]["before"]:
        print(f"before: {r['machine_speed']['before']}")
    cold = r.get("cold", False)
    print(f"page cache: {'emptied before every timed phase (--cold)' if cold else 'as the machine keeps it'}")
    made = (
        f"generated in {w['wall_s']:.1f} s (peak RSS {w['peak_rss_mb']:.0f} MB), peak disk while writing "
        f"{w['peak_disk_bytes'] / gb:.2f} GB"
        if w["generated"]
        else "reused (generated by an earlier run)"
    )
    print(
        f"world: {made}; {w['files']:,} files, {w['disk_bytes'] / gb:.2f} GB on disk, of it imagery "
        f"{w['imagery_disk_bytes'] / gb:.2f} GB ({w['imagery_files']:,} files): {w['disk_ratio']:.3f}x"
    )
    copy = r["copy"]
    print(
        f"{'stage':<32}{'wall s':>8}{'ms/chip':>9}{'vs copy':>9}{'vs best':>9}"
        f"{'stage MB':>10}{'worker MB':>11}{'tree MB':>9}"
    )
    for name, row in r["stages"].items():
        print(
            f"{name:<32}{row['wall_s']:>8.1f}{row['ms_per_chip']:>9.2f}{row['ratio_vs_copy']:>8.1f}x"
            f"{row['ratio_vs_fastest_copy']:>8.1f}x{row['stage_peak_mb']:>10.0f}{row['worker_peak_mb']:>11.0f}"
            f"{row['tree_peak_mb']:>9.0f}"
        )
    label = f"plain copy ({copy['files']:,} image files)"
    best = min(copy["times_s"])
    print(f"{label:<32}{copy['median_s']:>8.1f}{copy['ms_per_chip']:>9.2f}{'1.0x':>9}")
    print(f"{'plain copy, its fastest run':<32}{best:>8.1f}{copy['fastest_ms_per_chip']:>9.2f}{'':>9}{'1.0x':>9}")
    runs = ", ".join(f"{s:.1f} s ({rate:.0f} MB/s)" for s, rate in zip(copy["times_s"], copy["mb_per_s"], strict=True))
    print(
        f"(stage wall: process start to exit, cluster start-up included. copy: shutil.copyfile of every image file, "
        f"median of {len(copy['times_s'])} runs interleaved with the stages ({copy['slots']}): {runs}; os.sync() "
        f"untimed before every phase. MB: peak RSS polled every {POLL_S} s; worker: the largest Dask worker)"
    )
    print(
        "exact peak RSS of the largest process (wait4): "
        + ", ".join(f"{name} {row['maxrss_mb']:.0f} MB" for name, row in r["stages"].items())
        + "; workers seen: "
        + ", ".join(f"{name} {row['workers_seen']}" for name, row in r["stages"].items())
    )
    print(
        f"disk beside the world: label cache {r['cache_disk_bytes'] / gb:.2f} GB, chips output "
        f"{r['chips_out_extra_disk_bytes'] / gb:.2f} GB (hard links to the world count 0), DVC cache "
        f"{dvc_['cache_extra_disk_bytes'] / gb:.2f} GB (cache.type {dvc_['cache_type']})"
    )
    f = r["footprint"]
    parts = ", ".join(f"{name} {size / gb:.2f}" for name, size in f["parts_disk_bytes"].items())
    print(
        f"footprint of the run (each inode once): {f['disk_bytes'] / gb:.2f} GB = {parts} GB; against the imagery "
        f"{f['imagery_disk_bytes'] / gb:.2f} GB: {f['disk_ratio']:.3f}x (target <= {TARGET_DISK_RATIO}x)"
    )
    print(f"dvc commit demo validate chips (one-off, records the lock): {dvc_['commit_s']:.1f} s")
    print(
        f"dvc status demo validate chips, nothing changed: median {dvc_['status_median_s']:.2f} s of "
        f"{len(dvc_['status_s'])} (target < {TARGET_STATUS_S:.0f} s): {dvc_['status_output']!r}"
    )
    listed = len(dvc_["status_all_stages_listed"])
    print(
        f"dvc status (whole project): median {dvc_['status_all_median_s']:.2f} s (lists the {listed} stages never run)"
    )
    met = ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in r["targets"].items())
    print(f"targets: {met} (ratio: against the copy's fastest run); largest process {r['rss_max_mb']:.0f} MB")
    if r["machine_speed"]["after"]:
        print(f"after: {r['machine_speed']['after']}")


if __name__ == "__main__":
    main()
