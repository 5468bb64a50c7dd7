"""KUnit under QEMU: the KVM probe boots a guest (real QEMU, real bubblewrap, this
machine's /dev/kvm), the sandbox reaches /dev/kvm only for that run and through the
device's group, and the platform is chosen from what the probe found."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from bot.core.runner import CommandResult, Runner
from checks.base import sandbox_for
from checks.runtime import RuntimeCheck
from checks.runtime.kunitrun import choose_platform, platform_args, reproduce
from checks.runtime.kvmprobe import (
    EXIT_STATUS,
    KVM,
    QEMU,
    SIZE,
    bios,
    boot,
    boot_argv,
    judge,
    kvm_groups,
    kvm_in_sandbox,
    layout,
    machine_key,
)
from checks.runtime.table import kunit_suite
from config.settings import Settings
from tests.support import kernel
from tests.support.kernel import WrittenPatch, replace_in

needs_qemu = pytest.mark.skipif(
    not shutil.which(QEMU), reason=f"{QEMU} missing: apt-get install qemu-system-x86"
)


def _disassemble(image: bytes, machine: str, start: int, stop: int, tmp: Path) -> list[str]:
    """objdump's instructions of image[start:stop] ("mnemonic operands", spaces squeezed)."""
    path = tmp / "image.bin"
    path.write_bytes(image)
    r = Runner().run(
        [
            "objdump",
            "-D",
            "-b",
            "binary",
            f"-m{machine}",
            "-Mintel",
            f"--start-address={start}",
            f"--stop-address={stop}",
            path,
        ],
        check=True,
    )
    out = []
    for line in r.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and re.match(r"\s*[0-9a-f]+:$", parts[0]):
            out.append(" ".join(parts[2].split()))
    return out


# what objdump reads in the probe's code, as 16-, 32- and 64-bit code ({at}: its layout)
LISTING = {
    "i8086": """\
cli
mov dx,0x3f8
mov al,0x52
out dx,al
lgdtd cs:{at.gdtr:#x}
mov eax,cr0
or al,0x1
mov cr0,eax
jmp 0x8:0xffff{at.protected:04x}""",
    "i386": """\
mov ax,0x10
mov ds,eax
mov es,eax
mov ss,eax
mov al,0x50
out dx,al
xor eax,eax
mov edi,0x1000
mov ecx,0x1000
rep stos DWORD PTR es:[edi],eax
mov DWORD PTR ds:0x1000,0x2003
mov DWORD PTR ds:0x2000,0x3003
mov DWORD PTR ds:0x2018,0x4003
mov DWORD PTR ds:0x3000,0x83
mov DWORD PTR ds:0x4ff8,0xffe00083
mov eax,cr4
or eax,0x20
mov cr4,eax
mov eax,0x1000
mov cr3,eax
mov ecx,0xc0000080
rdmsr
or eax,0x100
wrmsr
mov eax,cr0
or eax,0x80000000
mov cr0,eax
jmp 0x18:0xffff{at.long:04x}""",
    "i386:x86-64": """\
mov al,0x4c
out dx,al
mov al,0x2a
out 0xf4,al
hlt
jmp {hlt:#x}""",
}


def test_the_probe_bios_is_the_code_its_listing_says(tmp_path: Path) -> None:
    image = bios()
    at = layout()
    assert len(image) == SIZE == 0x10000
    listing = {
        machine: _disassemble(image, machine, start, stop, tmp_path)
        for machine, start, stop in [
            ("i8086", 0, at.protected),
            ("i386", at.protected, at.long),
            ("i386:x86-64", at.long, at.end),
        ]
    }
    assert listing == {
        machine: text.format(at=at, hlt=at.long + 7).splitlines()
        for machine, text in LISTING.items()
    }
    # the reset vector, at 0xFFFFFFF0: a near jump to the code at the image's start
    assert _disassemble(image, "i8086", at.reset, at.reset + 3, tmp_path) == ["jmp 0x0"]
    assert EXIT_STATUS == (0x2A << 1) | 1
    with pytest.raises(ValueError):
        bios(0x80)


def test_a_probe_verdict_says_how_far_the_guest_got() -> None:
    assert judge("kvm", EXIT_STATUS, False, "RP", "", 5) == ""
    hung = judge("kvm", -9, True, "R", "[lorebot: timed out after 5 s]", 5)
    assert (
        hung == "the probe guest did not finish within 5 s under kvm: it reached 16-bit real mode"
    )
    denied = judge(
        "kvm",
        1,
        False,
        "",
        "Could not access KVM kernel module: Permission denied\n"
        "qemu-system-x86_64: failed to initialize kvm: Permission denied\n",
        5,
    )
    assert denied.endswith(
        "failed to initialize kvm: Permission denied (it reached nothing "
        "(not even the reset vector's code))"
    )


@needs_qemu
def test_the_probe_guest_exits_under_tcg_in_the_sandbox(settings: Settings) -> None:
    """The positive control: the same image and command line, emulated, exits at once
    with the status isa-debug-exit gives."""
    runner = Runner()
    box = sandbox_for(settings.sandbox, runner)
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    assert boot(runner, box, "tcg") == ""
    image = tmp / f"lorebot-probe-test-{os.getpid()}.bin"
    image.write_bytes(bios(0x11))
    image.chmod(0o644)
    try:
        r = box.run(
            runner, boot_argv(image, "tcg"), cwd=Path("/"), ro=[image], timeout=30, name="tcg"
        )
    finally:
        image.unlink()
    assert r.returncode == (0x11 << 1) | 1 and not r.timed_out
    assert r.stdout.startswith("RP")  # the serial letters of real and protected mode


def _has_virtualization() -> bool:
    flags = Path("/proc/cpuinfo").read_text()
    return bool(re.search(r"^flags\s*:.*\b(vmx|svm)\b", flags, re.M))


@needs_qemu
def test_kvm_is_usable_only_where_a_guest_boots_under_it(settings: Settings) -> None:
    """Without vmx/svm (a nested VM whose /dev/kvm opens, even creates VMs) the probe says
    unusable, and why; opening /dev/kvm is not what it asks."""
    runner = Runner()
    box = sandbox_for(settings.sandbox, runner)
    why = kvm_in_sandbox(runner, box)
    assert kvm_in_sandbox(runner, box) is why  # once per process
    if not KVM.exists():
        assert why == f"{KVM} does not exist"
        return
    if not _has_virtualization():
        assert why, "a guest booted under KVM on a CPU without vmx/svm"
        assert re.match(r"the probe guest did not finish within|qemu-system-x86_64 -accel kvm", why)
        assert "under tcg it does" in why  # the control: QEMU itself can run it


@needs_qemu
def test_the_probe_is_remembered_for_the_boot(settings: Settings, tmp_path: Path) -> None:
    """A new process of the same boot takes the answer from the cache; another boot's
    (or another QEMU's, another /dev/kvm's) answer is not taken."""
    runner = Runner()
    # a sandbox of its own: not one this process probed already
    box = dataclasses.replace(sandbox_for(settings.sandbox, runner), uid=12345)
    remember = tmp_path / "kvm-probe.json"
    remember.write_text(json.dumps({machine_key(box): "remembered"}))
    assert kvm_in_sandbox(runner, box, remember) == "remembered"
    other = dataclasses.replace(box, uid=12346)
    remember.write_text(json.dumps({"another boot": ""}))
    why = kvm_in_sandbox(runner, other, remember)
    assert why != "remembered"
    if "under tcg it does" in why or not why:  # lasting answers only
        assert json.loads(remember.read_text()) == {machine_key(other): why}


def test_the_platform_follows_the_setting_and_the_probe() -> None:
    assert choose_platform("um", "") == ("um", False)
    assert choose_platform("auto", "") == ("qemu", True)
    assert choose_platform("auto", "the probe guest did not finish") == ("um", False)
    assert choose_platform("qemu", "") == ("qemu", True)
    assert choose_platform("qemu", "the probe guest did not finish") == ("qemu", False)
    assert platform_args("qemu") == ["--arch=x86_64", "--qemu_args=-enable-kvm"]
    assert platform_args("qemu", kvm=False) == ["--arch=x86_64"]
    assert platform_args("um") == ["--arch=um"]
    suite = kunit_suite(
        "lib/cmdline_kunit.c",
        'static struct kunit_suite s = { .name = "cmdline" };\nkunit_test_suite(s);',
        "obj-$(CONFIG_CMDLINE_KUNIT_TEST) += cmdline_kunit.o\n",
    )
    assert suite is not None
    # the line a person runs is the one that ran: emulated where KVM was unusable
    assert reproduce(suite, "qemu", kvm=False)[-1] == (
        "./tools/testing/kunit/kunit.py run --kunitconfig=cmdline.kunitconfig --arch=x86_64"
    )


_OPEN_KVM = ["python3", "-c", f"import os; os.close(os.open('{KVM}', os.O_RDWR))"]


def test_a_sandboxed_command_opens_dev_kvm_only_when_the_run_binds_it(
    settings: Settings,
) -> None:
    if not KVM.exists():
        pytest.skip(f"{KVM} missing on this machine")
    runner = Runner()
    box = sandbox_for(settings.sandbox, runner)
    groups = kvm_groups(box)
    if box.as_root and not groups:
        pytest.skip(f"{KVM} has no group the sandbox may keep: run scripts/setup.sh")

    def run(devices: list[Path] | None = None, groups: list[int] | None = None) -> CommandResult:
        return box.run(
            runner,
            _OPEN_KVM,
            cwd=Path("/"),
            devices=devices or [],
            groups=groups or [],
            timeout=60,
            name="kvm-open",
        )

    # any other sandboxed command: no /dev/kvm at all
    plain = run()
    assert not plain.ok and "No such file or directory: '/dev/kvm'" in plain.stderr
    if box.as_root:  # bound, but dropped to nobody without the group: refused
        bare = run(devices=[KVM])
        assert not bare.ok and "Permission denied" in bare.stderr
    assert run(devices=[KVM], groups=groups).ok
    if box.as_root:
        assert os.stat(KVM).st_gid == groups[0]


# A tree that stands in for the kernel's: lib/cmdline.c with its KUnit test beside it, and
# a kunit.py that builds no kernel but says what it was asked (into its build dir) and
# prints the KTAP a run of the test would, failing when lib/cmdline.c says so.
STAND_IN_KUNIT_PY = """\
import json, os, sys
args = sys.argv[1:]
build = next(a.split("=", 1)[1] for a in args if a.startswith("--build_dir="))
with open(os.path.join(build, "asked.json"), "w") as f:
    json.dump({"args": args, "dev_kvm": os.path.exists("/dev/kvm")}, f)
broken = "broken" in open("lib/cmdline.c").read()
print("KTAP version 1")
print("1..1")
print("    # Subtest: cmdline")
print("    1..1")
if broken:
    print("    # cmdline_test_range: EXPECTATION FAILED at lib/cmdline_kunit.c:99")
    print("    not ok 1 cmdline_test_range")
    print("not ok 1 cmdline")
else:
    print("    ok 1 cmdline_test_range")
    print("ok 1 cmdline")
"""


def _stand_in_tree(root: Path) -> Path:
    files = {
        "lib/Makefile": "obj-$(CONFIG_CMDLINE_KUNIT_TEST) += cmdline_kunit.o\n",
        "lib/cmdline.c": "int get_option(char **str, int *pint)\n{\n\treturn 3;\n}\n",
        "lib/cmdline_kunit.c": 'static struct kunit_suite s = { .name = "cmdline" };\n'
        "kunit_test_suite(s);\n",
        "tools/testing/kunit/kunit.py": STAND_IN_KUNIT_PY,
    }
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    kernel.git(root, "init", "-q")
    kernel.git(root, "add", "-A")
    kernel.git(root, "-c", "user.name=T", "-c", "user.email=t@example.org", "commit", "-qm", "base")
    return root


@needs_qemu
@pytest.mark.parametrize("platform", ["qemu", "auto", "um"])
def test_kunit_runs_where_the_setting_and_the_probe_say(
    platform: str, settings: Settings, tmp_path: Path
) -> None:
    """Everything of a KUnit run on QEMU short of building a kernel: the probe, the
    platform, the kunit.py line in the sandbox (/dev/kvm bound only to boot with KVM),
    the Note of an emulated run, the finding and the line that reproduces it."""
    tree = _stand_in_tree(tmp_path / "tree")
    runtime = settings.runtime.model_copy(update={"kunit_platform": platform})
    settings = settings.model_copy(update={"runtime": runtime})
    patches = [
        WrittenPatch("lib/cmdline: say so", [replace_in("lib/cmdline.c", "{", "{ /* a range */")]),
        WrittenPatch(
            "lib/cmdline: a range", [replace_in("lib/cmdline.c", "3;", "1; /* broken */")]
        ),
    ]
    ctx = kernel.series_context(tree, patches, settings, tmp_path, cache_dir=tmp_path / "cache")
    result = RuntimeCheck().run(ctx)
    why = "" if platform == "um" else kvm_in_sandbox(ctx.runner, ctx.sandbox)
    on, kvm = choose_platform(platform, why)
    asked = json.loads(
        next((tmp_path / "cache" / "runtime").glob(f"*/kunit/{on}-cmdline_kunit_test"))
        .joinpath("asked.json")
        .read_text()
    )
    args = {"um": ["--arch=um"], "qemu": ["--arch=x86_64"]}[on] + (
        ["--qemu_args=-enable-kvm"] if kvm else []
    )
    assert asked["args"][3:] == [
        *args,
        "--jobs=2",
        "--timeout=300",
        "--raw_output=kunit",
        "--make_options=CC=ccache gcc",
    ]
    assert asked["dev_kvm"] is kvm  # bound into the sandbox only to boot with KVM
    notes = [n for n in result.notes if n.kind == "kunit-no-kvm"]
    if platform == "qemu" and not kvm:
        (note,) = notes
        assert note.message == (
            "KUnit runs under QEMU without KVM (emulated, slower): KVM is unusable here"
        )
        assert note.detail.startswith(why)
    else:
        assert not notes
    (f,) = result.findings
    assert f.patch == 2 and f.message == "kunit cmdline: test cmdline.cmdline_test_range fails"
    assert f.reproduce[-1] == (
        "./tools/testing/kunit/kunit.py run --kunitconfig=cmdline.kunitconfig " + " ".join(args)
    )
    (suite,) = result.suites
    assert (suite.base, suite.after) == ((1, 0, 0), (0, 1, 0))
