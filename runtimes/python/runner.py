# edgewhisk Python action runner (python 3, standard library only).
#
# Pipe protocol (docs/design/001-runner-protocol.md): one JSON request per line on stdin,
# one JSON reply per line on file descriptor 3. The process' own stdout/stderr belong to the
# action: they are its logs. After every run and after a failed init the runner writes the
# activation-end sentinel on both streams, unless the action printed nothing since the last
# sentinels: then it writes none and marks the reply `"quiet": true`. Statuses and bodies
# follow OpenWhisk's Python runtime (the actionloop proxy and its launcher).
import ctypes
import importlib.util
import io
import json
import os
import sys
import threading
import traceback

# OpenWhisk's activation-end marker. The invoker sends this instance's sentinel line (the
# marker, a space and a nonce) with the init request and accepts only that one, so an action
# printing the bare marker cannot end its log early.
MARKER = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
CONCURRENT = os.environ.pop("__OW_ALLOW_CONCURRENT", "") == "true"

_out = os.fdopen(3, "wb", buffering=0)
_out_lock = threading.Lock()
_state = {"action": None, "init_attempted": False, "sentinel": MARKER, "printed": False}


class _Watched(io.FileIO):
    """fd 1 or 2 under the action's `sys.stdout`/`sys.stderr`: notes that they wrote.

    Starting a child process (which may inherit fds 1 and 2) counts as writing too (see
    `_noting`). Output written to the fds directly (`os.write(1, …)`) is not seen: it goes into
    the log of the next activation after which sentinels are written.
    """

    def write(self, data):
        _state["printed"] = True
        return super().write(data)


def _noting(module, name):
    """Wraps `module.name` (a way to start a process) so that calling it counts as output."""
    fn = getattr(module, name, None)
    if fn is None:
        return

    def started(*args, **kwargs):
        _state["printed"] = True
        return fn(*args, **kwargs)

    setattr(module, name, started)


try:
    import _posixsubprocess  # what subprocess starts its children with

    _noting(_posixsubprocess, "fork_exec")
except ImportError:
    pass
for _name in ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp"):
    _noting(os, _name)


def _watch(stream, fd):
    raw = _Watched(fd, "wb", closefd=False)
    return io.TextIOWrapper(
        io.BufferedWriter(raw),
        encoding=stream.encoding,
        errors=stream.errors,
        line_buffering=stream.line_buffering,
    )


sys.stdout = sys.__stdout__ = _watch(sys.stdout, 1)
sys.stderr = sys.__stderr__ = _watch(sys.stderr, 2)


def reply(req_id, status, body, quiet=False):
    # The body goes last, where the invoker looks for it in an oversized line.
    def envelope(status, body):
        head = {"id": req_id, "status": status}
        if quiet:
            head["quiet"] = True
        head["body"] = body
        return head

    try:
        # NaN/Infinity are not JSON: refuse them here instead of sending an unreadable reply.
        text = json.dumps(envelope(status, body), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        text = json.dumps(
            envelope(502, {"error": "The action did not return a dictionary or array."})
        )
    data = (text + "\n").encode("utf-8", "replace")
    with _out_lock:
        view = memoryview(data)
        while view:
            written = _out.write(view)
            view = view[written:]


def markers():
    """Writes the sentinels, unless nothing was printed since the last ones; False then."""
    # Flush what the action printed first, so the sentinel is the last line of the run.
    sys.stdout.flush()
    sys.stderr.flush()
    if not _state["printed"]:
        return False
    sentinel = _state["sentinel"] + "\n"
    sys.stdout.write(sentinel)
    sys.stdout.flush()
    sys.stderr.write(sentinel)
    sys.stderr.flush()
    _state["printed"] = False
    return True


def take_sentinel(req):
    """Takes the sentinel line of the (first) init request, if it is a well-formed one."""
    sentinel = req.get("log_sentinel")
    if isinstance(sentinel, str) and sentinel.startswith(MARKER) and "\n" not in sentinel \
            and "\r" not in sentinel:
        _state["sentinel"] = sentinel


def load_file(path, main):
    spec = importlib.util.spec_from_file_location("action_main", path)
    if spec is None or spec.loader is None:
        raise ImportError("cannot load " + path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["action_main"] = module
    spec.loader.exec_module(module)
    fn = getattr(module, main, None)
    if not callable(fn):
        raise AttributeError("module has no callable '%s'" % main)
    return fn


def init(req):
    value = req.get("value") or {}
    if _state["init_attempted"]:
        reply(req.get("id"), 403, {"error": "Cannot initialize the action more than once."})
        return
    take_sentinel(req)
    main = value.get("main") or "main"
    code = value.get("code")
    code_dir = value.get("code_dir")
    if not code and not code_dir:
        quiet = not markers()
        reply(req.get("id"), 403, {"error": "Missing main/no code to execute."}, quiet)
        return
    _state["init_attempted"] = True
    try:
        for key, val in (value.get("env") or {}).items():
            if isinstance(val, (dict, list)):
                val = json.dumps(val, separators=(",", ":"))
            elif val is None:
                val = ""
            elif isinstance(val, bool):
                val = "true" if val else "false"
            os.environ[key] = str(val)
        if code_dir:
            path = os.path.join(code_dir, "__main__.py")
            if not os.path.isfile(path):
                raise FileNotFoundError("Zip file does not include __main__.py")
            os.chdir(code_dir)
            sys.path.insert(0, code_dir)
        else:
            path = os.path.join(os.getcwd(), "action_%d.py" % os.getpid())
            with open(path, "w", encoding="utf-8") as f:
                f.write(code)
        _state["action"] = load_file(path, main)
        reply(req.get("id"), 200, {"ok": True})
    except BaseException as ex:  # noqa: BLE001 - any failure of user code is an init failure
        traceback.print_exc(file=sys.stderr)
        quiet = not markers()
        reply(req.get("id"), 502, {"error": "Initialization has failed due to: %s" % ex}, quiet)


class _RunEnv:
    """The per-run `__OW_*` variables, set without leaking.

    `os.environ[k] = v` calls setenv(3), and glibc keeps every value ever set: with a fresh
    activation id, deadline and transaction id on every run, a warm instance grew by ~350
    bytes per activation without bound. Here each variable is a buffer of ours handed to
    putenv(3), which glibc does not copy. A buffer environ no longer points to (replaced or
    unset) is kept for one more run before it is freed, so a thread of a concurrent action that
    was reading the environment in C at that moment never reads freed memory. `os.environ`'s
    own mapping is kept in step, so the action and the processes it starts see the same values
    as before.
    """

    def __init__(self):
        self._owned = {}  # name -> the buffer environ points to
        self._retired = []  # buffers replaced by the previous run, freed by the next
        try:
            libc = ctypes.CDLL(None)
            self._putenv = libc.putenv
            self._putenv.argtypes = [ctypes.c_char_p]
            self._unsetenv = libc.unsetenv
            self._unsetenv.argtypes = [ctypes.c_char_p]
            self._data = os.environ._data  # noqa: SLF001 - os.environ without its putenv
        except (AttributeError, OSError):
            self._putenv = None

    def replace(self, values):
        """Makes `values` (name -> str) the per-run variables, unsetting the previous ones."""
        if self._putenv is None:
            for name in self._owned:
                os.environ.pop(name, None)
            self._owned = dict.fromkeys(values)
            os.environ.update(values)
            return
        retired = []
        for name in [n for n in self._owned if n not in values]:
            key = os.fsencode(name)
            self._unsetenv(key)
            self._data.pop(key, None)
            retired.append(self._owned.pop(name))
        for name, val in values.items():
            key = os.fsencode(name)
            value = os.fsencode(val)
            if b"\0" in value:
                value = value.replace(b"\0", b"")
            buf = ctypes.create_string_buffer(key + b"=" + value)
            self._putenv(buf)
            old = self._owned.get(name)
            if old is not None:
                retired.append(old)
            self._owned[name] = buf
            self._data[key] = value
        self._retired = retired  # frees the buffers retired by the previous run


_run_env = _RunEnv()


def run(req):
    req_id = req.get("id")
    action = _state["action"]
    if action is None:
        reply(req_id, 403, {"error": "Cannot run the action before it is initialized."})
        return
    _run_env.replace(
        {
            "__OW_" + key.upper(): val
            for key, val in req.items()
            if key not in ("value", "id", "op") and isinstance(val, str)
        }
    )
    payload = req.get("value")
    if payload is None:
        payload = {}
    try:
        res = action(payload)
    except Exception as ex:  # noqa: BLE001 - the launcher turns exceptions into results
        traceback.print_exc(file=sys.stderr)
        res = {"error": str(ex)}
    quiet = not markers()
    if isinstance(res, (dict, list)):
        reply(req_id, 200, res, quiet)
    else:
        reply(req_id, 502, {"error": "The action did not return a dictionary or array."}, quiet)


def handle(line):
    try:
        req = json.loads(line)
    except ValueError:
        reply(None, 500, {"error": "Bad request."})
        return
    if not isinstance(req, dict):
        reply(None, 500, {"error": "Bad request."})
        return
    op = req.get("op")
    if op == "init":
        init(req)
    elif op == "run":
        if CONCURRENT:
            threading.Thread(target=run, args=(req,), daemon=True).start()
        else:
            run(req)
    else:
        reply(req.get("id"), 500, {"error": "Bad request."})


def serve():
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            break
        line = line.strip()
        if line:
            handle(line)
    # The invoker closed stdin: the instance is being removed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    serve()
