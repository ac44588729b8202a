"""Prompt contracts: versioned files under prompts/<kind>/v<N>/, loaded and rendered here.

A contract directory holds:
  contract.toml        name, version, description, output rules and failure modes (documentation)
  system.md            static instructions (sent first, identical for every call: provider prompt caching)
  user.md              the per-call template, rendered with a sandboxed Jinja environment from OUR typed
                       inputs; model output is only ever passed in as data, never compiled as a template
  example_input.json   a worked example's variables ...
  example_output.json  ... and the answer, which must validate against the output type (tested)

The highest vN is the live version. A released version is never edited: a change is a new vN. The
version stored with everything generated is "<kind>/v<N>+<sha256 of the files, 12 hex>".

contract.toml may set `[limits] max_completion_tokens`: sent with every call of that contract, so a
runaway answer stops at a known size; generate() raises it for the repair when an answer is cut off.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
from jinja2 import StrictUndefined, Template, Undefined
from jinja2.exceptions import UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from app.llm.base import Message
from app.settings import PROJECT_ROOT

PROMPTS_DIR = PROJECT_ROOT / "prompts"
FILES = ("contract.toml", "system.md", "user.md", "example_input.json", "example_output.json")
_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def _tojson(value: Any) -> str:
    if isinstance(value, Undefined):
        raise UndefinedError("a prompt variable is missing")
    return json.dumps(value, indent=2, ensure_ascii=False)


_env.filters["tojson"] = _tojson


@cache
def _compiled(template_text: str) -> Template:
    return _env.from_string(template_text)


class PromptContract(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    version: str  # "v1"
    content_hash: str
    system: str
    user_template: str
    example_input: dict[str, Any]
    example_output: dict[str, Any]
    contract: dict[str, Any]

    @property
    def full_version(self) -> str:
        return f"{self.kind}/{self.version}+{self.content_hash[:12]}"

    @property
    def max_completion_tokens(self) -> int | None:
        return self.contract.get("limits", {}).get("max_completion_tokens")

    def render(self, variables: dict[str, Any]) -> list[Message]:
        system = (
            f"{self.system.rstrip()}\n\n## Worked example\n\nInput:\n{json.dumps(self.example_input, indent=2)}\n\n"
            f"Output:\n{json.dumps(self.example_output, indent=2)}\n"
        )
        return [Message("system", system), Message("user", _compiled(self.user_template).render(**variables))]


def _versions(kind: str) -> list[Path]:
    base = PROMPTS_DIR / kind
    dirs = [d for d in base.iterdir() if d.is_dir() and d.name.startswith("v") and d.name[1:].isdigit()]
    if not dirs:
        raise FileNotFoundError(f"no prompt contract under {base}")
    return sorted(dirs, key=lambda d: int(d.name[1:]))


@cache
def load_prompt(kind: str, version: str | None = None) -> PromptContract:
    directory = PROMPTS_DIR / kind / version if version else _versions(kind)[-1]
    digest = hashlib.sha256()
    texts = {}
    for name in FILES:
        data = (directory / name).read_bytes()
        digest.update(name.encode() + b"\0" + data + b"\0")
        texts[name] = data.decode()
    return PromptContract(
        kind=kind,
        version=directory.name,
        content_hash=digest.hexdigest(),
        system=texts["system.md"],
        user_template=texts["user.md"],
        example_input=json.loads(texts["example_input.json"]),
        example_output=json.loads(texts["example_output.json"]),
        contract=tomllib.loads(texts["contract.toml"]),
    )
