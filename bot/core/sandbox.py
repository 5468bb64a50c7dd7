"""The sandbox every command that runs code from a series goes through (bubblewrap).

make reads the patched Makefiles and Kconfig, scripts/config is the patched
tree's, checkpatch and kernel-doc judge untrusted input: all of them run here,
never on the host as it is. What a sandboxed command gets:

- no network (a network namespace of its own, loopback only, nothing listening);
- the system directories and the worktree read-only, the paths it is given `rw`
  writable (its O= build dir), a private size-bounded /tmp, an empty $HOME;
- an environment of allowed variables only (no LOREBOT_*, no credentials);
- limits on CPU time, address space, processes and file size (setrlimit, via
  prlimit);
- never root: when lorebot runs as root, the command drops to `uid` with no
  capabilities and no_new_privs; otherwise it keeps lorebot's own (dedicated,
  unprivileged) uid in a user namespace;
- it dies with lorebot: bwrap --die-with-parent, and the wrapper above it gets
  SIGKILL when its parent (the thread that started it) goes, so a `kill -9` of the
  service leaves no make running in a build dir (the build check also holds a
  lock on each build dir it uses, which dies with the process).

The argv is built by a pure function (`Sandbox.wrap`); `probe` tells once per
process whether bubblewrap can run here at all.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.core.runner import CommandResult, Runner

# read-only system directories and the few /etc files compilers, perl and python need;
# not /etc as a whole (a config file with credentials may live there), not /home, /root
_SYSTEM = ("/usr", "/opt")
_MERGED = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_PATHS = tuple(Path(p) for p in (*_SYSTEM, *_MERGED, "/etc", "/proc", "/dev"))
_ETC = (
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/perl",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/ccache.conf",
)
HOME = "/tmp"  # empty and private: the sandbox's own /tmp
# the variables a sandboxed command may see besides those its caller sets
_PASSED = ("PATH",)
HOW_TO_FIX = (
    "install bubblewrap (apt-get install bubblewrap) and allow user namespaces "
    "(sysctl user.max_user_namespaces > 0); or set [sandbox] allow_unsandboxed = true "
    "to build without a sandbox"
)


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 3600
    memory_bytes: int = 8 * 2**30
    processes: int = 4096
    file_bytes: int = 4 * 2**30
    tmp_bytes: int = 2**30


class SandboxUnavailable(Exception):
    """bubblewrap cannot run here and running unsandboxed is not allowed."""


@dataclass(frozen=True)
class Sandbox:
    """How to run an untrusted command; `enabled=False` is the explicit opt-out."""

    bwrap: str = "bwrap"
    uid: int = 65534  # the uid to drop to when lorebot runs as root
    limits: Limits = Limits()
    enabled: bool = True
    as_root: bool = False  # lorebot runs as root: drop to `uid` inside

    @classmethod
    def here(
        cls, *, bwrap: str, uid: int, limits: Limits, allow_unsandboxed: bool, runner: Runner
    ) -> Sandbox:
        """The sandbox for this machine: bubblewrap if it works, else the explicit opt-out.

        Raises SandboxUnavailable (with how to fix it) when bubblewrap cannot run
        and `allow_unsandboxed` is false.
        """
        box = cls(bwrap=bwrap, uid=uid, limits=limits, as_root=os.geteuid() == 0)
        reason = box.probe(runner)
        if not reason:
            return box
        if not allow_unsandboxed:
            raise SandboxUnavailable(f"{reason}; {HOW_TO_FIX}")
        return cls(bwrap=bwrap, uid=uid, limits=limits, enabled=False, as_root=box.as_root)

    def probe(self, runner: Runner) -> str:
        """Why bubblewrap cannot run a command here ("" when it can); a success is kept for
        the process, a failure is tried again (the operator may have fixed it)."""
        key = (self.bwrap, self.uid, self.as_root)
        with _PROBE_LOCK:
            if _PROBED.get(key) != "":
                if not shutil.which(self.bwrap):
                    _PROBED[key] = f"bubblewrap ({self.bwrap}) not found"
                else:
                    r = runner.run(
                        self.wrap(["true"], cwd=Path("/")),
                        env=_host_path(),
                        inherit_env=False,
                        timeout=60,
                        name="sandbox-probe",
                    )
                    said = (r.stderr or r.stdout).strip().splitlines()
                    why = said[-1] if said else f"exit {r.returncode}"
                    _PROBED[key] = "" if r.ok else f"bubblewrap cannot make a sandbox: {why}"
            return _PROBED[key]

    def wrap(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        ro: Iterable[Path] = (),
        rw: Iterable[Path] = (),
        env: Mapping[str, str] | None = None,
        devices: Sequence[Path] = (),
        groups: Sequence[int] = (),
    ) -> list[str]:
        """The argv that runs `argv` in the sandbox (pure: reads only what exists on disk).

        `devices` are host device nodes bound in (/dev/kvm for a KUnit kernel under
        QEMU); `groups` the supplementary groups kept when dropping from root (the
        device's group), none otherwise."""
        inner = [
            "prlimit",
            f"--cpu={self.limits.cpu_seconds}",
            f"--as={self.limits.memory_bytes}",
            f"--nproc={self.limits.processes}",
            f"--fsize={self.limits.file_bytes}",
            "--core=0",
            "--",
            *argv,
        ]
        # SIGKILL when the thread that started it dies (the service killed): what it
        # started goes too (bwrap --die-with-parent below)
        outer = ["setpriv", "--pdeathsig", "KILL", "--"]
        if not self.enabled:  # the explicit opt-out: the same environment and limits
            return [*outer, "env", "-i", *_env_args(env, cwd), *inner]
        box = [
            self.bwrap,
            "--die-with-parent",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
            *([] if self.as_root else ["--unshare-user"]),
            "--hostname",
            "sandbox",
            *_system_binds(),
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--perms",
            "1777",
            "--size",
            str(self.limits.tmp_bytes),
            "--tmpfs",
            "/tmp",
        ]
        for d in devices:
            box += ["--dev-bind", str(d), str(d)]
        mounted = list(_SYSTEM_PATHS)
        binds: list[tuple[str, Path]] = []
        for d in _path_dirs():
            if not any(_under(d, m) for m in mounted):
                binds.append(("--ro-bind-try", d))
                mounted.append(d)
        binds += [("--ro-bind", Path(p)) for p in ro]
        binds += [("--bind", Path(p)) for p in rw]
        # bwrap gives the directories it makes on the way the modes of the host's
        # (/root is 0700): make them traversable first, empty, in the sandbox's own root
        made: set[Path] = {Path("/"), Path("/tmp")}
        for _, p in binds:
            for parent in reversed(p.parents):
                if parent not in made and not any(_under(parent, m) for m in _SYSTEM_PATHS):
                    box += ["--perms", "0755", "--dir", str(parent)]
                    made.add(parent)
        for flag, p in binds:
            box += [flag, str(p), str(p)]
        box += ["--chdir", str(cwd), "--clearenv"]
        for k, v in _env(env).items():
            box += ["--setenv", k, v]
        if self.as_root:
            box += ["--cap-add", "CAP_SETUID,CAP_SETGID"]
        return [*outer, *box, "--", *self._drop(groups), *inner]

    def _drop(self, groups: Sequence[int] = ()) -> list[str]:
        """As root: become `uid`, no groups (but `groups`), no capabilities, no setuid gains."""
        if not self.as_root:
            return []
        return [
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.uid}",
            f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups",
            "--no-new-privs",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ]

    def run(
        self,
        runner: Runner,
        argv: Sequence[str],
        *,
        cwd: Path,
        ro: Iterable[Path] = (),
        rw: Sequence[Path] = (),
        env: Mapping[str, str] | None = None,
        timeout: float,
        name: str,
        devices: Sequence[Path] = (),
        groups: Sequence[int] = (),
    ) -> CommandResult:
        """Run `argv` sandboxed; the `rw` paths are made writable for the sandbox's uid."""
        for p in rw:
            self.own(p)
        return runner.run(
            self.wrap(argv, cwd=cwd, ro=ro, rw=rw, env=env, devices=devices, groups=groups),
            cwd=cwd,
            env=_host_path(),
            inherit_env=False,
            timeout=timeout,
            name=name,
        )

    def own(self, path: Path) -> None:
        """Make `path` (a directory lorebot made) the sandbox uid's: recursively the first
        time (a cache from before the sandbox), then only when its top changed owner."""
        if not self.as_root:
            return
        path.mkdir(parents=True, exist_ok=True)
        mark = path / f".lorebot-owned-{self.uid}"
        if not self.enabled:  # root writes here now: the next sandboxed run walks it again
            mark.unlink(missing_ok=True)
            return
        if path.stat().st_uid == self.uid and mark.exists():
            return
        for root, dirs, files in os.walk(path):
            for n in (*dirs, *files):
                os.lchown(os.path.join(root, n), self.uid, self.uid)
        os.lchown(path, self.uid, self.uid)
        mark.touch()

    def give(self, path: Path) -> None:
        """One file lorebot wrote for the sandbox to change (a .config)."""
        if self.enabled and self.as_root:
            os.lchown(path, self.uid, self.uid)


_PROBED: dict[tuple[str, int, bool], str] = {}
_PROBE_LOCK = threading.Lock()


def _env(env: Mapping[str, str] | None) -> dict[str, str]:
    base = {k: os.environ[k] for k in _PASSED if k in os.environ}
    base.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return {**base, "HOME": HOME, "TMPDIR": "/tmp", "LC_ALL": "C", **(env or {})}


def _env_args(env: Mapping[str, str] | None, cwd: Path) -> list[str]:
    """`env -i` arguments: the same allow-list when running without a sandbox."""
    values = {**_env(env), "HOME": str(cwd)}
    return [f"{k}={v}" for k, v in values.items()]


def _host_path() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")}


def _system_binds() -> list[str]:
    out: list[str] = []
    for d in _SYSTEM:
        if os.path.isdir(d):
            out += ["--ro-bind", d, d]
    for d in _MERGED:  # merged /usr: /bin -> usr/bin is a symlink, kept as one
        if os.path.islink(d):
            out += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            out += ["--ro-bind", d, d]
    out += ["--perms", "0755", "--dir", "/etc"]  # made 0700 otherwise
    for f in _ETC:
        out += ["--ro-bind-try", f, f]
    return out


def _path_dirs() -> list[Path]:
    """Directories on PATH that hold programs (their name ends in "bin"), to mount read-only."""
    out = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = Path(d)
        if p.is_absolute() and p.name.endswith("bin") and os.path.isdir(p):
            out.append(p)
    return out


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
