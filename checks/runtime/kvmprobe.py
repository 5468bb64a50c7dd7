"""Whether a guest runs under KVM here: boot a tiny one, not just open /dev/kvm.

Opening /dev/kvm (even KVM_CREATE_VM) proves little: a machine may offer KVM
whose guests never run, or run only in real mode (a nested hypervisor's
paravirtual KVM: `qemu -enable-kvm` then hangs at the kernel's first steps).
So the probe boots a 64 KiB BIOS image made here, in the sandbox a KUnit run
gets (/dev/kvm bound, its group kept), under `qemu-system-x86_64 -accel kvm`
with a short time limit. From the reset vector the guest goes through 32-bit
protected mode into 64-bit long mode with paging, as a kernel does, printing
a letter at each stage on the serial port (R, P, L), and ends QEMU through
the isa-debug-exit device: a write of `v` to its port makes QEMU exit with
status (v << 1) | 1 (hw/misc/debugexit.c). KVM is usable only when QEMU exits
with that status. The same image under `-accel tcg` is the control: it shows
QEMU itself can run it.

Image layout: QEMU maps a -bios image (its size a multiple of 64 KiB) so that
it ends at 4 GiB; the CPU starts at CS base 0xFFFF0000, IP 0xFFF0, i.e. the
image's last 16 bytes, in 16-bit real mode. There a near jump goes to the code
at the image's start.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import struct
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from bot.core.runner import Runner
from bot.core.sandbox import Sandbox

KVM = Path("/dev/kvm")
QEMU = "qemu-system-x86_64"
SIZE = 0x10000  # the image: 64 KiB, the least QEMU takes
BASE = 0x1_0000_0000 - SIZE  # where the image is mapped: it ends at 4 GiB
EXIT_PORT = 0xF4  # isa-debug-exit's iobase
EXIT_VALUE = 0x2A  # the guest writes it; < 0x80 so that (v << 1) | 1 fits an exit status
EXIT_STATUS = (EXIT_VALUE << 1) | 1
COM1 = 0x3F8
STAGES = {"R": "16-bit real mode", "P": "32-bit protected mode", "L": "64-bit long mode"}
SECONDS = 5.0  # a guest that works exits in a tenth of a second, even emulated

# the GDT's selectors (index * 8) and descriptors: flat 4 GiB code and data, 64-bit code
CODE32, DATA, CODE64 = 0x08, 0x10, 0x18
GDT = (0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF, 0x00AF9A000000FFFF)
# identity paging of the first 2 MiB (RAM: the page tables) and of the last 2 MiB below
# 4 GiB (this image), in 2 MiB pages: PML4 at 0x1000, PDPT at 0x2000, PDs at 0x3000/0x4000
PML4 = 0x1000
PAGE_ENTRIES = (
    (0x1000, 0x2000 | 3),  # PML4[0] -> PDPT, present + writable
    (0x2000, 0x3000 | 3),  # PDPT[0] -> PD of 0-1 GiB
    (0x2018, 0x4000 | 3),  # PDPT[3] -> PD of 3-4 GiB
    (0x3000, 0x00000000 | 0x83),  # PD[0]: 2 MiB page at 0, present + writable + large
    (0x4FF8, 0xFFE00000 | 0x83),  # PD[511]: the 2 MiB page that holds the image
)
EFER = 0xC0000080


def _u16(v: int) -> bytes:
    return struct.pack("<H", v)


def _u32(v: int) -> bytes:
    return struct.pack("<I", v)


def _real_mode(gdtr: int, entry32: int) -> bytes:
    """16-bit: say R, load the GDT, set CR0.PE, far-jump into 32-bit code."""
    return b"".join(
        [
            b"\xfa",  # cli
            b"\xba" + _u16(COM1),  # mov dx, COM1
            b"\xb0R",  # mov al, 'R'
            b"\xee",  # out dx, al
            b"\x2e\x66\x0f\x01\x16" + _u16(gdtr),  # lgdtd cs:[gdtr] (CS base: BASE)
            b"\x0f\x20\xc0",  # mov eax, cr0
            b"\x0c\x01",  # or al, 1 (PE)
            b"\x0f\x22\xc0",  # mov cr0, eax
            b"\x66\xea" + _u32(BASE + entry32) + _u16(CODE32),  # jmp CODE32:entry32
        ]
    )


def _protected_mode(entry64: int) -> bytes:
    """32-bit: say P, build the page tables, enable PAE, EFER.LME and paging, far-jump
    into 64-bit code."""
    tables = b"".join(
        b"\xc7\x05" + _u32(at) + _u32(entry)  # mov dword [at], entry
        for at, entry in PAGE_ENTRIES
    )
    return b"".join(
        [
            b"\x66\xb8" + _u16(DATA),  # mov ax, DATA
            b"\x8e\xd8",  # mov ds, ax
            b"\x8e\xc0",  # mov es, ax
            b"\x8e\xd0",  # mov ss, ax
            b"\xb0P",  # mov al, 'P'
            b"\xee",  # out dx, al
            b"\x31\xc0",  # xor eax, eax
            b"\xbf" + _u32(PML4),  # mov edi, PML4
            b"\xb9" + _u32(0x1000),  # mov ecx, 0x1000 (4 pages of dwords)
            b"\xf3\xab",  # rep stosd
            tables,
            b"\x0f\x20\xe0",  # mov eax, cr4
            b"\x83\xc8\x20",  # or eax, 0x20 (PAE)
            b"\x0f\x22\xe0",  # mov cr4, eax
            b"\xb8" + _u32(PML4),  # mov eax, PML4
            b"\x0f\x22\xd8",  # mov cr3, eax
            b"\xb9" + _u32(EFER),  # mov ecx, EFER
            b"\x0f\x32",  # rdmsr
            b"\x0d" + _u32(0x100),  # or eax, 0x100 (LME)
            b"\x0f\x30",  # wrmsr
            b"\x0f\x20\xc0",  # mov eax, cr0
            b"\x0d" + _u32(0x80000000),  # or eax, 0x80000000 (PG)
            b"\x0f\x22\xc0",  # mov cr0, eax
            b"\xea" + _u32(BASE + entry64) + _u16(CODE64),  # jmp CODE64:entry64
        ]
    )


def _long_mode(value: int) -> bytes:
    """64-bit: say L, write `value` to isa-debug-exit, halt (for good) if QEMU goes on."""
    return b"".join(
        [
            b"\xb0L",  # mov al, 'L'
            b"\xee",  # out dx, al
            b"\xb0" + bytes([value]),  # mov al, value
            b"\xe6" + bytes([EXIT_PORT]),  # out EXIT_PORT, al
            b"\xf4",  # hlt
            b"\xeb\xfd",  # jmp back to the hlt
        ]
    )


@dataclass(frozen=True)
class Layout:
    """Where each part of the image is (offsets from its start)."""

    protected: int  # the 32-bit code (the 16-bit code is at 0)
    long: int  # the 64-bit code
    end: int  # the end of the code
    gdt: int
    gdtr: int  # lgdt's operand: limit, base
    reset: int = SIZE - 16  # the reset vector


def layout() -> Layout:
    protected = len(_real_mode(0, 0))
    long = protected + len(_protected_mode(0))
    end = long + len(_long_mode(0))
    gdt = (end + 7) & ~7
    return Layout(protected=protected, long=long, end=end, gdt=gdt, gdtr=gdt + 8 * len(GDT))


def bios(value: int = EXIT_VALUE) -> bytes:
    """The 64 KiB BIOS image: code at its start, the GDT after it, the reset vector in its
    last 16 bytes (a near jump to offset 0); it exits QEMU with (value << 1) | 1."""
    if not 0 <= value < 0x80:
        raise ValueError(f"exit value {value:#x}: (v << 1) | 1 must fit an exit status")
    at = layout()
    code = _real_mode(at.gdtr, at.protected) + _protected_mode(at.long) + _long_mode(value)
    image = bytearray(b"\xf4" * SIZE)  # hlt everywhere else
    image[: len(code)] = code
    image[at.gdt : at.gdtr] = b"".join(struct.pack("<Q", d) for d in GDT)
    image[at.gdtr : at.gdtr + 6] = _u16(8 * len(GDT) - 1) + _u32(BASE + at.gdt)
    jump = b"\xe9" + _u16((0 - (at.reset + 3)) & 0xFFFF)  # jmp near 0 (IP-relative)
    image[at.reset : at.reset + len(jump)] = jump
    return bytes(image)


def boot_argv(image: Path, accel: str) -> list[str]:
    """QEMU booting `image` as its BIOS, with only the exit device and a serial port."""
    return [
        QEMU,
        "-accel",
        accel,
        "-nodefaults",
        "-nographic",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-m",
        "16",
        "-device",
        f"isa-debug-exit,iobase={EXIT_PORT:#x},iosize=0x04",
        "-bios",
        str(image),
    ]


def stage(serial: str) -> str:
    """How far the guest got, from the letters it printed."""
    reached = [STAGES[c] for c in serial if c in STAGES]
    return reached[-1] if reached else "nothing (not even the reset vector's code)"


def judge(
    accel: str, returncode: int, timed_out: bool, stdout: str, stderr: str, seconds: float
) -> str:
    """Why the probe guest did not run under `accel` ("" when it exited as it should)."""
    if returncode == EXIT_STATUS and not timed_out:
        return ""
    reached = stage(stdout)
    if timed_out:
        return (
            f"the probe guest did not finish within {seconds:g} s under {accel}: "
            f"it reached {reached}"
        )
    said = [
        line
        for line in stderr.strip().splitlines()
        if line.strip() and "warning:" not in line and not line.startswith("[lorebot")
    ]
    why = said[-1] if said else f"exit status {returncode}, not {EXIT_STATUS}"
    return f"{QEMU} -accel {accel} could not run the probe guest: {why} (it reached {reached})"


def kvm_groups(sandbox: Sandbox) -> list[int]:
    """The group a sandboxed run keeps to open /dev/kvm: the device's group when it may
    read and write it (root:kvm 0660, as udev makes it) and lorebot drops from root;
    none otherwise (no group of root's, no other device)."""
    try:
        st = KVM.stat()
    except OSError:
        return []
    rw = stat.S_IRGRP | stat.S_IWGRP
    if not sandbox.as_root or st.st_gid == 0 or st.st_mode & rw != rw:
        return []
    return [st.st_gid]


def boot(runner: Runner, sandbox: Sandbox, accel: str, seconds: float = SECONDS) -> str:
    """Boot the probe image in the sandbox under `accel` ("kvm": /dev/kvm bound and its
    group kept, as a KUnit run gets them); why it did not run ("" when it did)."""
    kvm = accel == "kvm"
    with tempfile.TemporaryDirectory(prefix="lorebot-kvm-probe-") as tmp:
        where = Path(tmp)
        where.chmod(0o755)  # the sandbox's uid reads it
        image = where / "probe-bios.bin"
        image.write_bytes(bios())
        image.chmod(0o644)
        r = sandbox.run(
            runner,
            boot_argv(image, accel),
            cwd=Path("/"),
            ro=[where],
            timeout=seconds,
            name=f"kvm-probe-{accel}",
            devices=[KVM] if kvm else [],
            groups=kvm_groups(sandbox) if kvm else [],
        )
    return judge(accel, r.returncode, r.timed_out, r.stdout, r.stderr, seconds)


def kvm_reason(runner: Runner, sandbox: Sandbox, seconds: float = SECONDS) -> tuple[str, bool]:
    """Why a sandboxed KUnit run cannot use KVM ("" when it can): QEMU, /dev/kvm, and a
    guest that boots under KVM; when it does not, whether it boots under TCG (KVM's fault,
    or QEMU's). Also whether the answer lasts this boot: not when the control failed too
    (QEMU broken, or the machine too busy to boot even the control in time)."""
    if not shutil.which(QEMU):
        return f"{QEMU} not found (apt-get install qemu-system-x86)", True
    if not KVM.exists():
        return f"{KVM} does not exist", True
    why = boot(runner, sandbox, "kvm", seconds)
    if not why:
        return "", True
    control = boot(runner, sandbox, "tcg", seconds)
    return why + ("; under tcg it does" if not control else f"; {control}"), not control


def machine_key(sandbox: Sandbox) -> str:
    """What the probe's answer depends on: this boot, the sandbox, QEMU, /dev/kvm."""
    parts: list[object] = [sandbox.uid, sandbox.as_root, sandbox.enabled]
    try:
        parts.append(BOOT_ID.read_text().strip())
    except OSError:
        parts.append(os.getpid())  # no boot id: remembered for this process only
    for path in (shutil.which(QEMU), KVM):
        try:
            st = os.stat(path) if path else None
        except OSError:
            st = None
        parts.append([str(path), st.st_ino, st.st_mode, st.st_gid, st.st_ctime_ns] if st else None)
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def kvm_in_sandbox(runner: Runner, sandbox: Sandbox, remember: Path | None = None) -> str:
    """kvm_reason, found once per process and sandbox, and once per boot where `remember`
    (a JSON file) keeps it: a hung probe costs seconds."""
    key = machine_key(sandbox)
    with _KVM_LOCK:
        if key not in _KVM:
            known = _remembered(remember).get(key)
            if not isinstance(known, str):
                known, lasting = kvm_reason(runner, sandbox)
                if remember and lasting:
                    _remember(remember, key, known)
            _KVM[key] = known
        return _KVM[key]


def _remembered(path: Path | None) -> dict[str, object]:
    try:
        data = json.loads(path.read_text()) if path else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(path: Path, key: str, reason: str) -> None:
    """Written whole (a reader never sees half of it), one answer: the latest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as f:
        json.dump({key: reason}, f)
    os.replace(f.name, path)


BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_KVM: dict[str, str] = {}
_KVM_LOCK = threading.Lock()
