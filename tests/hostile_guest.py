"""A hostile guest end to end, as a script: tests/test_hostile_guest.py runs it in a
subprocess and greps everything it leaves for raw control bytes.

The guest is tests/fake_qemu.py replaying a console log laced with HOSTILE at
every place guest text enters: the ready line's kernel release, plain console
lines, stressor result lines (names, keys, reason=), hence a stressor-failure
title and the verdict's reason; and an "sshd" on the forwarded port whose banner
is hostile (paramiko quotes it in its error). The run goes through the real
stages from the boot on (boot.boot_and_storm, parse, decide, the results writer,
the CLI's printing under the terminal boundary), then the matrix page and a
bisection whose BAD runs end with the hostile title.

Usage: hostile_guest.py WORKDIR
"""
from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# (name, payload): what a broken or malicious kernel can print.
HOSTILE = [
    ("osc-title", "\x1b]0;pwned\x07"),
    ("osc8-link", "\x1b]8;;http://evil.invalid/\x1b\\click\x1b]8;;\x1b\\"),
    ("csi-clear", "\x1b[2J\x1b[H"),
    ("csi-colour", "\x1b[31;1m"),
    ("c1-csi", "\x9b2J"),
    ("dcs", "\x1bP1$qm\x1b\\"),
    ("bidi-override", "\u202eexe.txt"),
    ("bidi-isolate", "\u2066rtl\u2069"),
    ("zero-width", "a\u200bb\u200dc\ufeff"),
    ("nul", "a\x00b"),
    ("del", "d\x7fe"),
    ("noncharacters", "\ufffe\uffff\U0010ffff"),
    ("invalid-utf8", "\udcff\udcfe\udcc0"),     # raw bytes 0xff 0xfe 0xc0 (the fake replays them as U+FFFD)
    # last: a console line ends at these (CR, and Python's splitlines() at U+2028)
    ("bel-bs-cr", "ok\x07\x08\x08\rFAKE"),
    ("line-separator", "x\u2028y\u2029z"),
]
PAYLOAD = "".join(text for _, text in HOSTILE)
MARK = "\x1b]0;pwned"          # must be in console.log raw, and escaped everywhere else


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def hostile_log(clean: Path) -> bytes:
    lines = clean.read_bytes().split(b"\n")
    out = []
    for line in lines:
        if line.startswith(b"MMLOCK-HARNESS: ready kernel="):
            line = line.replace(b"kernel=6.1.192", b"kernel=6.1.192" + _b(PAYLOAD.replace(" ", "")))
        out.append(line)
        if line.startswith(b"MMLOCK-HARNESS: storm-begin"):
            out += [b"[   12.000001][  T101] " + _b(PAYLOAD) + b"\r",
                    b"ok 1 evil" + _b(PAYLOAD).replace(b" ", b"") + b" # count=1 errors=0",
                    b"not ok 1 hog # touched=5 reason=\"" + _b(PAYLOAD).replace(b'"', b"") + b"\" errors=1"]
    return b"\n".join(out)


def hostile_sshd(lines: int = 101) -> int:
    """A forwarded port whose 'sshd' sends only hostile lines: paramiko gives up after 100
    and names the last one ('Indecipherable protocol version')."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve() -> None:
        while True:
            conn, _ = server.accept()
            try:
                # valid UTF-8 (else paramiko's error names the codec, not the banner)
                banner = PAYLOAD.encode("utf-8", "replace")
                conn.sendall(b"".join(banner + b" banner %d\r\n" % i for i in range(lines)))
            except OSError:
                pass
            finally:
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1]


def main(work: Path) -> int:
    from harness import boot, cli, configs, run
    from harness.bisect import Bisection
    from harness.bisect_policy import Policy, Trial
    from harness.channel import ssh
    from harness.matrix import render_html
    from harness.plan import plan
    from harness.record import Draft, RunRecord
    from harness.report import parse_file
    from harness.report.model import printable
    from harness.results import junit_xml, write_json
    from harness.terminal import safe_stdio, say
    from harness.verdict import decide

    with safe_stdio():
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        log = work / "guest.log"
        log.write_bytes(hostile_log(REPO / "tests" / "data" / "consoles" / "x86_64-clean.log"))
        run_dir = work / "results" / "run"
        run_dir.mkdir(parents=True)
        ssh.CONNECT_TIMEOUT_S["tcg"] = 5.0     # the hostile sshd is refused at once; no need to wait 60s
        setup = ssh.SshSetup(True, hostile_sshd(), ssh.generate_keys(), run_dir=run_dir)
        storm = configs.load_storm("swapoff-fork-mmap")
        draft = Draft(RunRecord.from_json({"run_id": run_dir.name, "arch": "x86_64", "storm": {"name": storm.name},
                                           "durations": {"total_s": 1.0}, "lock_coverage": {}, "reports": []}))
        say(f"hostile guest: {len(HOSTILE)} payloads")
        ending = boot.boot_and_storm([sys.executable, str(REPO / "tests" / "fake_qemu.py"), str(log)], run_dir,
                                     run_dir / "console.log", "tcg", plan(run.RunRequest(duration=5)), draft, setup)
        raw = decide(parse_file(run_dir / "console.log"), ending)
        verdict, written = run._write_results(run_dir, "x86_64", raw, draft)
        cli.print_outcome(run.RunOutcome(run_dir, verdict, written))

        # the matrix page and JUnit, from the raw titles (not the already escaped verdict.json)
        titles = [r.title for r in raw.reports]
        matrix = work / "results" / "matrix"
        matrix.mkdir()
        rows = [{"arch": "x86_64", "kernel": "6.1", "verdict": raw.verdict, "exit_code": raw.exit_code,
                 "titles": titles, "accel": "tcg" + PAYLOAD, "durations": {"total_s": 1.0}, "run_dir": str(run_dir)}]
        write_json(matrix / "summary.json", rows)
        (matrix / "junit.xml").write_text(junit_xml("matrix", [
            {"name": "x86_64-6.1", "classname": "matrix", "time": 1, "verdict": raw.verdict,
             "message": "; ".join(titles)}]))
        (matrix / "summary.html").write_text(render_html(rows, matrix))

        # a bisection whose BAD ends with the hostile title; every other revision passes
        tree = work / "linux"
        tree.mkdir()
        env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
               "PATH": "/usr/bin:/bin"}
        git = ["git", "-C", str(tree)]
        subprocess.run([*git, "init", "-q", "-b", "main"], env=env, check=True)
        for i in range(4):
            (tree / "f").write_text(f"{i}\n")
            subprocess.run([*git, "add", "f"], env=env, check=True)
            subject = f"commit {i}" + (PAYLOAD.replace("\x00", "") if i == 2 else "")   # git takes no NUL
            subprocess.run([*git, "commit", "-qm", subject], env=env, check=True)
        revs = subprocess.run([*git, "rev-list", "--reverse", "HEAD"], env=env, check=True, capture_output=True,
                              text=True).stdout.split()

        def trial(rev: str) -> Trial:
            bad = revs.index(rev) >= 2
            return Trial("fail", titles=tuple(titles), reason=raw.reason) if bad else Trial("pass")

        result = Bisection(tree, revs[0], revs[-1], trial, Policy(runs=1), work / "results" / "bisect").run()
        print(printable(f"culprit: {result.culprit} {result.culprit_subject}"))   # as run_bisect_command
        print(printable(f"title: {result.title}"))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
