"""Whether int8 can pay off on this CPU: the instructions onnxruntime's int8 kernels use, as the OS reports them.

int8 is fast when the CPU multiplies and adds 8-bit values four at a time into 32-bit sums: VNNI or
AMX on x86, the dot-product extension (SDOT/UDOT) on Arm. Without them the kernels widen to 16 bits
first, and int8 may run no faster than fp32 (a Cortex-A72, as in the Raspberry Pi 4, has no
dot product). This is the expectation; `edgesight bench` measures the real ratio beside it.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass

# /proc/cpuinfo flag -> what it does for int8, strongest first within each architecture.
INT8_DOT_PRODUCT_FLAGS = {
    "amx_int8": "AMX int8 tiles",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "asimddp": "Arm dot product (SDOT/UDOT)",
    "i8mm": "Arm int8 matrix multiply (SMMLA)",
}
WIDENING_FLAGS = {"avx512bw": "AVX-512 BW", "avx2": "AVX2", "asimd": "Arm NEON"}
# Where onnxruntime's U8S8 kernels sum pairs of uint8 x int8 products in int16 (vpmaddubsw): full-range
# weights saturate (export/quantize.py, weight_bits).
X86_SATURATING = ("AVX-512 BW", "AVX2")


@dataclass(frozen=True)
class Int8Outlook:
    machine: str
    int8_features: tuple[str, ...]  # the instructions above that this CPU has, by name
    dot_product: bool | None  # None: the OS did not say
    expectation: str

    def to_json(self) -> dict:
        return {"machine": self.machine, "int8_features": list(self.int8_features), "dot_product": self.dot_product,
                "expectation": self.expectation}


def _cpu_flags(cpuinfo_text: str) -> set[str]:
    """Flags of the first processor: x86 lists them as `flags`, Arm as `Features`."""
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def read_cpuinfo() -> str:
    """/proc/cpuinfo's text, or "" where the OS has none."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


def int8_outlook(cpuinfo_text: str | None = None, machine: str | None = None) -> Int8Outlook:
    """What to expect of int8 against fp32 here; reads /proc/cpuinfo unless given its text."""
    machine = machine or platform.machine()
    if cpuinfo_text is None:
        cpuinfo_text = read_cpuinfo()
    flags = _cpu_flags(cpuinfo_text)
    if not flags:
        return Int8Outlook(machine, (), None, "this OS does not list CPU features; only the measured int8/fp32 ratio tells")
    dot = [name for flag, name in INT8_DOT_PRODUCT_FLAGS.items() if flag in flags]
    widening = [name for flag, name in WIDENING_FLAGS.items() if flag in flags]
    if dot:
        expectation = f"int8 dot-product instructions ({', '.join(dot)}): int8 should run well ahead of fp32"
    elif widening:
        expectation = (f"no int8 dot-product instructions, only {widening[0]}: int8 multiplies through 16-bit "
                       "intermediates and may gain little or nothing over fp32; measure before choosing int8 for speed")
        if widening[0] in X86_SATURATING:
            expectation += ("; int8 files with 8-bit weights may also lose accuracy here, as onnxruntime adds pairs of "
                            "products in 16 bits, which saturate (export's default 7-bit weights cannot)")
    else:
        expectation = "no SIMD int8 support listed: int8 will likely run slower than fp32"
    return Int8Outlook(machine, tuple(dot + widening), bool(dot), expectation)
