"""Settings: one pydantic model, read from TOML, overridden by LOREBOT_* variables.

Unknown keys and bad values stop the program at start with a message naming
the key (see `load_settings`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

DEFAULT_TOML = Path(__file__).with_name("default.toml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsSettings(_Strict):
    state: Path = Path("~/.local/state/lorebot")
    cache: Path = Path("~/.cache/lorebot")

    @field_validator("state", "cache", mode="after")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return Path(os.path.expandvars(str(v))).expanduser()

    @property
    def database_file(self) -> Path:
        return self.state / "lorebot.db"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def outbox(self) -> Path:
        return self.state / "outbox"


class MailPolicySettings(_Strict):
    """What a list's authors get by mail; everything else is on the page and in the JSON."""

    # the checks whose findings are mailed; checkpatch is page-only unless a list asks
    checks: list[str] = ["build", "semantic", "kernel-doc", "runtime"]
    checkpatch_errors: bool = False  # mail checkpatch's ERRORs (never its WARNINGs/CHECKs)
    # past this many patch mails for one series, one summary instead
    max_patch_mails: int = Field(default=5, ge=0)
    summary_max_lines: int = Field(default=40, ge=10)


class ListSettings(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    url: str
    trees: list[str] = []
    address: str = ""  # the list's posting address, used to tell list mail from direct mail
    mail: MailPolicySettings = MailPolicySettings()
    llvm: bool = False  # build this list's series with LLVM=1 (clang) too (build.llvm_second)


class TreeSettings(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    url: str  # any git URL or local path; empty for a tree made by `tree import`
    branches: list[str] = ["master"]
    # where others fetch it (mails' reproduce lines); default: `url` when it is a URL
    public_url: str = ""
    # `lorebot serve` fetches the tree every sync_interval seconds (jittered by a tenth);
    # a failed sync is retried after sync_retry_seconds, doubling, at most sync_interval
    sync_interval: int = Field(default=900, ge=5)
    sync_retry_seconds: int = Field(default=60, ge=1)


class IntakeSettings(_Strict):
    poll_interval: int = Field(default=300, ge=5)  # seconds
    incomplete_timeout: int = Field(default=3600, ge=0)  # seconds an incomplete series waits
    http_timeout: float = Field(default=60.0, gt=0)  # one HTTP read (manifest, threads)
    # bounds checked before any parsing: a mail over max_message_bytes is not read past
    # its headers; a series with a patch over max_patch_bytes, or more than max_patches
    # patches, is skipped with the reason before b4 makes `git am` mail of it (its cost
    # grows with the square of a patch's size)
    max_message_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    max_patch_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_patches: int = Field(default=500, ge=1)
    bot_senders: list[str] = ["lkp@intel.com", "noreply@", "syzbot", "patchwork-bot"]


class NetworkSettings(_Strict):
    """Bounds of every network wait (epoch and tree fetches, ls-remote, HTTP requests):
    a stalled server costs at most these, and a killed fetch takes its helpers along."""

    connect_timeout: float = Field(default=20.0, gt=0, le=600)  # TCP connect, HTTP
    # one git fetch of an epoch or a tree, start to end; a big first clone needs long
    fetch_timeout: int = Field(default=1800, gt=0, le=86400)
    ls_remote_timeout: int = Field(default=60, gt=0, le=3600)
    # one thread fetched over HTTP (b4), start to end: a server that trickles a byte
    # now and then never trips the per-read intake.http_timeout, this ends it
    thread_timeout: int = Field(default=300, gt=0, le=86400)
    # a git transfer slower than low_speed_limit bytes/s for low_speed_time seconds is
    # aborted (git's http.lowSpeedLimit/http.lowSpeedTime): a server that accepts and
    # never answers is given up after low_speed_time, not after fetch_timeout
    low_speed_limit: int = Field(default=1024, ge=1)
    low_speed_time: int = Field(default=60, ge=1, le=3600)


class BaseSelectionSettings(_Strict):
    # subject tag -> "tree/branch" (or just "branch" of the list's first tree)
    subject_tags: dict[str, str] = {}
    b4_guess: bool = True
    # a base-commit in no synced branch is fetched by sha from the configured trees' URLs
    fetch_by_sha: bool = True
    # the trees named by the MAINTAINERS `T: git` lines of the files a series touches
    maintainers: bool = True
    # "tree/branch" tried last, after the list's branches (e.g. linux-next, mainline)
    fallbacks: list[str] = []


class ApplySettings(_Strict):
    slots: int = Field(default=1, ge=1)
    max_diff_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    timeout: int = Field(default=300, gt=0)


class BuildSettings(_Strict):
    arches: list[str] = ["x86_64", "i386", "arm64", "powerpc"]
    jobs: int = Field(default=2, ge=1)
    # the plan is bounded by work: estimated object compiles against budget_seconds;
    # max_variants only caps the count on top of that
    max_variants: int = Field(default=12, ge=1)
    budget_seconds: int = Field(default=1800, gt=0)
    object_seconds: float = Field(default=3.0, gt=0)  # one object's expected compile time
    config_seconds: float = Field(default=8.0, ge=0)  # making and verifying one .config
    deadline_seconds: int = Field(default=3600, gt=0)  # wall-clock stop of one build check
    step_seconds: int = Field(default=1800, gt=0)  # wall-clock stop of one make call
    w1: bool = True
    llvm: bool = False
    # after the baseline, a patch that changes only C sources and headers is built by
    # replaying Kbuild's saved commands of the objects it reaches (no make call)
    replay: bool = True
    # a re-roll whose first patches are an earlier run's (same base, same git patch-id)
    # takes that run's build results for them and builds from the first new patch
    reuse: bool = True
    presets: dict[str, str] = {}  # arch -> defconfig target or preset name
    max_header_objects: int = Field(default=8, ge=0)
    kconfig_solver: bool = True  # refused requests go to the Kconfig solver (kconfiglib)
    # LLVM=1 (clang) as a second toolchain: the host arch's base variant once more
    llvm_second: bool = False


class SandboxSettings(_Strict):
    """The sandbox that everything running code from a series runs in (bubblewrap).

    make, scripts/config, checkpatch and kernel-doc see no network, the tree
    read-only, only their build directory and a private /tmp writable, an
    environment of a few allowed variables, and these limits.
    """

    bwrap: str = "bwrap"
    # the uid builds run as when lorebot itself runs as root: never root
    uid: int = Field(default=65534, ge=1)
    # when bubblewrap cannot run here: refuse to build (false) or build WITHOUT a
    # sandbox (true); the status page shows this setting
    allow_unsandboxed: bool = False
    cpu_seconds: int = Field(default=3600, ge=1)  # CPU time of each process
    memory_bytes: int = Field(default=8 * 2**30, ge=2**26)  # address space of each process
    processes: int = Field(default=4096, ge=16)  # processes of the build's uid
    file_bytes: int = Field(default=4 * 2**30, ge=2**20)  # the largest file it may write
    tmp_bytes: int = Field(default=2**30, ge=2**20)  # its private /tmp


class CheckpatchSettings(_Strict):
    options: list[str] = ["--no-tree", "--strict", "--terse", "--show-types", "--no-summary"]
    ignore: list[str] = ["FILE_PATH_CHANGES", "SPDX_LICENSE_TAG", "COMMIT_LOG_LONG_LINE"]


class ChecksSettings(_Strict):
    enabled: list[str] = ["build", "semantic", "kernel-doc", "checkpatch", "runtime"]
    checkpatch: CheckpatchSettings = CheckpatchSettings()


class MailSettings(_Strict):
    mode: Literal["outbox", "smtp"] = "outbox"
    sender: str = "lorebot <lorebot@localhost>"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_security: Literal["none", "starttls", "ssl"] = "none"
    # seconds for the connect, the greeting and each command: a relay that accepts and
    # never greets must not hold delivery for long
    smtp_timeout: float = Field(default=20.0, gt=0, le=600)
    deliver_interval: int = Field(default=30, ge=1)  # seconds between delivery passes
    # a reply not taken for a temporary reason (4xx, timeout) waits this long before
    # its first retry, doubled each time, at most retry_max_seconds
    retry_seconds: int = Field(default=60, ge=1)
    retry_max_seconds: int = Field(default=3600, ge=1)
    # credentials come from LOREBOT_SMTP_USER / LOREBOT_SMTP_PASSWORD, never from the file
    cc_lists: bool = True
    success_summary: bool = False
    rate_per_hour: int = Field(default=60, ge=0)
    rate_per_author_per_hour: int = Field(default=10, ge=0)
    mute: list[str] = []
    embargo_minutes: int = Field(default=0, ge=0)
    reported_by: str = "lorebot <lorebot@localhost>"


_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


class WebSettings(_Strict):
    listen: str = "127.0.0.1"  # an address or host name, without the port
    port: int = Field(default=8080, ge=0, le=65535)
    token: str = ""
    base_url: str = "http://127.0.0.1:8080"

    @field_validator("listen", mode="after")
    @classmethod
    def _address_only(cls, v: str) -> str:
        # "127.0.0.1:8080" was once taken as a host name and the page silently not started
        try:
            ipaddress.ip_address(v)
            return v
        except ValueError:
            pass
        if _HOSTNAME_RE.match(v) and not v.replace(".", "").isdigit():
            return v
        raise ValueError(
            f"{v!r} is not an IP address or host name; the port goes in web.port "
            '(e.g. listen = "127.0.0.1", port = 8080)'
        )


class ServiceSettings(_Strict):
    workers: int = Field(default=1, ge=1)
    # every heartbeat_seconds a service refreshes the claims it holds and takes back the
    # claims of holders that died; a claim from another host is dead once its heartbeat
    # is stale_claim_seconds old
    heartbeat_seconds: int = Field(default=10, ge=1, le=3600)
    # a series held for a fault of ours (tree not synced, toolchain missing, a check that
    # crashed) is retried after this long, doubling with each hold, up to a day
    hold_retry_seconds: int = Field(default=600, ge=1, le=86400)
    stale_claim_seconds: int = Field(default=120, ge=3, le=86400)

    @model_validator(mode="after")
    def _stale_after_beats(self) -> ServiceSettings:
        if self.stale_claim_seconds < 3 * self.heartbeat_seconds:
            raise ValueError(
                "stale_claim_seconds must be at least 3 x heartbeat_seconds, "
                "or live claims on other hosts are taken for dead"
            )
        return self


class CacheSettings(_Strict):
    """How much disk the cache and the state may take (`lorebot gc`, and the service's job)."""

    # build dirs and idle worktree slots, least recently used first, are removed to stay
    # under this many bytes of `paths.cache` (0: no quota)
    quota_bytes: int = Field(default=0, ge=0)
    # a check does not start with less free space than this under `paths.cache`: the
    # series is held (a fault of ours), never failed or mailed
    min_free_bytes: int = Field(default=2 * 2**30, ge=0)
    # run logs and outbox mails older than this are removed (0: kept forever)
    retention_days: int = Field(default=30, ge=0)
    gc_interval: int = Field(default=3600, ge=5)  # seconds between the service's gc passes


class CommandSettings(_Strict):
    """`#lorebot <command>` lines in replies to lorebot's mail (see README)."""

    enabled: bool = True
    # addresses that may command any series, besides its author and its To/Cc
    admins: list[str] = []
    # a series is re-tested by command at most once in this many seconds
    retest_interval: int = Field(default=3600, ge=0)


class RuntimeSettings(_Strict):
    """The kernel's own tests a series runs (checks/runtime): host suites and KUnit."""

    table: str = ""  # a TOML file of suites by path; empty = config/runtime.toml
    build_seconds: int = Field(default=900, gt=0)  # wall-clock stop of one suite build
    run_seconds: int = Field(default=900, gt=0)  # wall-clock stop of one suite run
    # a suite expected to take less than this (the table's `seconds`) runs after each
    # patch and always at the base; a dearer one runs after the series first and at the
    # base and the patches only to tell whether, and where, a failure is new
    cheap_seconds: int = Field(default=60, ge=0)
    # where KUnit runs: "um" (User Mode Linux, no VM), "qemu" (x86_64 with KVM; emulated,
    # with a Note, where KVM is unusable), or "auto" (qemu where a probe guest boots under
    # KVM in the sandbox: checks/runtime/kvmprobe.py; else um)
    kunit_platform: Literal["um", "qemu", "auto"] = "auto"
    kunit_seconds: int = Field(default=300, gt=0)  # kunit.py's own timeout of one boot
    # wall-clock stop of one kunit.py run (configure, build, boot): a cold UML build
    # took over 15 minutes on 2 busy cores
    kunit_build_seconds: int = Field(default=3600, gt=0)
    max_kunit_suites: int = Field(default=4, ge=0)  # KUnit suites one series may run


class DispatchSettings(_Strict):
    """Scale-out: build jobs on `lorebot worker` processes through Celery (Redis broker).

    Empty broker_url (the default): everything runs in-process, as without this table.
    """

    broker_url: str = ""  # redis://host:port/0
    result_backend: str = ""  # default: the broker
    database: str = ""  # the shared state's SQLAlchemy URL (PostgreSQL); else `database`
    # a job goes to the worker holding its build dir warm unless that worker has been busy
    # this long with other jobs (then to the shared queue)
    warm_threshold_seconds: float = Field(default=60.0, ge=0)
    job_timeout_seconds: int = Field(default=3600, gt=0)  # one job's wall-clock limit
    # a job taken by a worker that died is handed out again after this long (Redis)
    visibility_timeout: int = Field(default=3600, gt=0)
    broker_wait_seconds: float = Field(default=10.0, gt=0)  # broker unreachable: held after
    worker_name: str = ""  # default: host name and process id
    heartbeat_seconds: float = Field(default=5.0, gt=0)  # workers announce what they hold


class Settings(BaseSettings):
    """The whole configuration of one lorebot instance."""

    model_config = SettingsConfigDict(
        env_prefix="LOREBOT_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    database: str = ""  # SQLAlchemy URL; empty = SQLite under paths.state
    paths: PathsSettings = PathsSettings()
    lists: list[ListSettings] = []
    trees: list[TreeSettings] = []
    intake: IntakeSettings = IntakeSettings()
    network: NetworkSettings = NetworkSettings()
    base: BaseSelectionSettings = BaseSelectionSettings()
    apply: ApplySettings = ApplySettings()
    build: BuildSettings = BuildSettings()
    checks: ChecksSettings = ChecksSettings()
    sandbox: SandboxSettings = SandboxSettings()
    mail: MailSettings = MailSettings()
    web: WebSettings = WebSettings()
    service: ServiceSettings = ServiceSettings()
    cache: CacheSettings = CacheSettings()
    commands: CommandSettings = CommandSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    dispatch: DispatchSettings = DispatchSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # what the code passes wins, then the environment, then the TOML file
        return (init_settings, env_settings, _FileSource(settings_cls))

    @property
    def database_url(self) -> str:
        return self.database or self.dispatch.database or f"sqlite:///{self.paths.database_file}"

    def tree(self, name: str) -> TreeSettings:
        for t in self.trees:
            if t.name == name:
                return t
        raise KeyError(name)

    def list_(self, name: str) -> ListSettings:
        for lst in self.lists:
            if lst.name == name:
                return lst
        raise KeyError(name)


_FILE_DATA: ContextVar[dict[str, Any] | None] = ContextVar("lorebot_settings_file", default=None)


class _FileSource(PydanticBaseSettingsSource):
    """The TOML file's values, below the environment (see load_settings)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return (_FILE_DATA.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_DATA.get() or {})


class SettingsError(Exception):
    """A configuration file or variable is wrong; the message names the key."""


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown setting '{key}'")
        else:
            lines.append(f"bad value for '{key}': {e['msg']}")
    return "; ".join(lines)


def _describe_source(err: SourceError) -> str:
    """pydantic-settings' 'error parsing value for field "lists" from source ...' as the
    variable to fix."""
    m = re.search(r'field "([^"]+)"', str(err))
    field = m.group(1) if m else ""
    if "EnvSettingsSource" in str(err) and field:
        var = f"LOREBOT_{field.upper()}"
        return (
            f"{var}: not valid JSON for setting '{field}'; give it as JSON "
            f'(e.g. {var}=\'[{{"name": "linux-mm", "url": "https://..."}}]\') or unset it'
        )
    return f"bad setting '{field or '?'}': {err}"


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (default: config/default.toml), apply env overrides, validate."""
    toml_path = path or Path(os.environ.get("LOREBOT_CONFIG", DEFAULT_TOML))
    try:
        data = tomllib.loads(toml_path.read_text())
    except FileNotFoundError as e:
        raise SettingsError(
            f"configuration file not found: {toml_path}; pass a TOML file with --config "
            "or LOREBOT_CONFIG"
        ) from e
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise SettingsError(
            f"{toml_path}: cannot read the configuration file ({why}); "
            "pass a TOML file with --config or LOREBOT_CONFIG"
        ) from e
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{toml_path}: not valid TOML: {e}") from e
    token = _FILE_DATA.set(data)
    try:
        settings = Settings(**overrides)
    except ValidationError as e:
        raise SettingsError(f"{toml_path}: {_describe(e)}") from e
    except SourceError as e:  # an environment variable that is not what its key takes
        raise SettingsError(_describe_source(e)) from e
    finally:
        _FILE_DATA.reset(token)
    _check_references(settings, toml_path)
    return settings


def _check_references(settings: Settings, where: Path) -> None:
    names = {t.name for t in settings.trees}
    for lst in settings.lists:
        for t in lst.trees:
            if t not in names:
                raise SettingsError(f"{where}: lists.{lst.name}.trees names unknown tree '{t}'")
