"""cpu.describe_cpu: the model and whether int8 kernels can overflow on this CPU."""
from emotion_runtime.cpu import cpu_summary, describe_cpu

AVX2 = 'processor : 0\nmodel name : AMD EPYC\nflags : fpu sse2 avx avx2 fma\n'
VNNI = 'model name : Intel(R) Xeon(R) Platinum\nflags : avx2 avx512f avx512_vnni\n'
AVX512_NO_VNNI = 'model name : Intel(R) Xeon(R) Skylake\nflags : avx2 avx512f avx512bw\n'
ARM = 'processor : 0\nFeatures : fp asimd\nCPU part : 0xd08\n'


def test_x86_without_vnni_is_named():
    assert describe_cpu(AVX2, 'x86_64', 2) == (
        'AMD EPYC, 2 cores, x86 AVX2 without VNNI (int8 graphs need 7-bit weights here)')
    assert 'AVX-512 without VNNI' in describe_cpu(AVX512_NO_VNNI, 'x86_64', 4)


def test_vnni_and_other_machines():
    assert describe_cpu(VNNI, 'x86_64', 8).endswith('x86 with VNNI (avx512_vnni)')
    assert describe_cpu(ARM, 'aarch64', 4) == 'aarch64, 4 cores, aarch64'
    assert describe_cpu('', 'x86_64', None) == 'x86_64, x86, instruction set unknown'


def test_this_machine_gives_one_line():
    line = cpu_summary()
    assert line and '\n' not in line
