"""Inline PTX in a kernel source, rewritten into calls of the emulation functions of ptx.h.

Each `asm(...)` or `asm volatile(...)` statement is parsed (template, output and input operands)
and replaced, on the same lines, by one call whose arguments are the operands in the order the
instruction template names them. A template the interpreter does not know is an error naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class UnknownAsm(ValueError):
    """An asm statement the interpreter cannot emulate."""


@dataclass(frozen=True)
class Instruction:
    function: str  # in ptx.h, namespace tdn_ptx
    # The kind of each template operand, in order: 'r' u32, 'f' f32, 'l' a 64-bit address, 'n' an
    # immediate (a literal in the template, or an "n" operand). Those after a '|' are optional.
    operands: str
    outputs: int  # how many of the first operands are written
    takes_line: bool  # takes the source line first (to name it in errors)


# The instructions kernels/*.cu use, by their template without operands.
INSTRUCTIONS = {
    "cvt.rna.tf32.f32": Instruction("cvt_rna_tf32_f32", "rf", 1, False),
    "cvt.rn.f16x2.f32": Instruction("cvt_rn_f16x2_f32", "rff", 1, False),
    "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32": Instruction("mma_m16n8k8_tf32", "ffff" "rrrr" "rr" "ffff",
                                                                      4, True),
    "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32": Instruction("mma_m16n8k16_f16", "ffff" "rrrr" "rr" "ffff",
                                                                     4, True),
    # [dst] a shared-space address, [src] a global one, cp-size, then src-size if given.
    "cp.async.ca.shared.global": Instruction("cp_async_ca_shared_global", "rln|r", 0, True),
    "cp.async.cg.shared.global": Instruction("cp_async_cg_shared_global", "rln|r", 0, True),
    "cp.async.commit_group": Instruction("cp_async_commit_group", "", 0, False),
    "cp.async.wait_group": Instruction("cp_async_wait_group", "n", 0, False),
    "cp.async.wait_all": Instruction("cp_async_wait_all", "", 0, False),
    **{f"ldmatrix.sync.aligned.m8n8.x{count}{trans}.shared.b16":
       Instruction(f"ldmatrix_x{count}{trans.replace('.', '_')}", "r" * (count + 1), count, True)
       for count in (1, 2, 4) for trans in ("", ".trans")},
}
# Each operand of a template after its mnemonic: %n names an asm operand, a number is a literal.
_TEMPLATE_OPERAND = re.compile(r"%(\d+)|\b(\d+)\b")

_ASM = re.compile(r"\basm\s*(?:volatile\s*)?\(")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_OPERAND = re.compile(r'^\s*"([=+]?)([a-z])"\s*\((.*)\)\s*$', re.S)


def rewrite(source: str, name: str) -> str:
    """`source` with every asm statement replaced by its emulation call, line numbers kept."""
    out, position = [], 0
    for match in _ASM.finditer(source):
        if match.start() < position:
            continue
        end = _closing(source, match.end() - 1)
        statement = source[match.start():end + 1]
        line = source.count("\n", 0, match.start()) + 1
        out.append(source[position:match.start()])
        call = _call(source[match.end():end], f"{name} line {line}")
        out.append(call + "\n" * statement.count("\n"))
        position = end + 1
    out.append(source[position:])
    return "".join(out)


def _closing(text: str, open_at: int) -> int:
    """The index of the parenthesis closing the one at open_at (string literals skipped)."""
    depth, index = 0, open_at
    while index < len(text):
        char = text[index]
        if char == '"':
            index = _string_end(text, index)
            continue
        depth += char == "("
        depth -= char == ")"
        if depth == 0:
            return index
        index += 1
    raise UnknownAsm("an asm statement without its closing parenthesis")


def _string_end(text: str, start: int) -> int:
    found = _STRING.match(text, start)
    if found is None:
        raise UnknownAsm("an asm statement with an unterminated string")
    return found.end()


def _split(text: str, separator: str) -> list[str]:
    """Split at `separator` outside parentheses, brackets and string literals."""
    parts, depth, start, index = [], 0, 0, 0
    while index < len(text):
        char = text[index]
        if char == '"':
            index = _string_end(text, index)
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
        index += 1
    parts.append(text[start:])
    return parts


def _call(body: str, where: str) -> str:
    sections = _split(body, ":")
    template = "".join(_STRING.findall(sections[0])).replace("\\n", " ").replace("\\t", " ")
    text = " ".join(template.split())
    mnemonic = text.split(" ", 1)[0].rstrip(";")
    instruction = INSTRUCTIONS.get(mnemonic)
    if instruction is None:
        raise UnknownAsm(f"{where}: asm statement {text!r} is not known to the CUDA interpreter "
                         f"(known: {', '.join(INSTRUCTIONS)})")
    operands = []
    for section in sections[1:3]:
        for part in _split(section, ","):
            if part.strip():
                found = _OPERAND.match(part)
                if found is None:
                    raise UnknownAsm(f"{where}: cannot read the asm operand {part.strip()!r}")
                operands.append(found.groups())
    used = _TEMPLATE_OPERAND.findall(text[len(mnemonic):])
    required, _, optional = instruction.operands.partition("|")
    if not len(required) <= len(used) <= len(required) + len(optional) or any(
            number and int(number) >= len(operands) for number, _ in used):
        raise UnknownAsm(f"{where}: {mnemonic} expects {len(required)} operands"
                         f"{f' (and {len(optional)} optional)' if optional else ''}, the statement gives {text!r}")
    arguments = []
    for position, ((number, literal), kind) in enumerate(zip(used, required + optional, strict=False)):
        if literal:
            if kind != "n":
                raise UnknownAsm(f"{where}: operand {position} of {mnemonic} is the literal {literal}, "
                                 f"expected a {kind!r} operand")
            arguments.append(literal)
            continue
        modifier, constraint, expression = operands[int(number)]
        if constraint != kind:
            raise UnknownAsm(f"{where}: operand %{number} of {mnemonic} has constraint {constraint!r}, "
                             f"expected {kind!r}")
        if position < instruction.outputs and not modifier:
            raise UnknownAsm(f"{where}: operand %{number} of {mnemonic} is written, but is not an output")
        arguments.append(f"({expression.strip()})")
    if instruction.takes_line:
        arguments.insert(0, "__LINE__")
    return f"tdn_ptx::{instruction.function}({', '.join(arguments)})"  # the statement keeps its own ;
