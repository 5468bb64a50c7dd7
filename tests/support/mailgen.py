"""Real patch mail for tests: a small git repo and `git format-patch` series, replies,
re-rolls, inline follow-ups, pull requests, robot reports and malformed mail."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from bot.core.runner import Runner

_ids = itertools.count(1)


def now_date() -> str:
    return format_datetime(datetime.now(UTC))


def msgid_of(raw: bytes) -> str:
    m = re.search(rb"^Message-I[dD]:\s*<([^>]+)>", raw, re.MULTILINE)
    return m.group(1).decode() if m else ""


def subject_of(raw: bytes) -> str:
    m = re.search(rb"^Subject: (.*)$", raw, re.MULTILINE)
    return m.group(1).decode() if m else ""


def _header(raw: bytes, name: str) -> str:
    m = re.search(rb"^" + name.encode() + rb":\s*(.*)$", raw, re.MULTILINE | re.IGNORECASE)
    return m.group(1).decode().strip() if m else ""


class MailGen:
    """Makes mail for a list at `address` from commits in a scratch repo under `root`."""

    def __init__(self, root: Path, address: str = "test@lists.example.org"):
        self.root = root
        self.address = address
        self.repo = root / "repo"
        self.repo.mkdir(parents=True)
        (root / "gitconfig").write_text("[user]\n\tname = Ann Author\n\temail = ann@example.org\n")
        self.runner = Runner(
            env={"GIT_CONFIG_GLOBAL": str(root / "gitconfig"), "GIT_CONFIG_NOSYSTEM": "1"}
        )
        self.git("init", "-q", "-b", "master")
        (self.repo / "README").write_text("base\n")
        (self.repo / "lib.c").write_text(
            "".join(f"int f{i}(void) {{ return {i}; }}\n" for i in range(40))
        )
        self.git("add", ".")
        self.git("commit", "-q", "-m", "base")
        self.base = self.git("rev-parse", "HEAD").strip()

    def git(self, *args: str) -> str:
        return self.runner.run(["git", *args], cwd=self.repo, check=True).stdout

    def _commit(self, path: str, text: str, message: str, author: str) -> None:
        f = self.repo / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
        self.git("add", path)
        self.git("commit", "-q", f"--author={author}", "-m", message)

    def series(
        self,
        title: str,
        n: int = 3,
        version: int = 1,
        cover: bool = True,
        in_reply_to: str = "",
        prefix: str = "PATCH",
        author: str = "Ann Author <ann@example.org>",
        tag: str = "",
        edit_lib: bool = False,
    ) -> list[bytes]:
        """A `git format-patch --thread --base` series (cover letter first when `cover`).

        With `edit_lib`, each patch also changes the existing lib.c (a preimage blob).
        """
        tag = tag or f"s{next(_ids)}"
        branch = f"b-{tag}"
        self.git("checkout", "-q", "-b", branch, self.base)
        slug = re.sub(r"\W+", "_", title)
        for i in range(1, n + 1):
            if edit_lib:
                lib = self.repo / "lib.c"
                lib.write_text(lib.read_text().replace(f"f{i}(void)", f"g{i}(void)", 1))
                self.git("add", "lib.c")
            self._commit(
                f"{slug}/p{i}.c",
                f"/* {title} v{version} part {i} */\n",
                f"{title}: part {i}\n\nPart {i} of {title}, version {version}.\n\n"
                f"Signed-off-by: {author}",
                author,
            )
        out = self.root / f"out-{tag}"
        args = [
            "format-patch",
            "-q",
            "--thread",
            f"--base={self.base}",
            "-o",
            str(out),
            f"--to={self.address}",
            f"--subject-prefix={prefix}",
        ]
        if version > 1:
            args.append(f"-v{version}")
        if cover or n > 1:
            args.append("--cover-letter" if cover else "--no-cover-letter")
        if in_reply_to:
            args.append(f"--in-reply-to={in_reply_to}")
        self.git(*args, f"{self.base}..HEAD")
        self.git("checkout", "-q", "master")
        raws = []
        for path in sorted(out.iterdir()):
            raw = path.read_bytes().split(b"\n", 1)[1]  # drop the mbox "From " line
            raw = raw.replace(b"*** SUBJECT HERE ***", title.encode())
            raw = raw.replace(b"*** BLURB HERE ***", f"This is {title}.".encode())
            raws.append(raw)
        return self._renumber(raws, tag)

    def _renumber(self, raws: list[bytes], tag: str) -> list[bytes]:
        """Unique Message-IDs: format-patch's depend on the clock's second."""
        mapping: dict[bytes, bytes] = {}
        for i, raw in enumerate(raws):
            old = re.search(rb"^Message-I[dD]:\s*<([^>]+)>", raw, re.MULTILINE)
            assert old
            mapping[old.group(1)] = f"{tag}-{i}-{next(_ids)}@mailgen.example".encode()

        date = now_date().encode()
        out = []
        for raw in raws:
            head, sep, body = raw.partition(b"\n\n")
            for old_id, new_id in mapping.items():
                head = head.replace(b"<" + old_id + b">", b"<" + new_id + b">")
            head = re.sub(rb"^Date: .*$", b"Date: " + date, head, count=1, flags=re.MULTILINE)
            out.append(head + sep + body)
        return out

    def reply(
        self,
        parent: bytes,
        body: str,
        author: str = "Rob Reviewer <rob@example.org>",
        subject: str = "",
    ) -> bytes:
        """A reply to `parent` (threaded with In-Reply-To and References)."""
        pid = msgid_of(parent)
        refs = _header(parent, "References")
        refs = f"{refs} <{pid}>".strip()
        subj = subject or subject_of(parent)
        if not subj.lower().startswith("re:"):
            subj = f"Re: {subj}"
        head = (
            f"From: {author}\nTo: {self.address}\nSubject: {subj}\nDate: {now_date()}\n"
            f"Message-ID: <r{next(_ids)}@mailgen.example>\nIn-Reply-To: <{pid}>\n"
            f"References: {refs}\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n\n"
        )
        return (head + body).encode()

    def trailer_reply(
        self, parent: bytes, trailer: str = "Reviewed-by: Rob Reviewer <rob@example.org>"
    ) -> bytes:
        return self.reply(
            parent, f"On Mon, someone wrote:\n> a change\n\nLooks good.\n\n{trailer}\n"
        )

    def followup(self, parent: bytes, title: str = "fix on top") -> bytes:
        """A reply that carries a full inline patch meant to go on top of the series."""
        slug = re.sub(r"\W+", "_", title)
        diff = (
            f"diff --git a/{slug}.c b/{slug}.c\nnew file mode 100644\n"
            f"index 0000000..1111111\n--- /dev/null\n+++ b/{slug}.c\n@@ -0,0 +1 @@\n"
            f"+/* {title} */\n"
        )
        body = (
            f"On Mon, someone wrote:\n> something\n\nThis goes on top:\n\n"
            f"From: Rob Reviewer <rob@example.org>\nSubject: {title}\n\n"
            f"{title}.\n\nSigned-off-by: Rob Reviewer <rob@example.org>\n---\n"
            f" {slug}.c | 1 +\n 1 file changed, 1 insertion(+)\n\n{diff}--\n2.39.5\n"
        )
        return self.reply(parent, body)

    def robot_reply(self, parent: bytes) -> bytes:
        return self.reply(
            parent,
            "Hi,\n\nkernel test robot noticed the following build "
            "warnings:\n\n  lib.c:1: warning: unused\n",
            author="kernel test robot <lkp@intel.com>",
        )

    def pull_request(self) -> bytes:
        body = (
            f"The following changes since commit {self.base}:\n\n  base\n\n"
            "are available in the Git repository at:\n\n"
            "  git://git.example.org/foo.git tags/foo-6.13\n\n"
            f"for you to fetch changes up to {self.base}:\n\n  base\n"
        )
        return (
            f"From: Pat Puller <pat@example.org>\nTo: {self.address}\n"
            f"Subject: [GIT PULL] foo updates for 6.13\nDate: {now_date()}\n"
            f"Message-ID: <pull{next(_ids)}@mailgen.example>\n\n{body}"
        ).encode()

    def plain(self, subject: str = "a question", body: str = "Hello?\n") -> bytes:
        return (
            f"From: Quinn Q <quinn@example.org>\nTo: {self.address}\nSubject: {subject}\n"
            f"Date: {now_date()}\nMessage-ID: <q{next(_ids)}@mailgen.example>\n\n"
            f"{body}"
        ).encode()

    # -- malformed ----------------------------------------------------------
    def no_msgid(self) -> bytes:
        return (
            f"From: Nobody <nobody@example.org>\nTo: {self.address}\n"
            f"Subject: [PATCH] no id\nDate: {now_date()}\n\nno message id\n"
        ).encode()

    def unknown_charset(self) -> bytes:
        return (
            f"From: Cee <cee@example.org>\nTo: {self.address}\nSubject: odd charset\n"
            f"Date: {now_date()}\nMessage-ID: <cs{next(_ids)}@mailgen.example>\n"
            'MIME-Version: 1.0\nContent-Type: text/plain; charset="x-no-such-charset"\n'
            "Content-Transfer-Encoding: 8bit\n\n\xe9t\xe9\n"
        ).encode("latin-1")

    def huge(self, size: int = 10 * 1024 * 1024) -> bytes:
        line = b"x" * 75 + b"\n"
        return (
            f"From: Big <big@example.org>\nTo: {self.address}\nSubject: [PATCH] huge\n"
            f"Date: {now_date()}\nMessage-ID: <big{next(_ids)}@mailgen.example>\n\n"
        ).encode() + line * (size // len(line) + 1)

    def big_patch(self, size: int, title: str = "lib: add a big table") -> bytes:
        """A lone patch mail of about `size` bytes: one new file, one hunk of `size` bytes."""
        line = b"+\t0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,\n"
        n = size // len(line) + 1
        head = (
            f"From: Big Table <big@example.org>\nTo: {self.address}\n"
            f"Subject: [PATCH] {title}\nDate: {now_date()}\n"
            f"Message-ID: <bigpatch{next(_ids)}@mailgen.example>\n\n"
            "A table too big for any list.\n\nSigned-off-by: Big Table <big@example.org>\n"
            f"---\n lib/table.c | {n} +\n 1 file changed\n\n"
            "diff --git a/lib/table.c b/lib/table.c\nnew file mode 100644\n"
            f"index 0000000..1111111\n--- /dev/null\n+++ b/lib/table.c\n@@ -0,0 +1,{n} @@\n"
        )
        return head.encode() + line * n + b"-- \n2.43.0\n"

    def broken_mime(self) -> bytes:
        return (
            f"From: Mim <mim@example.org>\nTo: {self.address}\nSubject: broken mime\n"
            f"Date: {now_date()}\nMessage-ID: <mime{next(_ids)}@mailgen.example>\n"
            'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XYZ"\n\n'
            "--ABC\nContent-Type: text/plain\n\nno boundary matches\n"
        ).encode()


def inline_followup(
    parent: bytes,
    patch: bytes,
    msgid: str,
    author: str = "Rob Reviewer <rob@example.org>",
) -> bytes:
    """`patch` (one `git format-patch` mail) sent inline in a reply to `parent`, "on top of
    this series", the way reviewers post a fix in a thread."""
    import email
    import email.policy

    msg = email.message_from_bytes(patch, policy=email.policy.default)
    title = re.sub(r"^\[[^]]*\]\s*", "", " ".join(str(msg["Subject"]).split()))
    part = msg.get_body(("plain",))
    body = str(part.get_content()) if part is not None else ""
    refs = f"{_header(parent, 'References')} <{msgid_of(parent)}>".strip()
    subject = subject_of(parent)
    head = (
        f"From: {author}\nTo: {_header(parent, 'To')}\n"
        f"Subject: {subject if subject.lower().startswith('re:') else 'Re: ' + subject}\n"
        f"Date: {now_date()}\nMessage-ID: <{msgid}>\nIn-Reply-To: <{msgid_of(parent)}>\n"
        f"References: {refs}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
    )
    text = (
        "On Mon, someone wrote:\n> something\n\nThis goes on top:\n\n"
        f"From: {msg['From']}\nSubject: {title}\n\n{body}"
    )
    return (head + text).encode()
