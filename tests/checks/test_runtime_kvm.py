"""KUnit under QEMU with KVM: the sandbox reaches /dev/kvm only for that run, and only
through the device's group (the real bubblewrap, the real /dev/kvm of this machine)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.core.runner import CommandResult, Runner
from checks.base import sandbox_for
from checks.runtime.kunitrun import _OPEN_KVM, KVM, kvm_groups, kvm_in_sandbox, platform_args
from config.settings import Settings


def test_qemu_boots_with_kvm_unless_the_sandbox_cannot_open_it() -> None:
    assert platform_args("qemu") == ["--arch=x86_64", "--qemu_args=-enable-kvm"]
    assert platform_args("qemu", kvm=False) == ["--arch=x86_64"]
    assert platform_args("um") == ["--arch=um"]


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
    assert kvm_in_sandbox(runner, box) == ""
    if box.as_root:
        assert os.stat(KVM).st_gid == groups[0]
