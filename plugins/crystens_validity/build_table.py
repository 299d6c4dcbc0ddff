"""Build the element table CDVAE's compositional validity was computed with (SMACT 2.2.1).

CDVAE's ``smact_validity`` used SMACT 2.2.1's default oxidation states, Pauling
electronegativities and list of metals. Later SMACT releases changed some of
them (SMACT 4's ``oxidation_states_smact14`` gives Ir −3 where 2.2.1 has −2; Zr's
electronegativity 0.33 in 2.2.1 became 1.33), which changes the answer for real
compositions, so crystens ships the 2.2.1 values for elements 1–103. Run with a
Python that has ``smact==2.2.1`` (a throwaway venv; crystens never imports it)::

    python plugins/crystens_validity/build_table.py   # in that throwaway venv

SMACT is MIT-licensed (data/LICENSE-SMACT).
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "data" / "smact-2.2.1-elements.json"


def build() -> dict:
    """Symbol → oxidation states, Pauling electronegativity (None if unknown) and metal flag."""
    import smact

    version = importlib.metadata.version("smact")
    if version != "2.2.1":
        raise SystemExit(f"this needs SMACT 2.2.1 (CDVAE's version), found {version}")
    elements = {}
    for symbol in smact.ordered_elements(1, 103):
        element = smact.Element(symbol)
        elements[symbol] = {
            "oxidation_states": [int(s) for s in (element.oxidation_states or [])],
            "pauling_eneg": None if element.pauling_eneg is None else float(element.pauling_eneg),
            "metal": symbol in smact.metals,
        }
    return {
        "description": "SMACT 2.2.1 Element.oxidation_states, Element.pauling_eneg and smact.metals, as used by CDVAE's smact_validity",
        "source": "SMACT 2.2.1 (MIT licence, see LICENSE-SMACT), https://github.com/WMD-group/SMACT",
        "elements": elements,
    }


def main() -> None:
    table = build()
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"  {json.dumps(symbol)}: {json.dumps(data)}" for symbol, data in table["elements"].items()]
    header = {key: value for key, value in table.items() if key != "elements"}
    text = json.dumps(header, indent=1)[:-2] + ',\n "elements": {\n' + ",\n".join(lines) + "\n }\n}\n"
    json.loads(text)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT} ({len(table['elements'])} elements)")


if __name__ == "__main__":
    main()
