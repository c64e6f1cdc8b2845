"""Print the bounds table (backend/compact_sdf/bounds.py) as Markdown for docs/service.md."""

from __future__ import annotations

import dataclasses

from compact_sdf import bounds
from compact_sdf.config import Config, config_sections, setting_choices


def main() -> None:
    print("| request field | allowed |\n|---|---|")
    for name, bound in bounds.REQUEST.items():
        print(f"| `{name}` | {bound.text()} |")
    print("\n| setting (`overrides` key, `--set`) | allowed |\n|---|---|")
    cfg = Config()
    for section, sub in config_sections().items():
        for f in dataclasses.fields(sub):
            dotted = f"{section}.{f.name}"
            kind = type(getattr(getattr(cfg, section), f.name))
            choices = setting_choices(sub, f.name)
            if dotted in bounds.SETTINGS:
                allowed = f"{kind.__name__} {bounds.SETTINGS[dotted].text()}"
            elif choices:
                allowed = " / ".join(f"`{c}`" for c in choices)
            elif dotted.endswith(".device"):
                allowed = "`auto` / `cpu` / `cuda` / `cuda:N`"
            else:
                allowed = kind.__name__
            print(f"| `{dotted}` | {allowed} |")


if __name__ == "__main__":
    main()
