"""Documents generated from the code, so the docs say what the code does: `python -m meterlab.docs`
rewrites them, and tests/test_authorisation_table.py fails when a committed one is stale."""
import sys

from meterfw import authorisation_names
from meterlab.paths import REPO_ROOT

AUTHORISATION_DOC = REPO_ROOT / "docs" / "authorisation.md"


def authorisation_markdown():
    lines = [
        "# Who may send which command",
        "",
        "Generated from `firmware/meterfw/authorisation.py` by `python -m meterlab.docs`; do not edit.",
        "A device runs a command only if its originator's role is listed for its message code; a signed",
        "command must also carry that role's signature (design.md, properties 2 and 4). Every command is",
        "MAC'd by the DCC's access control broker whoever originated it. Codes not listed are refused, and",
        "so is a code the device's type does not run, before any signature work.",
        "",
        "| message code | use case | roles that may send it | signed | sensitive response | run by |",
        "|---|---|---|---|---|---|",
    ]
    for code, name, role_names, signed, sensitive, devices in authorisation_names.rows():
        lines.append("| 0x%04X | %s | %s | %s | %s | %s |" % (
            code, name, ", ".join(role_names), "yes" if signed else "no (MAC only)", "yes" if sensitive else "no",
            ", ".join(devices)))
    return "\n".join(lines) + "\n"


def main():
    AUTHORISATION_DOC.parent.mkdir(exist_ok=True)
    AUTHORISATION_DOC.write_text(authorisation_markdown())
    print(f"wrote {AUTHORISATION_DOC.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
