from edgesight.runtime.bench import machine_description
from edgesight.runtime.cpu import int8_outlook

XEON_FLAGS = "processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni amx_int8\n"
HASWELL_FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
CORTEX_A72 = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU part\t: 0xd08\n"
CORTEX_A76 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull crc32 atomics asimdrdm lrcpc dcpop asimddp\n"


def test_x86_with_vnni_and_amx_expects_int8_to_pay_off():
    outlook = int8_outlook(XEON_FLAGS, "x86_64")
    assert outlook.dot_product is True
    assert outlook.int8_features[:2] == ("AMX int8 tiles", "AVX-512 VNNI")
    assert "well ahead of fp32" in outlook.expectation


def test_cpus_without_dot_product_are_told_int8_may_not_pay_off():
    for text, widening in ((HASWELL_FLAGS, "AVX2"), (CORTEX_A72, "Arm NEON")):
        outlook = int8_outlook(text, "x")
        assert outlook.dot_product is False
        assert f"only {widening}" in outlook.expectation and "measure before choosing" in outlook.expectation
        # x86 without VNNI sums pairs of products in 16 bits, so 8-bit weights can saturate; Arm is not claimed (not measured)
        assert ("8-bit weights may also lose accuracy" in outlook.expectation) == (widening == "AVX2")


def test_arm_with_dot_product_expects_int8_to_pay_off():
    outlook = int8_outlook(CORTEX_A76, "aarch64")
    assert outlook.dot_product is True and outlook.int8_features[0] == "Arm dot product (SDOT/UDOT)"


def test_an_os_that_lists_no_features_says_so_instead_of_guessing():
    outlook = int8_outlook("", "arm64")
    assert outlook.dot_product is None and "measured" in outlook.expectation
    assert outlook.to_json()["int8_features"] == []


def test_the_machine_description_names_the_int8_instructions_that_timings_depend_on():
    assert machine_description(XEON_FLAGS).startswith("Intel Xeon, ") and machine_description(XEON_FLAGS).endswith(", AMX int8 tiles")
    assert machine_description(HASWELL_FLAGS).endswith(", AVX2 (no int8 dot product)")
    assert "logical cores" in machine_description("")  # an OS that lists nothing: name and cores only
    amd = "processor\t: 0\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\nflags\t\t: avx2 avx512_vnni\n"
    assert machine_description(amd).startswith("AMD EPYC (family 26, model 2), ")  # hosts named alike told apart
