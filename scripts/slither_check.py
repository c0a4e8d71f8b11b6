#!/usr/bin/env python3
"""Static analysis of contracts/ with Slither, fed our standard-JSON input so it compiles with
the pinned solc (native, or the WebAssembly wrapper), and the ERC conformance checks.

    scripts/slither_check.py            # prints findings by impact; exit 1 on any unaccepted one

Accepted lower-impact findings live in security/slither-accepted.json, each with its reason.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

ACCEPTED = ROOT / "security" / "slither-accepted.json"
NOT_DEPLOYED = ("contracts/bench/", "contracts/test/")  # benchmark baselines and test-only tokens
ERC_TARGETS = {"TrancheToken": "ERC20", "LoanToken": "ERC721"}
# Advisory ERC checks that are not part of the standard: OpenZeppelin 5 removed
# increaseAllowance, so every OpenZeppelin ERC-20 reports the approval race condition.
ERC_ADVISORY = {"lack_of_erc20_race_condition_protection"}


@dataclass(frozen=True)
class Finding:
    impact: str
    check: str
    contract: str
    description: str

    @property
    def key(self) -> str:
        return f"{self.check}:{self.contract}"


def analyse() -> Any:
    from crytic_compile.platform.solc_standard_json import SolcStandardJson
    from slither import Slither

    from chainabs import build

    logging.getLogger("CryticCompile").setLevel(logging.ERROR)
    standard = build.standard_input(build.collect_sources())
    standard["settings"].pop("outputSelection")  # crytic-compile asks for what Slither needs
    return Slither(SolcStandardJson(standard), solc=str(build.find_compiler()))


def findings(slither: Any) -> list[Finding]:
    from slither.detectors import all_detectors
    from slither.detectors.abstract_detector import AbstractDetector

    for _, detector in inspect.getmembers(all_detectors, inspect.isclass):
        if issubclass(detector, AbstractDetector):
            slither.register_detector(detector)
    found = []
    for group in slither.run_detectors():
        for result in group:
            ours = [e for e in result["elements"]
                    if e.get("source_mapping", {}).get("filename_relative", "").startswith("contracts/")
                    and not e["source_mapping"]["filename_relative"].startswith(NOT_DEPLOYED)]
            if not ours:
                continue
            element = ours[0]
            contract = (element.get("type_specific_fields", {}).get("parent", {}).get("name")
                        if element["type"] != "contract" else element["name"]) or element["name"]
            parent = element.get("type_specific_fields", {}).get("parent", {})
            if element["type"] != "contract" and parent.get("type") == "function":
                contract = element["type_specific_fields"]["parent"]["type_specific_fields"]["parent"]["name"]
            found.append(Finding(result["impact"], result["check"], contract,
                                 result["description"].strip().splitlines()[0]))
    return found


def erc_problems(slither: Any) -> dict[str, list[str]]:
    from slither.tools.erc_conformance.__main__ import ADDITIONAL_CHECKS, ERCS
    from slither.tools.erc_conformance.erc.ercs import generic_erc_checks

    logging.getLogger("Slither-conformance").setLevel(logging.ERROR)
    problems: dict[str, list[str]] = {}
    for name, erc in ERC_TARGETS.items():
        contracts = slither.get_contract_from_name(name)
        if len(contracts) != 1:
            problems[name] = [f"contract {name} not found"]
            continue
        ret: dict[str, list] = {}
        from collections import defaultdict

        ret = defaultdict(list)
        generic_erc_checks(contracts[0], ERCS[erc][0], ERCS[erc][1], ret)
        if erc in ADDITIONAL_CHECKS:
            ADDITIONAL_CHECKS[erc](contracts[0], ret)
        problems[name] = [f"{kind}: {x.get('description', '').strip()}" for kind, items in ret.items()
                          if kind not in ERC_ADVISORY for x in items]
    return problems


def accepted() -> dict[str, str]:
    return {row["finding"]: row["reason"] for row in json.loads(ACCEPTED.read_text())}


def main() -> int:
    slither = analyse()
    found = findings(slither)
    ok = accepted()
    counts = Counter(f.impact for f in found)
    print(json.dumps({"findings_by_impact": dict(counts)}))
    bad = [f for f in found if f.impact in ("High", "Medium") or f.key not in ok]
    for f in found:
        mark = "FAIL" if f in bad else "accepted"
        print(f"{mark:8} {f.impact:13} {f.check:28} {f.contract}: {f.description[:110]}")
    erc = erc_problems(slither)
    for name, issues in erc.items():
        print(f"slither-check-erc {name} ({ERC_TARGETS[name]}): {'PASS' if not issues else 'FAIL'}")
        for issue in issues:
            print("   ", issue)
    return 1 if bad or any(erc.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
