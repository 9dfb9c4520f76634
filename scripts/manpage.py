#!/usr/bin/env python3
"""manpage.py DIR < dump: man pages (section 1) from `stockade --experimental-dump-help`.

One page per command (stockade.1, stockade-exec.1, ...), from the same help text that `--help`
prints, so the manual never disagrees with the binary. Used by `make install`.
"""
import json
import sys


def roff(text):
    """Text safe in a roff paragraph: backslashes doubled, no line starting with a control character."""
    lines = []
    for line in (text or "").replace("\\", "\\e").split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def flag_spelling(name):
    return ("--" if name["kind"] == "long" else "-") + name["name"]


def argument_synopsis(argument):
    value = argument.get("valueName", "value")
    if argument["kind"] == "positional":
        text = f"<{value}>"
    else:
        preferred = argument.get("preferredName") or argument["names"][0]
        text = flag_spelling(preferred)
        if argument["kind"] == "option":
            text += f" <{value}>"
    if argument.get("isRepeating"):
        text += " ..."
    return f"[{text}]" if argument.get("isOptional") else text


def page(command, parents, version, out_dir):
    names = parents + [command["commandName"]]
    title = "-".join(names)
    arguments = [a for a in command.get("arguments", []) if a.get("shouldDisplay", True)]
    # ArgumentParser's own `help` subcommand says nothing a page should.
    subcommands = [sub for sub in command.get("subcommands", []) if sub["commandName"] != "help"]
    out = [f'.TH {title.upper()} 1 "" "stockade {version}" "User Commands"',
           ".SH NAME", f"{roff(' '.join(names))} \\- {roff(command.get('abstract', ''))}",
           ".SH SYNOPSIS", f".B {' '.join(names)}"]
    synopsis = " ".join(argument_synopsis(a) for a in arguments)
    if subcommands:
        synopsis = "<subcommand> " + synopsis
    if synopsis:
        out.append(roff(synopsis))
    if command.get("discussion"):
        out += [".SH DESCRIPTION", roff(command["discussion"])]
    if arguments:
        out.append(".SH OPTIONS")
        for argument in arguments:
            if argument["kind"] == "positional":
                label = f"<{argument.get('valueName', 'value')}>"
            else:
                label = ", ".join(flag_spelling(n) for n in argument.get("names", []))
                if argument["kind"] == "option":
                    label += f" <{argument.get('valueName', 'value')}>"
            out += [".TP", f"\\fB{roff(label)}\\fR"]
            text = argument.get("abstract", "")
            if argument.get("defaultValue") is not None:
                text += f" (default: {argument['defaultValue']})"
            out.append(roff(text))
            if argument.get("discussion"):
                out += [".IP", roff(argument["discussion"])]
    if subcommands:
        out.append(".SH SUBCOMMANDS")
        for sub in subcommands:
            out += [".TP", f"\\fB{roff(sub['commandName'])}\\fR", roff(sub.get("abstract", ""))]
    see_also = ["-".join(names[:-1])] if parents else []
    see_also += [f"{title}-{sub['commandName']}" for sub in subcommands]
    if see_also:
        out += [".SH SEE ALSO", ",\n".join(f"\\fB{roff(name)}\\fR(1)" for name in see_also)]
    with open(f"{out_dir}/{title}.1", "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    for sub in subcommands:
        page(sub, names, version, out_dir)


def main():
    out_dir, version = sys.argv[1], sys.argv[2]
    page(json.load(sys.stdin)["command"], [], version, out_dir)


if __name__ == "__main__":
    main()
