"""docs/payloads.md says what the code does: each example's bytes are what its builder returns, and they
decode back to the builder's values."""
import re

from meterfw import der, der_decode, endpoint, esme_host
from meterlab.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "payloads.md"
ROW = re.compile(r"^\| [^|]+ \| `([^`]+)` \| `([0-9a-f ]+)` \|$", re.M)


def test_every_example_is_what_the_code_builds():
    examples = ROW.findall(DOC.read_text())
    assert len(examples) >= 10, "the examples table of docs/payloads.md was not found"
    for expression, text in examples:
        built = eval(expression, {"der": der, "endpoint": endpoint, "esme_host": esme_host})
        assert built == bytes.fromhex(text), (expression, built.hex(" "))
        der_decode.decode(built)  # and it is DER the devices read
