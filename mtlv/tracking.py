"""MLflow tracking: store checks before any training, race-safe experiments, parent/child runs.

Default store: SQLite under the output folder (MLflow's file store is deprecated). Parallel jobs
share it, so the URI carries a generous SQLite busy timeout and writes are retried on a lock.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import posixpath
import re
import time
from pathlib import Path
from typing import Any, Callable

from mtlv.errors import TrackingError

log = logging.getLogger(__name__)
SQLITE_TIMEOUT_S = 120


# MLflow key rules (metric, param and tag names): alphanumerics, `_ - . /` and space, at most 250
# characters, and no path tricks ("a//b", "..", a leading "/"). Lightning's MLflow logger also strips
# `:`, so it is left out. Label names such as "Effusion, Malignant" or "Cardiomegaly?" break these.
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")
_MAX_KEY = 250


def _tag(original: str) -> str:
    return hashlib.sha256(original.encode("utf-8")).hexdigest()[:8]


def label_key(name: str) -> str:
    """A label name as one segment of an MLflow key (`test/f1/<segment>`).

    Unsafe characters become `_` (`/` stays, as in `spine/degenerative`, unless it makes a path
    trick such as `a//b`); a name that had to change gets a hash of the real name
    appended, so two labels never share a key (`a(b)` -> `a_b_-<hash>`, while `a_b_` stays itself).
    The real names stay in the run's `label_keys.json` artifact, metrics.json and the `group.*` params.
    """
    name = str(name)
    safe = _UNSAFE.sub("_", name)
    if any(not part.strip(". ") for part in safe.split("/")):  # "a//b", "..", "/a": path tricks
        safe = safe.replace("/", "_")
    if safe != name or not safe.strip(". ") or len(safe) > 100:
        safe = f"{safe[:90]}-{_tag(name)}"
    return safe


def safe_key(key: str) -> str:
    """Any metric/param key made valid for MLflow; keys that are valid already pass unchanged."""
    key = str(key)
    safe = _UNSAFE.sub("_", key)
    norm = posixpath.normpath(safe) if safe else safe
    if norm != safe or safe in ("", ".") or safe.startswith(("/", "..")):
        safe = safe.replace("/", "_")
    if safe != key or len(safe) > _MAX_KEY:
        safe = f"{safe[:_MAX_KEY - 9]}-{_tag(key)}"
    return safe


def safe_keys(values: dict[str, Any], what: str = "metric") -> dict[str, Any]:
    """`values` with every key made valid; two keys that would become one are an error, never merged."""
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, value in values.items():
        safe = safe_key(key)
        if safe in origin and origin[safe] != key:
            raise TrackingError(f"MLflow {what} names {origin[safe]!r} and {key!r} both become {safe!r}; "
                                "rename one of them")
        out[safe], origin[safe] = value, key
    return out


def label_keys(names: list[str]) -> dict[str, str]:
    """real label name -> its MLflow key segment (logged as an artifact beside the metrics)."""
    mapping = {str(n): label_key(n) for n in names}
    if len(set(mapping.values())) != len(mapping):
        raise TrackingError(f"label names {list(mapping)} do not map to distinct MLflow keys")
    return mapping


# SQLAlchemy's default SQLite driver, named: the same store as `sqlite://`, for paths that must be encoded.
ENCODED_SQLITE = "sqlite+pysqlite"


def sqlite_uri(path: str | Path) -> str:
    """The URI of the SQLite store file `path`, which SQLAlchemy (and so MLflow) reads back as that very file.

    A URL's path is percent-decoded and ends at `?`: `sqlite:////data/out%41?x/mlflow.db` is the file
    /data/outA. So a path with `%` or `?` is percent-encoded, under the driver's explicit name, since MLflow
    also makes the folder of whatever text follows `sqlite:///` (here a stray `out%2541%3Fx`). Other paths
    keep the plain `sqlite:///<path>` that MLflow's documentation shows."""
    from urllib.parse import quote

    text = str(path)
    if "%" not in text and "?" not in text:
        return f"sqlite:///{text}"
    return f"{ENCODED_SQLITE}:///{quote(text, safe='/')}"


def _is_sqlite(uri: str) -> bool:
    return uri.split(":", 1)[0].split("+", 1)[0].lower() == "sqlite"


def with_busy_timeout(uri: str) -> str:
    """SQLite waits for a lock instead of failing at once with 'database is locked'."""
    if _is_sqlite(uri) and "timeout=" not in uri:
        return f"{uri}{'&' if '?' in uri else '?'}timeout={SQLITE_TIMEOUT_S}"
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a SQLite store URI, as SQLAlchemy reads it (None: not a SQLite file store)."""
    if not _is_sqlite(uri):
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        database = make_url(uri).database
    except ArgumentError as err:
        raise TrackingError(f"{uri} is not a valid SQLite URI ({err}); write it as "
                            "sqlite:////absolute/path/mlflow.db") from err
    return Path(database) if database and database != ":memory:" else None


def _sqlite_problem(path: Path) -> str:
    """Why the SQLite file `path` cannot be opened, in the file system's words (SQLite only says "unable to
    open database file")."""
    parent = path.parent
    if path.is_dir():
        return f"{path} is a folder, not a database file"
    if not parent.exists():
        return f"the folder {parent} does not exist"
    if not parent.is_dir():
        return f"{parent} is not a folder"
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        return f"the folder {parent} is not writable"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"no permission to read and write {path}"
    return ""


def open_sqlite(uri: str, path: Path, create: bool) -> None:
    """Open the store's file with sqlite3 before MLflow does, and fail at once, with the cause, on an error that
    waiting cannot fix: MLflow retries a store it cannot open for about two minutes, then reports it without
    the reason. A lock held by another process is not such an error. `create`: a missing file may be made."""
    import sqlite3

    problem = _sqlite_problem(path)
    if not problem:
        try:
            connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode={'rwc' if create else 'ro'}", uri=True,
                                         timeout=SQLITE_TIMEOUT_S)
            try:
                connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                connection.close()
            return
        except sqlite3.Error as err:
            if any(word in str(err).lower() for word in ("locked", "busy")):
                return
            problem = str(err)
    raise TrackingError(f"MLflow store {uri} cannot be opened: {problem}. Point the tracking URI at a SQLite file "
                        "in a writable folder (the default is <paths.output_dir>/mlflow.db), or run without "
                        "tracking (logger=none)")


def retry_locked(fn: Callable, attempts: int = 8) -> Callable:
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        for attempt in range(attempts):
            try:
                return fn(*args, **kwargs)
            except Exception as err:  # MLflow wraps sqlite3.OperationalError in MlflowException
                if "locked" not in str(err).lower() or attempt == attempts - 1:
                    raise
                time.sleep(0.2 * 2 ** attempt)
    return wrapped


_READY_STORES: set[str] = set()


def client(uri: str):
    from mlflow.tracking import MlflowClient

    if is_server(uri):
        bound_http_requests()
    path = sqlite_path(uri)
    if path is None or str(path) in _READY_STORES or _store_ready(path):
        _READY_STORES.add(str(path))
        return MlflowClient(tracking_uri=with_busy_timeout(uri))
    # MLflow creates and migrates a new SQLite store's tables when a process first opens it;
    # processes doing that at once fail ("duplicate column name", "table already exists"). So the
    # first opening happens under a lock, and a marker tells later processes the store is complete.
    from filelock import FileLock

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        existing = next(folder for folder in path.parents if folder.exists())
        cause = f"{existing} is a file, not a folder" if not existing.is_dir() else f"{path.parent}: {err.strerror}"
        raise TrackingError(f"MLflow store {uri} cannot be made: {cause}. Point the tracking URI at a SQLite file in a "
                            "writable folder, or run without tracking (logger=none)") from err
    new = not path.exists()  # before open_sqlite, which makes the file
    open_sqlite(uri, path, create=True)
    with FileLock(f"{path}.init.lock", timeout=600):
        created = not _store_ready(path)  # else another process completed it while we waited
        if created:
            mlflow_client = retry_locked(MlflowClient)(tracking_uri=with_busy_timeout(uri))
            from mtlv.io import honour_umask, write_text

            if new:  # SQLite creates it 0644 whatever the umask: with umask 002 the group could not log to it
                honour_umask(path)
            write_text(f"{path}.ready", str(path.stat().st_ino))
    _READY_STORES.add(str(path))
    return mlflow_client if created else MlflowClient(tracking_uri=with_busy_timeout(uri))


def read_client(uri: str, key: str = "tracking_uri"):
    """A client of an existing store, for the commands that only read one (report, predict, aggregate). MLflow
    would create a new, empty store where the URI points, so that a mistyped path read as "no runs yet": a
    store that does not exist is an error naming `key` and the path, and nothing is created."""
    from mlflow.tracking import MlflowClient

    if is_server(uri):
        bound_http_requests()
    path = sqlite_path(uri)
    fix = (f"set {key}=sqlite:///<folder you trained into>/mlflow.db, or paths.output_dir=<that folder> "
           "(MTLV_OUTPUT_DIR)")
    if path is not None and str(path) not in _READY_STORES:
        if not path.exists():
            raise TrackingError(f"{key}={uri}: there is no MLflow store at {path} (nothing was created); {fix}")
        open_sqlite(uri, path, create=False)
        if not _has_tables(path):
            raise TrackingError(f"{key}={uri}: {path} is not an MLflow store (it has no MLflow tables); {fix}")
    elif path is None and (local := _local_path(uri)) is not None:
        if (local / "mlflow.db").is_file():
            raise TrackingError(f"{key}={uri} is a folder; the MLflow store in it is {key}="
                                f"{sqlite_uri(local.absolute() / 'mlflow.db')}")
        if not local.is_dir() or not any(local.glob("*/meta.yaml")):  # an MLflow file store: experiment folders
            raise TrackingError(f"{key}={uri}: there is no MLflow store at {local} (nothing was created); {fix}")
    return MlflowClient(tracking_uri=with_busy_timeout(uri))


def _has_tables(path: Path) -> bool:
    import sqlite3

    connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=SQLITE_TIMEOUT_S)
    try:
        return connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'experiments'"
                                  ).fetchone() is not None
    finally:
        connection.close()


def _local_path(uri: str) -> Path | None:
    """The folder of a file-store URI (file: or a path), None for anything else (a server, a database, or a
    bare word such as MLflow's `databricks`)."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path))
    is_path = parsed.scheme == "" and (os.sep in uri or uri.startswith(("~", ".")))
    return Path(uri).expanduser() if is_path else None


def _store_ready(path: Path) -> bool:
    """The store at `path` was created completely (its marker names this very file)."""
    try:
        return Path(f"{path}.ready").read_text(encoding="utf-8").strip() == str(path.stat().st_ino)
    except OSError:
        return False


def is_server(uri: str) -> bool:
    """`uri` is an MLflow tracking server (http or https), not a local store."""
    return uri.lower().startswith(("http://", "https://"))


# MLflow's own client retries a failed request 7 times with a backoff factor of 2 and waits 120 s for each
# answer: a server that went away mid-sweep kept a job in silent retries for minutes (8 measured), and a
# SIGTERM waited for them. These bounds (about 7 s of retries for a refused connection, at most 30 s per
# unanswered request) still ride out a restart of the server; a value the user set in the environment wins.
HTTP_BOUNDS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def bound_http_requests() -> None:
    """Set MTLV's bounds on MLflow's HTTP retries and timeout where the environment does not set them (MLflow
    reads them at each request; jobs started from here inherit them), and keep urllib3's line per retry of an
    MLflow request out of the log: a server that stays away is one line of MTLV's, naming it."""
    for name, value in HTTP_BOUNDS.items():
        os.environ.setdefault(name, value)
    retries = logging.getLogger("urllib3.connectionpool")
    if _no_mlflow_retry_line not in retries.filters:
        retries.addFilter(_no_mlflow_retry_line)


def _no_mlflow_retry_line(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not (message.startswith("Retrying (") and "/mlflow" in message)


def server_gone(uri: str, err: BaseException) -> bool:
    """`err` (from an MLflow call on `uri`) says the tracking server cannot be reached (any more)."""
    if not is_server(uri):
        return False
    text = str(err)
    return any(sign in text for sign in ("Max retries exceeded", "Connection refused", "ConnectionError",
                                         "Read timed out", "ConnectTimeout", "RemoteDisconnected",
                                         "Connection aborted", "Failed to establish a new connection"))


def _outage(err: BaseException) -> str:
    text = str(err)
    if "refused" in text or "Failed to establish" in text:
        return "connection refused"
    return "no answer in time" if "timed out" in text.lower() or "Timeout" in text else "connection lost"


def outage_error(uri: str, err: BaseException, what: str, folder: Path, cell: Path, whose: str = "job"
                 ) -> TrackingError:
    """The one line for a tracking server that stopped answering (`server_gone`) while `what`: it names the
    server and says that the files in `folder` (of a job, or of a cell: `whose`) are kept for
    `python -m mtlv.track`, which takes the cell folder `cell`."""
    import shlex

    command = f"python -m mtlv.track {shlex.quote(str(cell))} --tracking-uri {shlex.quote(uri)}"
    return TrackingError(f"MLflow tracking server {uri} stopped answering while {what} ({_outage(err)}); the "
                         f"{whose}'s files are kept in {folder}: record them with `{command}` once the server is back")


def check_store(uri: str, timeout_s: float = 10.0) -> None:
    """Fail before training when the store cannot be reached, instead of after hours of work."""
    if is_server(uri):
        bound_http_requests()
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as resp:  # noqa: S310
                resp.read()
        except Exception as err:
            raise TrackingError(
                f"MLflow tracking server {uri} is unreachable ({err}). Start it, fix tracking.uri, "
                f"set tracking.fallback_uri=sqlite:///<path>/mlflow.db to fall back to a local store, "
                f"or run without tracking (logger=none)."
            ) from err
    try:
        retry_locked(client(uri).search_experiments)(max_results=1)
    except TrackingError:
        raise
    except Exception as err:
        raise TrackingError(f"MLflow tracking store {uri} cannot be used: {err}") from err


def resolve_uri(uri: str, fallback: str | None) -> str:
    try:
        check_store(uri)
        return uri
    except TrackingError:
        if not fallback:
            raise
        log.warning("tracking store %s unreachable; logging to the fallback store %s instead", uri, fallback)
        check_store(fallback)
        return fallback


def experiment_id(uri: str, name: str, artifact_location: str | None = None) -> str:
    """Get or create an experiment; two processes creating it at once both end with its id.

    `artifact_location` (a folder on this machine) is used for a local store only. A tracking server decides
    where artifacts go (`mlflow-artifacts:` with `--serve-artifacts`): a client-side `file://` location would
    put every run's artifacts of the experiment on the disk of whichever machine created it, under that
    job's output folder, and leave the server's artifact store empty."""
    mlflow_client = client(uri)
    found = retry_locked(mlflow_client.get_experiment_by_name)(name)
    if found is not None:
        if is_server(uri) and found.artifact_location.startswith("file:"):
            log.warning("MLflow experiment %r on the server %s keeps its artifacts at %s, a path on the machine "
                        "that created it (an earlier MTLV did that): they do not go through the server. A new "
                        "experiment name (logger.experiment_name=...) gets the server's artifact store", name, uri,
                        found.artifact_location)
        return found.experiment_id
    location = Path(artifact_location).resolve().as_uri() if artifact_location and not is_server(uri) else None
    try:
        return retry_locked(mlflow_client.create_experiment)(name, artifact_location=location)
    except Exception:
        found = retry_locked(mlflow_client.get_experiment_by_name)(name)
        if found is None:
            raise
        return found.experiment_id


def create_run(uri: str, experiment: str, run_name: str, tags: dict[str, str] | None = None,
               start_time: int | None = None) -> str:
    """`start_time`: milliseconds since the epoch (None: now), e.g. a run recorded after its job finished."""
    run = retry_locked(client(uri).create_run)(experiment, run_name=run_name, tags=tags or {}, start_time=start_time)
    return run.info.run_id


def log_to_run(uri: str, run_id: str, params: dict[str, Any] | None = None, metrics: dict[str, float] | None = None,
               artifacts: list[str | Path] | None = None, tags: dict[str, str] | None = None,
               artifact_dir: str | None = None) -> None:
    from mlflow.entities import Metric, Param, RunTag

    mlflow_client = client(uri)
    now = int(time.time() * 1000)
    params = [Param(k, v) for k, v in _new_params(mlflow_client, run_id, params or {}).items()]
    metric_list = [Metric(k, float(v), now, 0) for k, v in safe_keys(metrics or {}).items()]
    tag_list = [RunTag(k, str(v)) for k, v in safe_keys(tags or {}, "tag").items()]
    for start in range(0, max(len(params), len(metric_list), len(tag_list)), 100):
        batch = params[start:start + 100]
        try:
            retry_locked(mlflow_client.log_batch)(run_id, metrics=metric_list[start:start + 100], params=batch,
                                                  tags=tag_list[start:start + 100])
        except Exception as err:  # noqa: BLE001 - MlflowException; only a param clash is survivable
            if not batch or PARAM_CLASH not in str(err):
                raise
            # another process logged the run's params in between: the result is kept, the clash is a warning
            log.warning("MLflow run %s: some params were logged meanwhile with other values; kept the logged "
                        "ones (%s)", run_id, str(err)[:300])
            retry_locked(mlflow_client.log_batch)(run_id, metrics=metric_list[start:start + 100],
                                                  tags=tag_list[start:start + 100])
    for path in artifacts or []:
        if Path(path).exists():
            retry_locked(mlflow_client.log_artifact)(run_id, str(path), artifact_dir)


PARAM_CLASH = "Changing param values is not allowed"


def _new_params(mlflow_client, run_id: str, params: dict[str, Any]) -> dict[str, str]:
    """The params the run does not have yet (MLflow keys, values as MLflow stores them). A param the run already
    has with another value (a rerun whose options changed under one job key) cannot be changed in MLflow and
    would fail the whole log call after training: the logged value is kept and one warning names them."""
    wanted = {k: str(v)[:6000] for k, v in safe_keys(params, "param").items()}
    if not wanted:
        return {}
    logged = retry_locked(mlflow_client.get_run)(run_id).data.params
    clashes = [f"{k}: logged {logged[k]!r}, now {v!r}" for k, v in wanted.items() if k in logged and logged[k] != v]
    if clashes:
        log.warning("MLflow run %s already has %d param(s) with other values; the logged values are kept (MLflow "
                    "cannot change them), this result is not affected: %s", run_id, len(clashes),
                    "; ".join(clashes[:5]) + (" ..." if len(clashes) > 5 else ""))
    return {k: v for k, v in wanted.items() if k not in logged}


def end_orphans(uri: str, experiment: str, tags: dict[str, str], keep: str | None = None) -> list[str]:
    """Mark KILLED the RUNNING runs with all of `tags` other than `keep`: runs a killed process left
    behind between MLflow creating them and MTLV recording their id (so no rerun would finish them)."""
    mlflow_client = client(uri)
    runs = retry_locked(mlflow_client.search_runs)([experiment], filter_string="attributes.status = 'RUNNING'",
                                                   max_results=1000)
    orphans = [r.info.run_id for r in runs if r.info.run_id != keep
               and all(r.data.tags.get(key) == value for key, value in tags.items())]
    for run_id in orphans:
        retry_locked(mlflow_client.set_terminated)(run_id, "KILLED")
        log.warning("MLflow run %s was left RUNNING by an interrupted earlier attempt: marked KILLED", run_id)
    return orphans


def end_run(uri: str, run_id: str, status: str = "FINISHED", end_time: int | None = None) -> None:
    retry_locked(client(uri).set_terminated)(run_id, status, end_time=end_time)


def same_store(a: str, b: str) -> bool:
    """Two tracking URIs name the same store (SQLite: the same file, however the path is spelled)."""
    pa, pb = sqlite_path(a), sqlite_path(b)
    if pa is not None and pb is not None:
        return pa.resolve() == pb.resolve()
    return a.rstrip("/") == b.rstrip("/")


def existing_run(uri: str, run_id: str):
    """The run `run_id` of the store `uri`, or None when the store has no such (undeleted) run."""
    try:
        run = retry_locked(client(uri).get_run)(run_id)
    except Exception:  # noqa: BLE001  (MLflow raises MlflowException for an unknown id)
        return None
    return None if run.info.lifecycle_stage == "deleted" else run


def ui_command(uri: str) -> str:
    """How to look at the store's runs: a tracking server serves its own UI at its URL (`mlflow ui` cannot read
    a server as a backend store); a local store needs `mlflow ui`, bound to localhost (no authentication)."""
    import shlex

    if is_server(uri):
        return f"open {uri.rstrip('/')} in a browser"
    return f"mlflow ui --backend-store-uri {shlex.quote(uri)} --host 127.0.0.1 --port 5000"
