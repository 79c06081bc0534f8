"""Python values as Hydra command-line override values (veRL is configured through Hydra)."""

from __future__ import annotations

import re
from typing import Any


def hydra_value(value: Any) -> str:
    """A Python value as a Hydra override value; strings are quoted unless they are plain words or paths of
    ASCII letters, digits and ``_./-`` (Hydra's grammar has no other letters in an unquoted value: ``/home/josé``
    is quoted).

    A quoted value uses double quotes when the text has none (else single quotes); inside, only that
    quote and the backslashes before it (or before the end) are escaped, and ``${`` so that OmegaConf
    does not read an interpolation.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    text = str(value)
    if re.fullmatch(r"[A-Za-z_/][\w./-]*", text, re.ASCII) and text.lower() not in ("null", "true", "false", "inf", "nan"):
        return text
    quote = "'" if '"' in text else '"'
    escaped = re.sub(rf"(\\*){quote}", lambda m: m.group(1) * 2 + "\\" + quote, text)
    escaped = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped).replace("${", "\\${")
    return f"{quote}{escaped}{quote}"
