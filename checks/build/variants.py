"""Config variants per arch: the base config plus one variant per relevant symbol (pure).

The base of an arch is its defconfig (or preset) with the Kconfig chain of
every affected object switched on. Each relevant symbol (a `Flip` from
impact analysis) then gives one more variant on top of a base; which ones
are built, in which order, is `planning.py`'s choice. Applying and verifying
a variant is the shell's job (`make.py`); this module says what to ask for
and what came out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from checks.build.impact import Flip, Impact
from checks.build.kbuild import ObjectChain
from checks.build.toolchains import Arch

_SET = re.compile(r"^CONFIG_(\w+)=(.*)$")
_UNSET = re.compile(r"^# CONFIG_(\w+) is not set$")
_CONFIG_LINE = re.compile(r"^\s*(?:menu)?config\s+(\w+)\s*$")
_PROMPT = re.compile(r'^\s*(?:(?:bool|tristate|string|int|hex)\s+"|prompt\s+")')
_DEPENDS = re.compile(r"^\s*depends\s+on\s+(.*)$")
_BLOCK_END = re.compile(r"^(menu|endmenu|choice|endchoice|if|endif|source)\b")
_DEP_ATOM = re.compile(r"(!?)\s*\b([A-Z][A-Z0-9_]+)\b")


def read_config(text: str) -> dict[str, str]:
    """A .config as {symbol: value}; `# CONFIG_X is not set` gives "n"."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if m := _SET.match(line):
            out[m[1]] = m[2]
        elif m := _UNSET.match(line):
            out[m[1]] = "n"
    return out


def value(config: Mapping[str, str], symbol: str) -> str:
    return config.get(symbol, "n")


def satisfied(config: Mapping[str, str], symbol: str, wanted: str) -> bool:
    """Whether `symbol` has the wanted value ("y" is met by "m" too)."""
    got = value(config, symbol)
    return got in ("y", "m") if wanted == "y" else got == wanted


@dataclass(frozen=True)
class VariantSpec:
    """One config to build: an arch's base, the chain symbols to enable, maybe one flip."""

    arch: str
    target: str  # defconfig target or preset
    enable: tuple[str, ...]  # Kconfig chains of the affected objects
    flip: Flip | None = None
    # symbols the series adds to Kconfig: the base cannot have them; they are set
    # when a patch has added them (`late`)
    added: frozenset[str] = frozenset()

    @property
    def wanted(self) -> dict[str, str]:
        """Symbol → value the variant is for (a flip wins over the chain)."""
        req = dict.fromkeys(self.enable, "y")
        if self.flip:
            req[self.flip.symbol] = self.flip.value
        return req

    @property
    def requests(self) -> dict[str, str]:
        """What to ask of the base's Kconfig: the wanted symbols it has."""
        return {s: v for s, v in self.wanted.items() if s not in self.added}

    @property
    def late(self) -> dict[str, str]:
        """What to ask once the series has added the symbols (see `added`)."""
        return {s: v for s, v in self.wanted.items() if s in self.added}

    @property
    def key(self) -> str:
        """A stable directory name: target plus a hash of the requests."""
        req = ",".join(f"{k}={v}" for k, v in sorted(self.wanted.items()))
        # no "=" or spaces: tools/ Makefiles break on them in O= paths
        label = f"{self.flip.symbol}-{self.flip.value}" if self.flip else "base"
        digest = hashlib.sha1(req.encode()).hexdigest()[:8]
        return f"{self.target}-{label}-{digest}"


@dataclass(frozen=True)
class Variant:
    """A variant after `make olddefconfig`, verified."""

    spec: VariantSpec
    config: dict[str, str]  # the resulting .config
    helpers: dict[str, str]  # extra symbols set so that the requests stuck
    refused: tuple[str, ...]  # "X=n (got y)" for requests that did not stick
    blocked: tuple[str, ...] = ()  # symbols the Kconfig solver could not set as needed

    @property
    def flip_refused(self) -> bool:
        f = self.spec.flip
        if f is None or f.symbol in self.spec.added:  # decided after the patch adding it
            return False
        return not satisfied(self.config, f.symbol, f.value)

    def expected(self) -> dict[str, str]:
        """The config with what is asked of the series' own symbols (for planning)."""
        return {**self.config, **self.spec.late}


def arch_objects(objects: Iterable[ObjectChain], arch: Arch) -> list[ObjectChain]:
    """Objects that belong to this arch (anything outside arch/, or under arch/<srcarch>/)."""
    return [
        o
        for o in objects
        if not o.object.startswith("arch/") or o.object.startswith(f"arch/{arch.srcarch}/")
    ]


def select_arches(
    impacts: Sequence[Impact], table: Mapping[str, Arch], configured: Sequence[str]
) -> list[Arch]:
    """Arches to build: configured ones, plus those whose arch/ dirs the series touches;
    only the touched ones when every affected object lives under arch/."""
    srcarches = {s for i in impacts for s in i.srcarches}
    objects = [o for i in impacts for o in i.objects]
    touched = [a for a in table.values() if a.srcarch in srcarches]
    only_arch = bool(objects) and all(o.object.startswith("arch/") for o in objects)
    if srcarches and only_arch:
        return touched
    names = list(dict.fromkeys([*configured, *(a.name for a in touched)]))
    return [table[n] for n in names if n in table]


def flip_needed(base_config: Mapping[str, str], flip: Flip) -> bool:
    """Whether the flip asks for something the base config does not already have."""
    return not satisfied(base_config, flip.symbol, flip.value)


def refusals(config: Mapping[str, str], requests: Mapping[str, str]) -> list[str]:
    """Requests the config did not keep, as "X=n (got y)"."""
    return [
        f"{s}={v} (got {value(config, s)})"
        for s, v in requests.items()
        if not satisfied(config, s, v)
    ]


def buildable(obj: ObjectChain, config: Mapping[str, str]) -> bool:
    """An object is built in a config only when every symbol of its chain is on (P3)."""
    return all(satisfied(config, s, "y") for s in obj.symbols)


def label(
    target: str,
    defconfig: Mapping[str, str],
    config: Mapping[str, str],
    requests: Mapping[str, str],
) -> str:
    """ "defconfig MIGRATION=n": the target plus the requested symbols that differ from it."""
    diff = [f"{s}={value(config, s)}" for s in requests if value(config, s) != value(defconfig, s)]
    return " ".join([target, *diff])


def symbols_diff(
    defconfig: Mapping[str, str], config: Mapping[str, str], symbols: Iterable[str]
) -> dict[str, str]:
    """Those of `symbols` whose value differs from the plain defconfig."""
    return {
        s: value(config, s)
        for s in dict.fromkeys(symbols)
        if value(config, s) != value(defconfig, s)
    }


def fragment_line(symbols: Mapping[str, str]) -> str:
    """ "X=y Y=n": symbols on one line, for a note."""
    return " ".join(f"{s}={v}" for s, v in symbols.items())


def fragment(symbols: Mapping[str, str]) -> str:
    """CONFIG_X=... lines (or `# CONFIG_X is not set`)."""
    return "\n".join(
        f"# CONFIG_{s} is not set" if v == "n" else f"CONFIG_{s}={v}" for s, v in symbols.items()
    )


def enclosing_config(kconfig_text: str, line: int) -> str | None:
    """The `config X` block a 1-based line of a Kconfig file belongs to."""
    lines = kconfig_text.splitlines()
    for n in range(min(line, len(lines)) - 1, -1, -1):
        if m := _CONFIG_LINE.match(lines[n]):
            return m[1]
        if re.match(r"^\s*(menu|endmenu|choice|endchoice|if|endif|source)\b", lines[n]):
            return None
    return None


def config_block(kconfig_text: str, symbol: str) -> tuple[bool, list[str]] | None:
    """(has a prompt, symbols of its `depends on`) for `config symbol`, or None if absent."""
    lines = kconfig_text.splitlines()
    for i, line in enumerate(lines):
        m = _CONFIG_LINE.match(line)
        if not m or m[1] != symbol:
            continue
        prompt = False
        deps: list[str] = []
        for body in lines[i + 1 :]:
            if _CONFIG_LINE.match(body) or _BLOCK_END.match(body):
                break
            prompt = prompt or bool(_PROMPT.match(body))
            if d := _DEPENDS.match(body):
                deps += [s for neg, s in _DEP_ATOM.findall(d[1]) if not neg]
        return prompt, deps
    return None


def helpers_for(
    symbol: str,
    wanted: str,
    config: Mapping[str, str],
    selectors: Sequence[str],
    depends: Sequence[str],
    has_prompt: bool,
) -> dict[str, str]:
    """Extra symbols that may let a refused request stick.

    Off: switch off whatever still selects it. On: switch on its dependencies,
    and for a symbol without a prompt (only ever selected) its selectors.
    """
    if wanted == "n":
        return {s: "n" for s in selectors if satisfied(config, s, "y")}
    out = {d: "y" for d in depends if not satisfied(config, d, "y")}
    if not has_prompt:
        out.update({s: "y" for s in selectors})
    return out
