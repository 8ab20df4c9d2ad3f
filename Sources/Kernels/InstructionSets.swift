import CBLAS
import CDNNL

/// The instruction sets that oneDNN and OpenBLAS dispatch to, chosen at run time from the CPU. A kernel for a wider
/// ISA sums in another order, so the same config, seed and threads give the same bits only on the same ISA
/// (measured: a ResNet-20 teacher on AVX2 and on AVX-512 differs from its first epoch's loss). Run records keep
/// both; the environment caps them before the process starts: DNNL_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell
/// reproduces records made on an AVX2 machine on an AVX-512 one. (The Swift kernels are built for the baseline
/// x86-64 ISA and give the same bits on every CPU.)
public enum InstructionSets {
    /// oneDNN's effective ISA: "avx2", "avx512_core", "avx512_core_bf16", ...
    public static var oneDNN: String {
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_sse41: "sse41"
        case dnnl_cpu_isa_avx: "avx"
        case dnnl_cpu_isa_avx2: "avx2"
        case dnnl_cpu_isa_avx2_vnni: "avx2_vnni"
        case dnnl_cpu_isa_avx512_mic: "avx512_mic"
        case dnnl_cpu_isa_avx512_mic_4ops: "avx512_mic_4ops"
        case dnnl_cpu_isa_avx512_core: "avx512_core"
        case dnnl_cpu_isa_avx512_core_vnni: "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core_bf16: "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_amx: "avx512_core_amx"
        case let other: "0x" + String(other.rawValue, radix: 16)
        }
    }

    /// OpenBLAS's kernel family for this CPU: "Haswell", "SkylakeX", "Cooperlake", ...
    public static var openBLAS: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
}
